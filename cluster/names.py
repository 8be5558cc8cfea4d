"""What a name may look like before it goes anywhere near a command line.

Each check returns the problem as a phrase, or "" when the value is fine. The rules are the
real tools' own: Kubernetes for node names, labels and taints, semver for versions, POSIX for
user names. Remote commands still quote every value (shlex); these checks make a hostile value
an error with a clear message instead of an odd argument.
"""

from __future__ import annotations

import re

NODE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?\Z")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?\Z")
VERSION = re.compile(
    r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?"
    r"(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?\Z"
)
POSIX_USER = re.compile(r"^[a-z_][a-z0-9_-]*\$?\Z")


def node_name_problem(name: str) -> str:
    """A node name (the host's hostname): an RFC 1123 subdomain, as Kubernetes requires."""
    if len(name) > 253 or not NODE_NAME.fullmatch(name):
        return "is not a valid node name (RFC 1123: lowercase letters, digits, '-' and '.')"
    return ""


def dns_name_problem(name: str) -> str:
    """A host name that other hosts resolve (the control-plane endpoint, a certificate SAN)."""
    if len(name) > 253 or not NODE_NAME.fullmatch(name):
        return "is not a DNS name (lowercase letters, digits, '-' and '.')"
    return ""


def label_key_problem(key: str) -> str:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not NODE_NAME.fullmatch(prefix)):
        return "is not a valid label key (its prefix must be a DNS subdomain)"
    if len(name) > 63 or not LABEL_NAME.fullmatch(name):
        return (
            "is not a valid label key (at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit)"
        )
    return ""


def label_value_problem(value: str) -> str:
    if len(value) > 63 or not LABEL_VALUE.fullmatch(value):
        return (
            "is not a valid label value (at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit)"
        )
    return ""


def version_problem(version: str) -> str:
    if not VERSION.fullmatch(version):
        return "is not of the form vMAJOR.MINOR.PATCH (semantic versioning: v1.25.3, v1.25.3+k3s1)"
    return ""


CLUSTER_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")


def cluster_name_problem(name: str) -> str:
    """A cluster's name: it names folders and state files, so it is a DNS label."""
    if not CLUSTER_NAME.fullmatch(name):
        return "is not a cluster name (lowercase letters, digits and '-', at most 63)"
    return ""


def user_problem(user: str) -> str:
    if len(user) > 32 or not POSIX_USER.fullmatch(user):
        return "is not a POSIX user name (lowercase letters, digits, '_' and '-')"
    return ""


DEFAULT_DATA_ROOT = "/var/lib/sealer/data"  # sealer's: where each cluster's rootfs lives on hosts
DATA_ROOT = re.compile(r"^(/[A-Za-z0-9._-]+)+\Z")


def data_root_problem(path: str) -> str:
    """spec.dataRoot becomes a path in commands on every host (and `rm -rf` of a folder in it)."""
    parts = path.split("/")[1:]
    if not DATA_ROOT.fullmatch(path) or any(p in (".", "..") for p in parts):
        return (
            "is not an absolute path of plain names (letters, digits, '.', '_', '-'; no '..', "
            "no trailing '/')"
        )
    if len(parts) < 2:  # `/` or `/var`: removing the cluster would reach system folders
        return "must be at least two levels deep (e.g. /var/lib/sealer/data)"
    return ""


def address_problem(address: str) -> str:
    """A host to connect to (a bastion): an IP address or a DNS name, never an option."""
    import ipaddress

    try:
        ipaddress.ip_address(address)
        return ""
    except ValueError:
        pass
    if len(address) > 253 or not NODE_NAME.fullmatch(address.lower()):
        return "is not an IP address or a DNS name"
    return ""
