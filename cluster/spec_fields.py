"""The Clusterfile fields sealer has beyond hosts and image: registry, hostAliases,
containerRuntime, and the Plugin and Config documents, checked where they are."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from cluster import beneath, configs, names, plugins
from cluster import registry as registry_model
from cluster.errors import SealerError
from cluster.problems import Problems
from cluster.yamldoc import YamlDoc

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\Z")  # htpasswd and auth files


def check_configs(docs: list[YamlDoc], image, problems: Problems) -> None:
    """Render each Config against the image now, so that apply never meets a bad one."""
    for doc in docs:
        if doc.data["kind"] != "Config":
            continue
        spec = doc.data["spec"]
        problem = configs.process_problem(spec.get("process") or "")
        if problem:
            problems.at(doc, ["spec", "process"], problem)
            continue
        try:
            original = beneath.read_file(Path(image.rootfs), configs.path_of(spec))
            configs.written(spec, None if original is None else original.decode(errors="replace"))
        except SealerError as e:
            problems.at(doc, ["spec", "data"], str(e))


def check_plugins(docs: list[YamlDoc], problems: Problems) -> None:
    for doc in docs:
        if doc.data["kind"] != "Plugin":
            continue
        spec = doc.data["spec"]
        errors, warnings = plugins.action_problems(spec["action"])
        for message in errors:
            problems.at(doc, ["spec", "action"], message)
        for message in warnings:
            problems.at(doc, ["spec", "action"], message, warn=True)
        if spec.get("on") and plugins.selector_problem(spec["on"]):
            problems.at(doc, ["spec", "on"], plugins.selector_problem(spec["on"]))


CONTAINER_RUNTIME_LABEL = "cluster.alpha.sealer.io/container-runtime-type"


def check_container_runtime(doc: YamlDoc, spec: dict, image, problems: Problems) -> None:
    """spec.containerRuntime.type names what the image installs; it cannot choose another."""
    wanted = (spec.get("containerRuntime") or {}).get("type")
    if not wanted or image.is_application:
        return
    declared = image.labels.get(CONTAINER_RUNTIME_LABEL, "")
    if not declared:
        problems.at(
            doc,
            ["spec", "containerRuntime", "type"],
            f"{image.name} does not declare its container runtime (label "
            f"{CONTAINER_RUNTIME_LABEL}); {wanted!r} cannot be checked",
            warn=True,
        )
    elif declared.lower() != wanted.lower():
        problems.at(
            doc,
            ["spec", "containerRuntime", "type"],
            f"{wanted!r}: {image.name} installs {declared!r}; the container runtime comes "
            f"with the image (choose an image built for {wanted})",
        )


def registry_env(doc: YamlDoc, registry: dict, problems: Problems) -> dict[str, str]:
    """spec.registry checked, and exported as sealer does (RegistryURL, LocalRegistryDomain,
    ...; never the password) for scripts, plugins and templates. Serving it is not done here."""
    env: dict[str, str] = {}
    chosen = {}
    for kind, prefix in (
        ("localRegistry", "LocalRegistry"),
        ("externalRegistry", "ExternalRegistry"),
    ):
        config = registry.get(kind)
        if config is None:
            continue
        base = ["spec", "registry", kind]
        local = kind == "localRegistry"
        domain = config.get("domain") or (registry_model.DEFAULT_DOMAIN if local else "")
        port = config.get("port") or (registry_model.DEFAULT_PORT if local else 0)
        if not domain:
            problems.at(doc, base, "externalRegistry needs a domain")
            continue
        if names.dns_name_problem(domain):
            problems.at(doc, base + ["domain"], f"{domain!r} {names.dns_name_problem(domain)}")
        san = (config.get("cert") or {}).get("subjectAltName") or {}
        for i, name in enumerate(san.get("dnsNames") or []):
            if names.dns_name_problem(name):
                problems.at(
                    doc,
                    base + ["cert", "subjectAltName", "dnsNames", i],
                    f"{name!r} {names.dns_name_problem(name)}",
                )
        for i, address in enumerate(san.get("ips") or []):
            try:
                ipaddress.ip_address(address)
            except ValueError:
                problems.at(
                    doc,
                    base + ["cert", "subjectAltName", "ips", i],
                    f"{address!r} is not an IP address",
                )
        if config.get("password") and not config.get("username"):
            problems.at(doc, base + ["password"], "a password needs a username")
        username = config.get("username") or ""
        if username and not USERNAME.match(username):
            problems.at(
                doc,
                base + ["username"],
                f"{username!r} is not a user name (letters, digits, . _ - @, at most 64)",
            )
        if config.get("username") and not config.get("password"):
            problems.at(doc, base + ["username"], "a username needs a password")
        url = f"{domain}:{port}" if port else domain
        env.update(
            {f"{prefix}Domain": domain, f"{prefix}Port": str(port or ""), f"{prefix}URL": url}
        )
        chosen = {"domain": domain, "port": str(port or ""), "url": url}
    if registry.get("localRegistry") is not None and registry.get("externalRegistry"):
        problems.at(
            doc,
            ["spec", "registry", "localRegistry"],
            "ignored: with an externalRegistry the nodes use that one (as sealer)",
            warn=True,
        )
    if chosen:  # the external registry, when given, is the one nodes use
        env.update(
            {
                "RegistryDomain": chosen["domain"],
                "RegistryPort": chosen["port"],
                "RegistryURL": chosen["url"],
            }
        )
    return env


def host_aliases(doc: YamlDoc, entries: list, problems: Problems) -> tuple[str, ...]:
    """spec.hostAliases as hosts-file lines ("IP NAME..."), each checked."""
    lines = []
    for i, entry in enumerate(entries):
        base = ["spec", "hostAliases", i]
        try:
            address = ipaddress.ip_address(str(entry["ip"]).strip()).compressed
        except ValueError:
            problems.at(doc, base + ["ip"], f"{entry['ip']!r} is not an IP address")
            continue
        bad = [n for n in entry["hostnames"] if names.dns_name_problem(n)]
        for n in bad:
            where = base + ["hostnames", entry["hostnames"].index(n)]
            problems.at(doc, where, f"{n!r} {names.dns_name_problem(n)}")
        if not bad:
            lines.append(" ".join([address, *entry["hostnames"]]))
    return tuple(lines)
