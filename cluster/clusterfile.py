"""Load a Clusterfile: YAML documents -> schema checks -> semantic checks -> a desired Cluster.

Every problem is collected (not just the first) as `FILE:LINE:COL: PATH: what is wrong`.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import os
import re
from pathlib import Path

from cluster import image as images
from cluster import kubeadm, launching, names, registry, spec_fields
from cluster.errors import SealerError
from cluster.model import MASTER, SSH, Cluster, Document, Host, Jump, Taint
from cluster.problems import Problems
from cluster.yamldoc import YamlDoc, format_path, load_documents, read_text
from schemas import KUBEADM_KINDS, SUPPORTED_KINDS, schema_errors

DEFAULT_NAME = "my-cluster"
MAX_RANGE = 65536
MAX_HOSTS = 20_000  # per cluster: far above what one operator machine drives (bench: 10,000)
ENV_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*\Z")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
TAINT = re.compile(
    r"^(?P<key>[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?)(=(?P<value>[^:]*))?:(?P<effect>[A-Za-z]+)\Z"
)
# A removal is the whole taint followed by one "-": "key-", "key:Effect-" or "key=v:Effect-".
TAINT_REMOVAL = re.compile(
    r"^(?P<key>[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?)(=[^:]*)?(:(?P<effect>[A-Za-z]+))?-\Z"
)


def load(path: str, environ: dict[str, str] | None = None) -> tuple[Cluster, list[str]]:
    """The desired cluster and the warnings, or InputError listing every problem."""
    environ = os.environ if environ is None else environ
    text = read_text(path, "Clusterfile")
    docs = load_documents(path, text)
    problems = Problems(path)
    cluster_doc, others = _split_kinds(docs, problems)
    if cluster_doc is None:
        problems.raise_if_any()

    _substitute_env(cluster_doc, environ, problems)
    for doc in others:
        _read_on_key(doc)
    for doc in [cluster_doc, *others]:
        for err_path, message in schema_errors(doc.data["kind"], doc.data):
            problems.at(doc, err_path, message, key=message.startswith("unknown field"))
    problems.raise_if_any()

    spec = cluster_doc.data["spec"]
    cluster_env = {**_env(cluster_doc, ["spec", "env"], problems)}
    cluster_env.update(spec_fields.registry_env(cluster_doc, spec.get("registry") or {}, problems))
    if (spec.get("containerRuntime") or {}).get("type"):
        cluster_env["ContainerRuntime"] = spec["containerRuntime"]["type"]  # as sealer exports it
    aliases = spec_fields.host_aliases(cluster_doc, spec.get("hostAliases") or [], problems)
    hosts = _hosts(cluster_doc, cluster_env, problems, aliases)
    data_root = spec.get("dataRoot") or names.DEFAULT_DATA_ROOT
    if names.data_root_problem(data_root):
        problems.at(
            cluster_doc, ["spec", "dataRoot"], f"{data_root!r} {names.data_root_problem(data_root)}"
        )
    if spec.get("cmd_args"):
        problems.at(
            cluster_doc,
            ["spec", "cmd_args"],
            "sealer declares cmd_args but never reads it; give whole commands in spec.cmd",
        )
    image = None
    try:
        image = images.resolve(spec["image"], Path(path).resolve().parent)
    except SealerError as e:
        problems.at(cluster_doc, ["spec", "image"], str(e))
    if image and image.runtime != "kubernetes" and not image.is_application:
        for doc in others:
            if doc.data["kind"] in KUBEADM_KINDS:
                problems.at(
                    doc,
                    ["kind"],
                    f"{doc.data['kind']} (document {doc.index}) only "
                    f"applies to the kubernetes runtime; this image runs {image.runtime}",
                )
    if image and image.runtime == "kubernetes":
        _check_kubeadm_documents(others, image.version, problems)
    spec_fields.check_plugins(others, problems)
    if image:
        spec_fields.check_configs(others, image, problems)
        spec_fields.check_container_runtime(cluster_doc, spec, image, problems)
    commands, launched, deletes = (), (), {}
    if image:
        commands, launched, deletes = launching.launch(
            cluster_doc, others, image, cluster_env, problems
        )
        launching.check_rootfs_templates(cluster_doc, image, hosts, problems)
    problems.raise_if_any()

    metadata = cluster_doc.data.get("metadata") or {}
    cluster = Cluster(
        name=metadata.get("name", DEFAULT_NAME),
        image=image,
        hosts=hosts,
        env=cluster_env,
        cmd=commands,
        app_names=tuple(spec.get("appNames") or ()),
        apps=launched,
        app_deletes=deletes,
        apps_from=image.name,
        plugins=_documents(others, ("Plugin",)),
        configs=_documents(others, ("Config",)),
        kube_documents=_documents(others, KUBEADM_KINDS),
        control_plane=_control_plane(image, others, data_root),
        registry=registry.from_spec(spec.get("registry") or {}, image),
        registry_spec=spec.get("registry") or {},
        ssh=_ssh(cluster_doc, ["spec"], spec.get("ssh") or {}, problems),
        source=path,
        source_digest="sha256:" + hashlib.sha256(text.encode()).hexdigest(),
    )
    return cluster, problems.warnings


def _read_on_key(doc: YamlDoc) -> None:
    """A Plugin's `on:` key as sealer's Go reader sees it: YAML 1.1 makes the bare word a
    boolean, which no Plugin field is."""
    spec = doc.data.get("spec") if doc.data.get("kind") == "Plugin" else None
    if isinstance(spec, dict) and True in spec and "on" not in spec:
        spec["on"] = spec.pop(True)


def _split_kinds(docs: list[YamlDoc], problems: Problems) -> tuple[YamlDoc, list[YamlDoc]]:
    clusters, others = [], []
    for doc in docs:
        kind = doc.data.get("kind") if isinstance(doc.data, dict) else None
        if not isinstance(doc.data, dict):
            problems.at(doc, [], f"document {doc.index} is not a mapping")
        elif kind is None:
            problems.at(doc, [], f"document {doc.index} has no 'kind'")
        elif kind not in SUPPORTED_KINDS:
            problems.at(
                doc,
                ["kind"],
                f"unknown kind {kind!r} in document {doc.index}; "
                f"supported kinds: {', '.join(SUPPORTED_KINDS)}",
            )
        elif kind == "Cluster":
            clusters.append(doc)
        else:
            others.append(doc)
    if not docs:
        problems.errors.append(f"{problems.file}:1:1: the file holds no YAML document")
    elif not clusters and not problems.errors:
        problems.errors.append(f"{problems.file}:1:1: no document of kind Cluster")
    for extra in clusters[1:]:
        problems.at(
            extra,
            ["kind"],
            f"a second Cluster document (document {extra.index}); a Clusterfile holds exactly one",
        )
    return (clusters[0] if clusters else None), others


def _substitute_env(doc: YamlDoc, environ, problems: Problems) -> None:
    """Replace ${VAR} and ${VAR:-default} in every string of the Cluster document."""

    def expand(value: str, path: list) -> str:
        def one(m: re.Match) -> str:
            if m.group(0) == "$$":
                return "$"
            name, default = m.group(1), m.group(2)
            if environ.get(name):
                return environ[name]
            if default is not None:
                return default
            problems.at(doc, path, f"environment variable {name} is not set")
            return ""

        return ENV_REF.sub(one, value) if "$" in value else value

    def walk(value, path):
        if isinstance(value, str):
            return expand(value, path)
        if isinstance(value, list):
            return [walk(v, path + [i]) for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {k: walk(v, path + [k]) for k, v in value.items()}
        return value

    doc.data = walk(doc.data, [])


def _env(doc: YamlDoc, path: list, problems: Problems) -> dict[str, str]:
    """`K=V` strings to a dict; the last duplicate wins, as in sealer."""
    env = {}
    for i, entry in enumerate(_get(doc.data, path) or []):
        key, sep, value = entry.partition("=")
        if not sep or not ENV_KEY.match(key):
            problems.at(doc, path + [i], f"{entry!r} is not of the form KEY=VALUE")
            continue
        env[key] = value
    return env


def _hosts(
    doc: YamlDoc, cluster_env: dict, problems: Problems, aliases: tuple[str, ...] = ()
) -> dict[str, Host]:
    spec = doc.data["spec"]
    cluster_ssh = spec.get("ssh") or {}
    hosts: dict[str, Host] = {}
    seen_at: dict[str, list] = {}
    families: dict[int, list] = {}
    for g, group in enumerate(spec["hosts"]):
        base = ["spec", "hosts", g]
        roles = tuple(dict.fromkeys(group["roles"]))
        labels = _labels(doc, base, group.get("labels") or {}, problems)
        taints = _taints(doc, base, group.get("taints") or [], problems)
        env = {**cluster_env, **_env(doc, base + ["env"], problems)}
        ssh = _ssh(doc, base, {**cluster_ssh, **(group.get("ssh") or {})}, problems)
        for i, entry in enumerate(group["ips"]):
            room = MAX_HOSTS - len(seen_at)
            for ip in _expand_ips(doc, base + ["ips", i], entry, problems, room):
                if ip in seen_at:
                    problems.at(
                        doc,
                        base + ["ips", i],
                        f"{ip} is already listed at "
                        f"{format_path(seen_at[ip])}; an IP may appear only once",
                    )
                    continue
                seen_at[ip] = base + ["ips", i]
                family = 6 if ":" in ip else 4  # expanded addresses: no need to parse again
                families.setdefault(family, base + ["ips", i])
                hosts[ip] = Host(ip, roles, labels, taints, env, ssh, aliases)
    if len(families) > 1:
        problems.at(doc, families[6], "IPv4 and IPv6 addresses are mixed; use one family")
    masters = [ip for ip, h in hosts.items() if MASTER in h.roles]
    if not masters and not problems.errors:
        problems.at(doc, ["spec", "hosts"], "no host has the role 'master'; at least one is needed")
    elif masters and len(masters) % 2 == 0:
        problems.at(
            doc,
            ["spec", "hosts"],
            f"{len(masters)} masters: an even number of etcd "
            f"members tolerates no more failures than one fewer; prefer an odd number",
            warn=True,
        )
    return hosts


def _expand_ips(
    doc: YamlDoc, path: list, entry: str, problems: Problems, room: int = MAX_HOSTS
) -> list[str]:
    entry = entry.strip()
    if "%" in entry:  # a scope id (fe80::1%eth0) names an interface of the operator's machine
        problems.at(doc, path, f"{entry!r}: an IPv6 scope id (%...) is not accepted here")
        return []
    first, sep, last = entry.partition("-")
    try:  # one address is a range of one
        start = ipaddress.ip_address(first.strip() if sep else entry)
        end = ipaddress.ip_address(last.strip()) if sep else start
    except ValueError:
        problems.at(
            doc, path, f"{entry!r} is not a valid IP address" + (" range (A-B)" if sep else "")
        )
        return []
    if start.version != end.version or int(end) < int(start):
        problems.at(
            doc,
            path,
            f"{entry!r} is not a valid range: the end must be an address of "
            "the same family, not lower than the start",
        )
        return []
    if int(end) - int(start) >= MAX_RANGE:
        problems.at(doc, path, f"{entry!r} spans more than {MAX_RANGE} addresses")
        return []
    if int(end) - int(start) >= room:
        problems.at(doc, path, f"{entry!r}: the cluster would have more than {MAX_HOSTS} hosts")
        return []
    # start + n keeps the family (ip_address(int) would make ::1 an IPv4 address)
    return [(start + n).compressed for n in range(int(end) - int(start) + 1)]


def parse_taint(text: str) -> Taint | None:
    removal = TAINT_REMOVAL.match(text)
    if removal and not TAINT.match(text):
        return Taint(removal["key"], "", removal["effect"] or "", remove=True)
    m = TAINT.match(text)
    if not m or m["effect"] not in TAINT_EFFECTS:
        return None
    return Taint(m["key"], m["value"] or "", m["effect"])


def _taints(doc: YamlDoc, base: list, entries: list, problems: Problems) -> tuple[str, ...]:
    taints = []
    for i, entry in enumerate(entries):
        taint = parse_taint(entry)
        value_problem = names.label_value_problem(taint.value) if taint is not None else ""
        if value_problem:
            problems.at(doc, base + ["taints", i], f"{entry!r}: the value {value_problem}")
            continue
        if taint is None or (taint.effect and taint.effect not in TAINT_EFFECTS):
            problems.at(
                doc,
                base + ["taints", i],
                f"{entry!r} is not a taint: use key=value:Effect, "
                f"key:Effect or key- (Effect is one of {', '.join(TAINT_EFFECTS)})",
            )
            continue
        taints.append(str(taint))
    return tuple(taints)


def _labels(doc: YamlDoc, base: list, labels: dict, problems: Problems) -> dict[str, str]:
    out = {}
    for key, value in labels.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        key_problem = names.label_key_problem(str(key))
        value_problem = names.label_value_problem(text)
        if key_problem:
            problems.at(doc, base + ["labels", key], f"{key!r} {key_problem}", key=True)
        elif value_problem:
            problems.at(doc, base + ["labels", key], f"{text!r} {value_problem}")
        out[str(key)] = text
    return out


def _ssh(doc: YamlDoc, base: list, raw: dict, problems: Problems) -> SSH:
    where = functools.partial(_ssh_field, doc, base)
    bastion = raw.get("bastion")
    return SSH(
        user=_ssh_user(doc, where("user"), raw.get("user", "root"), problems),
        password=raw.get("passwd", ""),
        key_file=os.path.expanduser(raw.get("pk", "")),
        key_passphrase=raw.get("pkPasswd", ""),
        port=_ssh_port(doc, where("port"), raw.get("port", 22), problems),
        jumps=(_bastion(doc, where("bastion"), bastion, problems),) if bastion else (),
        agent=raw.get("agent", True),
        given=frozenset(raw) & GIVEN_SSH_FIELDS,
    )


GIVEN_SSH_FIELDS = frozenset({"user", "port", "pk"})  # what ~/.ssh/config could also say


def _bastion(doc: YamlDoc, at: list, raw: dict, problems: Problems) -> Jump:
    """spec.ssh.bastion (this project's extension to sealer's v2 Clusterfile)."""
    address = str(raw["address"])
    problem = names.address_problem(address)
    if problem:
        problems.at(doc, at + ["address"], f"{address!r} {problem}")
    return Jump(
        address=address,
        port=_ssh_port(doc, at + ["port"], raw.get("port", 22), problems),
        user=_ssh_user(doc, at + ["user"], raw.get("user", "root"), problems),
        key_file=os.path.expanduser(raw.get("pk", "")),
        key_passphrase=raw.get("pkPasswd", ""),
        password=raw.get("passwd", ""),
    )


def _ssh_port(doc: YamlDoc, at: list, port, problems: Problems) -> int:
    try:
        number = int(port)
        if not 0 < number < 65536:
            raise ValueError
    except ValueError:
        problems.at(doc, at, f"{port!r} is not a TCP port (1-65535)")
        return 22
    return number


def _ssh_user(doc: YamlDoc, at: list, user, problems: Problems) -> str:
    user = str(user)
    problem = names.user_problem(user)
    if problem:
        problems.at(doc, at, f"{user!r} {problem}")
    return user


def _ssh_field(doc: YamlDoc, base: list, name: str) -> list:
    """Where an ssh setting was given: in the host group, or else in spec.ssh."""
    if name in (_get(doc.data, base + ["ssh"]) or {}):
        return base + ["ssh", name]
    return ["spec", "ssh", name]


def _control_plane(image, docs: list[YamlDoc], data_root: str) -> dict[str, str]:
    """The endpoint and the settings a running cluster cannot change, from the image's kubeadm
    defaults and the Clusterfile's documents merged (kubernetes), or sealer's endpoint; and
    where the rootfs lives on the hosts (spec.dataRoot)."""
    if image.is_application:  # the running cluster's own are kept (operations.common)
        return {}
    fixed = {"data_root": data_root}
    if image.runtime != "kubernetes":
        return {"endpoint": f"{kubeadm.DEFAULT_ENDPOINT}:{kubeadm.API_PORT}", **fixed}
    user = [d.data for d in docs if d.data["kind"] in KUBEADM_KINDS]
    merged = kubeadm.merged_documents(kubeadm.image_defaults(image.rootfs), user, image.version)
    return {**kubeadm.fixed_settings(merged), **fixed}


def _check_kubeadm_documents(docs: list[YamlDoc], version: str, problems: Problems) -> None:
    """What kubeadm at the image's version would refuse, said at the document."""
    mine = [d for d in docs if d.data["kind"] in KUBEADM_KINDS]
    seen: set[str] = set()
    for doc in mine:
        for field, problem in kubeadm.document_problems([doc.data], version):
            problems.at(doc, [field], problem)
        if doc.data["kind"] in seen:
            problems.at(doc, ["kind"], f"{doc.data['kind']} is given twice; kubeadm reads one")
        seen.add(doc.data["kind"])


def _documents(docs: list[YamlDoc], kinds: tuple[str, ...]) -> tuple[Document, ...]:
    found = [d.data for d in docs if d.data["kind"] in kinds]
    return tuple(Document(d["kind"], (d.get("metadata") or {}).get("name", ""), d) for d in found)


def _get(data, path: list):
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data
