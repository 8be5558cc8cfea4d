"""What every stand-in shares: where the image's files are, and small file and YAML helpers."""

import os
import sys

# The HTTP, threading and YAML modules are imported where they are used: most invocations
# (systemctl, --version, ...) need none of them, and every stand-in start costs CPU on hosts
# that share two cores.

# This package lives in the image's lib/sandbox-standin (with PyYAML, etcd, etcdctl), installed
# as /usr/local/lib/sandbox-standin; the tools' wrappers are in the bin/ beside lib/.
LIB = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))

BIN = os.path.normpath(os.path.join(LIB, "..", "..", "bin"))

LOG_DIR = "/var/log/sandbox-standin"

RUN_DIR = "/run/sandbox-systemd"


def fail(message, code=1):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def node_name():
    return os.uname().nodename


def read_file(path, default=None):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return default


def write_file(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def load_yaml_documents(path, what):
    """Every document of a YAML file, parsed by PyYAML (multi-document, flow and block)."""
    sys.path.insert(0, LIB)
    import yaml

    text = read_file(path)
    if text is None:
        fail(f"unable to read {what} {path}: no such file or directory")
    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        fail(f"{path}: {what} is not valid YAML: {e}")


def load_yaml(path, what):
    docs = load_yaml_documents(path, what)
    if len(docs) > 1:
        fail(f"{path}: {what} holds {len(docs)} documents; one was expected")
    config = docs[0] if docs else {}
    if not isinstance(config, dict):
        fail(f"{path}: {what} is not a mapping")
    return config


def ip_address(value, what):
    """A node address given to the tool; refused unless it is an IPv4 or IPv6 address."""
    import ipaddress

    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        fail(f"{what}: {value!r} is not a valid IP address")
