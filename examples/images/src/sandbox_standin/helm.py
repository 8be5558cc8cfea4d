"""SANDBOX STAND-IN helm: install, upgrade, uninstall and list releases of a chart folder."""

import json
import os
import re
import sys

from .api_client import admin_server, api
from .cmdline import Refused
from .common import LIB, read_file

HELM_RELEASE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

HELM_FLAGS = {  # flag -> takes a value; what helm install/upgrade/uninstall/list accept here
    "-n": True,
    "--namespace": True,
    "-f": True,
    "--values": True,
    "--set": True,
    "--set-string": True,
    "--version": True,
    "--timeout": True,
    "--create-namespace": False,
    "--wait": False,
    "--atomic": False,
    "--install": False,
    "-i": False,
    "-A": False,
    "--all-namespaces": False,
    "-o": True,
    "--output": True,
}


def helm_args(argv):
    """helm's command line: (positional words, {flag: [values]}); unknown flags refused."""
    words, flags, i = [], {}, 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("-"):
            name, eq, value = arg.partition("=")
            if name not in HELM_FLAGS:
                print(f"Error: unknown flag: {name}", file=sys.stderr)
                sys.exit(1)
            if HELM_FLAGS[name] and not eq:
                i += 1
                if i >= len(argv):
                    print(f"Error: flag needs an argument: {name}", file=sys.stderr)
                    sys.exit(1)
                value = argv[i]
            flags.setdefault(name, []).append(value if HELM_FLAGS[name] else "true")
        else:
            words.append(arg)
        i += 1
    return words, flags


def helm_values(chart_dir, flags):
    """values.yaml, then each -f file, then each --set (a.b=c), later winning, as helm merges."""
    sys.path.insert(0, LIB)
    import yaml

    def merge(base, extra):
        for key, value in extra.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                merge(base[key], value)
            else:
                base[key] = value
        return base

    values = yaml.safe_load(read_file(os.path.join(chart_dir, "values.yaml"), "")) or {}
    for path in flags.get("-f", []) + flags.get("--values", []):
        if not os.path.isfile(path):
            print(f"Error: open {path}: no such file or directory", file=sys.stderr)
            sys.exit(1)
        merge(values, yaml.safe_load(read_file(path)) or {})
    for pair in flags.get("--set", []) + flags.get("--set-string", []):
        for item in pair.split(","):
            key, eq, value = item.partition("=")
            if not eq:
                print(
                    f'Error: failed parsing --set data: key "{key}" has no value', file=sys.stderr
                )
                sys.exit(1)
            *path, last = key.split(".")
            node = values
            for part in path:
                node = node.setdefault(part, {})
            node[last] = value
    return values


def helm_chart(ref, failed):
    """The chart's folder and Chart.yaml; a local folder only (no repository is reachable)."""
    sys.path.insert(0, LIB)
    import yaml

    if not os.path.isdir(ref):
        print(
            f"Error: {failed}: non-absolute URLs should be in form of repo_name/path_to_chart, "
            f"got: {ref}"
            if "/" not in ref
            else f"Error: {failed}: repo {ref.split('/')[0]} not found",
            file=sys.stderr,
        )
        sys.exit(1)
    chart = yaml.safe_load(read_file(os.path.join(ref, "Chart.yaml"), "") or "null")
    if not isinstance(chart, dict) or not chart.get("name") or not chart.get("version"):
        print(
            f"Error: {failed}: validation: chart.metadata.name and version are required",
            file=sys.stderr,
        )
        sys.exit(1)
    return os.path.abspath(ref), chart


def helm_releases(server, namespace=None):
    """The deployed releases: helm keeps each as a Secret sh.helm.release.v1.NAME.vREVISION."""
    found = {}
    for obj in api(server, "GET", "/objects").values():
        if obj["kind"] != "Secret" or not obj["name"].startswith("sh.helm.release.v1."):
            continue
        if namespace and obj["namespace"] != namespace:
            continue
        release = json.loads(obj["manifest"])["release"]
        current = found.get((obj["namespace"], release["name"]))
        if current is None or current["revision"] < release["revision"]:
            found[(obj["namespace"], release["name"])] = release
    return found


def tool_helm(version, argv, server=None):
    if argv in (["version"], ["version", "--short"]):
        print("v3.12.3+gsandbox" if argv[1:] else 'version.BuildInfo{Version:"v3.12.3"}')
        return
    if not argv or argv[0] not in ("install", "upgrade", "uninstall", "list", "ls", "status"):
        raise Refused
    command, (words, flags) = argv[0], helm_args(argv[1:])
    server = server or admin_server()
    namespace = (flags.get("-n") or flags.get("--namespace") or ["default"])[-1]
    if command in ("list", "ls"):
        if words:
            raise Refused
        everywhere = "-A" in flags or "--all-namespaces" in flags
        releases = helm_releases(server, None if everywhere else namespace)
        if (flags.get("-o") or flags.get("--output") or [""])[-1] == "json":
            print(json.dumps(list(releases.values())))
            return
        print(f"{'NAME':<20}{'NAMESPACE':<12}{'REVISION':<10}{'STATUS':<10}CHART")
        for r in sorted(releases.values(), key=lambda r: r["name"]):
            print(
                f"{r['name']:<20}{r['namespace']:<12}{r['revision']:<10}{r['status']:<10}{r['chart']}"
            )
        return
    failed = {"install": "INSTALLATION FAILED", "upgrade": "UPGRADE FAILED"}.get(command, "")
    expected = 2 if command in ("install", "upgrade") else 1
    if len(words) != expected:
        print(
            f'Error: "helm {command}" requires {expected} argument{"s" if expected > 1 else ""}',
            file=sys.stderr,
        )
        sys.exit(1)
    name = words[0]
    if len(name) > 53 or not HELM_RELEASE_NAME.match(name):
        print(
            f'Error: {failed or command}: release name "{name}": invalid release name, must '
            f"match regex {HELM_RELEASE_NAME.pattern} and the length must not be longer than 53",
            file=sys.stderr,
        )
        sys.exit(1)
    current = helm_releases(server, namespace).get((namespace, name))
    if command in ("status", "uninstall"):
        if current is None:
            print(
                f"Error: {'uninstall: Release not loaded' if command == 'uninstall' else 'release'}: "
                f"{name}: release: not found",
                file=sys.stderr,
            )
            sys.exit(1)
        if command == "status":
            print(
                f"NAME: {name}\nNAMESPACE: {namespace}\nSTATUS: {current['status']}\n"
                f"REVISION: {current['revision']}"
            )
            return
        keys = [
            k
            for k, o in api(server, "GET", "/objects").items()
            if o["kind"] == "Secret"
            and o["namespace"] == namespace
            and o["name"].startswith(f"sh.helm.release.v1.{name}.v")
        ]
        api(server, "POST", "/objects/delete", {"keys": keys})
        print(f'release "{name}" uninstalled')
        return
    if command == "install" and current is not None:
        print(
            "Error: INSTALLATION FAILED: cannot re-use a name that is still in use",
            file=sys.stderr,
        )
        sys.exit(1)
    if command == "upgrade" and current is None and not ({"--install", "-i"} & set(flags)):
        print(f'Error: UPGRADE FAILED: "{name}" has no deployed releases', file=sys.stderr)
        sys.exit(1)
    chart_dir, chart = helm_chart(words[1], failed)
    revision = (current["revision"] + 1) if current else 1
    release = {
        "name": name,
        "namespace": namespace,
        "revision": revision,
        "status": "deployed",
        "chart": f"{chart['name']}-{chart['version']}",
        "app_version": str(chart.get("appVersion", "")),
        "values": helm_values(chart_dir, flags),
    }
    secret = {
        "kind": "Secret",
        "name": f"sh.helm.release.v1.{name}.v{revision}",
        "namespace": namespace,
        "manifest": json.dumps({"release": release}, sort_keys=True),
    }
    api(server, "POST", "/objects", {"objects": [secret]})
    if current is None:
        print(f"NAME: {name}\nNAMESPACE: {namespace}\nSTATUS: deployed\nREVISION: {revision}")
    else:
        print(f'Release "{name}" has been upgraded. Happy Helming!\nREVISION: {revision}')
