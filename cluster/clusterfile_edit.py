"""Edits of a Clusterfile's text for sealer's own verbs (scale-up, delete, upgrade).

A round trip through ruamel.yaml: comments, key order, quoting and flow style stay as the user
wrote them; only the Cluster document's hosts or image change. Pure: text in, text out. The
result is checked by the usual loader before anything uses it.
"""

from __future__ import annotations

import io
import ipaddress

from cluster.errors import SealerError
from cluster.model import MASTER, WORKER


def _yaml(text: str):
    from ruamel.yaml import YAML  # late: only the verbs need it

    yaml = YAML()  # round-trip mode
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long line the user wrote on one
    yaml.indent(**_indentation(text))
    return yaml


def _indentation(text: str) -> dict:
    """The file's own indentation (ruamel does not guess it): the step of nested mappings,
    and how far a block list's dash sits under its key (`hosts:` / `  - ips:`)."""
    mapping, offset = 2, None
    previous = None
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        if not stripped or stripped.startswith("#") or stripped.startswith("---"):
            continue
        depth = len(line) - len(stripped)
        if previous is not None and previous[1].rstrip().endswith(":"):
            step = depth - previous[0]
            if stripped.startswith("- ") and offset is None and step >= 0:
                offset = step
            elif not stripped.startswith("- ") and step > 0 and mapping == 2:
                mapping = step
        previous = (depth, stripped)
    offset = offset or 0
    return {"mapping": mapping, "sequence": offset + 2, "offset": offset}


def _edit(text: str, where: str, change) -> str:
    yaml = _yaml(text)
    try:
        documents = list(yaml.load_all(text))
    except Exception as e:  # ruamel's errors carry their own line and column
        raise SealerError(f"{where}: not valid YAML: {str(e).splitlines()[0]}") from None
    clusters = [d for d in documents if isinstance(d, dict) and d.get("kind") == "Cluster"]
    if len(clusters) != 1:
        raise SealerError(f"{where}: needs exactly one kind: Cluster document to edit")
    spec = clusters[0].get("spec")
    if not isinstance(spec, dict):
        raise SealerError(f"{where}: the Cluster document has no spec")
    change(spec)
    out = io.StringIO()
    yaml.dump_all(documents, out)
    return out.getvalue()


def _address(value: str, flag: str) -> ipaddress._BaseAddress:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        raise SealerError(f"{flag} {value!r}: not an IP address") from None


def _entry_addresses(entry: str) -> tuple[ipaddress._BaseAddress, ipaddress._BaseAddress] | None:
    first, sep, last = str(entry).strip().partition("-")
    try:
        start = ipaddress.ip_address(first.strip())
        return start, ipaddress.ip_address(last.strip()) if sep else start
    except ValueError:
        return None  # not ours to judge here: the loader reports it


def _listed(spec: dict) -> set:
    found = set()
    for group in spec.get("hosts") or []:
        for entry in group.get("ips") or []:
            bounds = _entry_addresses(entry)
            if bounds:
                start, end = bounds
                found.update(start + n for n in range(int(end) - int(start) + 1))
    return found


def add_hosts(text: str, where: str, masters: list[str], nodes: list[str]) -> str:
    """scale-up: each address joins the first host group with exactly its role (a new group
    when there is none), so the group's ssh, labels and env apply to it too."""

    def change(spec: dict) -> None:
        hosts = spec.setdefault("hosts", [])
        listed = _listed(spec)
        for role, ips, flag in ((MASTER, masters, "--masters"), (WORKER, nodes, "--nodes")):
            if not ips:
                continue
            addresses = [_address(ip, flag) for ip in ips]
            for ip, address in zip(ips, addresses, strict=True):
                if address in listed:
                    raise SealerError(f"{flag} {ip}: already a host of {where}")
                listed.add(address)
            group = next((g for g in hosts if list(g.get("roles") or []) == [role]), None)
            if group is None:
                hosts.append({"ips": [], "roles": [role]})
                group = hosts[-1]
            group.setdefault("ips", []).extend(str(a) for a in addresses)

    return _edit(text, where, change)


def remove_hosts(text: str, where: str, ips: list[str], flag: str, role: str | None) -> str:
    """delete: the addresses leave their groups (a range is split around them); a group left
    with no address goes. role: each address must be a master (or a worker) there."""
    wanted = {_address(ip, flag) for ip in ips}

    def change(spec: dict) -> None:
        hosts = spec.get("hosts") or []
        found = set()
        for group in list(hosts):
            roles = list(group.get("roles") or [])
            entries = group.get("ips") or []
            kept = []
            for entry in entries:
                bounds = _entry_addresses(entry)
                hit = bounds and {a for a in wanted if bounds[0] <= a <= bounds[1]}
                if not hit:
                    kept.append(entry)
                    continue
                if role and (MASTER in roles) != (role == MASTER):
                    names = ", ".join(str(a) for a in sorted(hit))
                    raise SealerError(f"{flag} {names}: not a {role} in {where}")
                found |= hit
                kept += _split(bounds[0], bounds[1], hit)
            if not kept:
                hosts.remove(group)
            elif kept != list(entries):
                group["ips"][:] = kept  # in place: the list keeps its style and comments
        missing = wanted - found
        if missing:
            names = ", ".join(str(a) for a in sorted(missing))
            raise SealerError(f"{flag} {names}: not a host of {where}")

    return _edit(text, where, change)


def _split(start, end, removed: set) -> list[str]:
    """What remains of the range start-end without the removed addresses, as entries."""
    pieces, run = [], None
    for n in range(int(end) - int(start) + 1):
        address = start + n
        if address in removed:
            if run:
                pieces.append(run)
            run = None
        else:
            run = (run[0], address) if run else (address, address)
    if run:
        pieces.append(run)
    return [str(a) if a == b else f"{a}-{b}" for a, b in pieces]


def set_image(text: str, where: str, image: str) -> str:
    """upgrade: spec.image names the new ClusterImage."""
    if not image.strip():
        raise SealerError("upgrade: the image name is empty")

    def change(spec: dict) -> None:
        spec["image"] = image

    return _edit(text, where, change)
