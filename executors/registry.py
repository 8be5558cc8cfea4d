"""Serve the image's registry on its hosts, and point every host's container runtime at it.

A registry host keeps, beside the rootfs, `<dataRoot>/<cluster>/registry/`: the Distribution
storage (docker/registry/v2/...), config.yml, certs/ and auth/. The registry program is the
image's own `bin/registry`, started detached with a pid file. A serve sends only the blobs
the host does not have yet (blobs are named by digest: same name, same bytes) and the small
repository links, so a rebuilt image with one new container image costs that image's layers.

Every host gets: hosts-file lines mapping the domain to the serving masters (its own address
first when it serves; clients go to the next address when one refuses the connection), the
CA (containerd, docker and containers/image trust folders), containerd `hosts.toml` for the
registry and as a mirror of the registries the images came from, k3s `registries.yaml`, a
k0s containerd drop-in, and with a username the kubelet's credential file.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shlex
import tarfile
import tempfile
import time
from pathlib import Path

import bcrypt
import yaml

from cluster import registry as registries
from cluster.errors import SealerError
from cluster.registry import Registry
from executors import hostsfile, registry_pki
from executors.distribute import add_file, root_owned
from executors.driver import Remote
from executors.facts import REGISTRY_MARK

MARK = REGISTRY_MARK
BLOBS = "docker/registry/v2/blobs"
REPOSITORIES = "docker/registry/v2/repositories"
CONTAINERD_CERTS = "/etc/containerd/certs.d"
TRUST_FOLDERS = (CONTAINERD_CERTS, "/etc/docker/certs.d", "/etc/containers/certs.d")
K3S_REGISTRIES = "/etc/rancher/k3s/registries.yaml"
K0S_DROP_IN = "/etc/k0s/containerd.d/sealer-registry.toml"
KUBELET_AUTH = "/var/lib/kubelet/config.json"
START_WAIT = 15  # seconds for the registry to listen


def folder(rootfs: str) -> str:
    """<dataRoot>/<cluster>/registry, beside the rootfs (which a sync replaces)."""
    return f"{os.path.dirname(rootfs)}/registry"


def _listen(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


# ---- serving ----


def serve(remote: Remote, ip: str, registry: Registry, image, rootfs: str, cluster: str) -> int:
    """Bring the host's registry to this image's content and settings, running. Returns the
    number of blobs sent."""
    target = folder(rootfs)
    sent = add_images(remote, image, rootfs, _server_files(ip, registry, target, cluster))
    remote.run(_start_command(target, f"{rootfs}/bin/registry", ip, registry.port))
    return sent


def add_images(remote: Remote, image, rootfs: str, extra: dict | None = None) -> int:
    """Send the blobs of image's registry/ the host lacks, and its repository links (and the
    extra files): a running registry serves them at once. Returns the blobs sent."""
    target = folder(rootfs)
    have = set(remote.run(_list_blobs_command(target)).stdout.split())
    local = Path(image.rootfs) / "registry"
    with tempfile.NamedTemporaryFile(suffix=".tar") as tar_file:
        sent = _pack(tar_file, local, have, extra or {})
        tar_file.flush()
        remote.upload(_unpack_command(target), tar_file.name)
    return sent


def _unpack_command(target: str) -> str:
    """Unpack into a staging folder, then rename each file into place, blobs first: a copy cut
    short leaves no half blob that a later listing would take as present, and a link never
    names a blob that is not there yet."""
    script = f"""
dir={shlex.quote(target)}; stage="$dir/.incoming"
mkdir -p "$dir" && chmod 0700 "$dir" && rm -rf "$stage" && mkdir "$stage" &&
tar xf - --no-same-owner -C "$stage" && cd "$stage" || exit 1
for part in {BLOBS} .; do
  [ -d "$part" ] || continue
  find "$part" -type d -exec mkdir -p "$dir/{{}}" ';' &&
  find "$part" -type f -exec mv -f {{}} "$dir/{{}}" ';' || exit 1
done
cd "$dir" && rm -rf "$stage"
"""
    return f"bash -c {shlex.quote(script)}"


def check_ca(remote: Remote, ip: str, rootfs: str, cluster: str) -> None:
    """Refuse to go on when the CA that signed the host's registry certificate is not the one
    on this machine: a new CA would leave every host trusting the old one. (Another machine
    sharing the state must hold the CA too.)"""
    path = shlex.quote(f"{folder(rootfs)}/certs/ca.crt")
    served = remote.run(f"cat {path} 2>/dev/null || true").stdout.strip()
    if not served:
        return
    where = registry_pki.folder_of(cluster)
    if not registry_pki.has_ca(cluster):
        problem = f"its CA is not on this machine ({where}/registry-ca.crt and .key)"
    elif registry_pki.ca(cluster)[0].decode().strip() != served:
        problem = f"it was signed by another CA than the one in {where}"
    else:
        return
    raise SealerError(
        f"{ip}: the cluster's registry certificate: {problem}; copy registry-ca.crt and "
        f"registry-ca.key from the machine that created the cluster into {where}"
    )


def _list_blobs_command(target: str) -> str:
    blobs = shlex.quote(f"{target}/{BLOBS}")
    return f"test ! -d {blobs} || (cd {blobs} && find . -type f -name data)"


def _pack(tar_file, local: Path, have: set[str], extra: dict[str, tuple[bytes, int]]) -> int:
    """A tar of the blobs the host lacks, every repository link, and the server's files."""
    sent = 0
    with tarfile.open(fileobj=tar_file, mode="w") as tar:
        blobs = local / BLOBS
        for path in sorted(blobs.rglob("data")) if blobs.is_dir() else []:
            relative = f"./{path.relative_to(blobs)}"
            if relative not in have and path.is_file() and not path.is_symlink():
                tar.add(path, arcname=f"{BLOBS}/{relative[2:]}", filter=root_owned)
                sent += 1
        repositories = local / REPOSITORIES
        for path in sorted(repositories.rglob("*")) if repositories.is_dir() else []:
            if path.is_file() and not path.is_symlink():
                tar.add(path, arcname=str(path.relative_to(local)), filter=root_owned)
        for name, (content, mode) in sorted(extra.items()):
            add_file(tar, name, content, mode, int(time.time()))
    return sent


def _server_files(
    ip: str, registry: Registry, target: str, cluster: str
) -> dict[str, tuple[bytes, int]]:
    files: dict[str, tuple[bytes, int]] = {}
    tls, htpasswd = None, ""
    if not registry.insecure:
        names = [registry.domain, *registry.dns_names]
        cert, key = registry_pki.server(cluster, names, [ip, *registry.ips])
        files["certs/server.crt"], files["certs/server.key"] = (cert, 0o644), (key, 0o600)
        files["certs/ca.crt"] = (registry_pki.ca(cluster)[0], 0o644)  # see check_ca
        tls = {"certificate": f"{target}/certs/server.crt", "key": f"{target}/certs/server.key"}
    if registry.username:
        hashed = bcrypt.hashpw(registry.password.encode(), bcrypt.gensalt(rounds=10))
        files["auth/htpasswd"] = (f"{registry.username}:".encode() + hashed + b"\n", 0o600)
        htpasswd = f"{target}/auth/htpasswd"
    config = registries.distribution_config(
        target, _listen(ip, registry.port), tls=tls, htpasswd=htpasswd
    )
    files["config.yml"] = (yaml.safe_dump(config, sort_keys=False).encode(), 0o600)
    return files


# Stop the registry the pid file names, if that process is still a registry (not a reused pid).
_STOP_RUNNING = """old=$(cat "$pidfile" 2>/dev/null)
if [ -n "$old" ] && grep -qa registry "/proc/$old/cmdline" 2>/dev/null; then
  kill "$old"; for i in $(seq 50); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
fi"""


def _start_command(target: str, program: str, ip: str, port: int) -> str:
    """(Re)start the registry detached from the SSH session; wait until it listens."""
    q = shlex.quote
    host = ip.strip("[]")
    script = f"""
dir={q(target)}; pidfile="$dir/registry.pid"
{_STOP_RUNNING}
nohup setsid {q(program)} serve "$dir/config.yml" > "$dir/registry.log" 2>&1 < /dev/null &
echo $! > "$pidfile"
for i in $(seq {START_WAIT * 10}); do
  (exec 3<>/dev/tcp/{q(host)}/{port}) 2>/dev/null && exit 0
  kill -0 "$(cat "$pidfile")" 2>/dev/null || break
  sleep 0.1
done
echo "the registry did not start: $(tail -c 300 "$dir/registry.log")" >&2
exit 1
"""
    return f"bash -c {q(script)}"


def stop_command(rootfs: str, remove: bool = False) -> str:
    """Stop the host's registry (and with remove, drop its storage)."""
    q = shlex.quote
    target = folder(rootfs)
    script = f"""
dir={q(target)}; pidfile="$dir/registry.pid"
{_STOP_RUNNING}
rm -f "$pidfile"
"""
    if remove:
        script += 'rm -rf "$dir"\n'
    return f"bash -c {q(script)}"


# ---- clients ----


def hosts_lines(registry: Registry, serving: list[str], ip: str) -> list[str]:
    if registry.kind != registries.LOCAL:
        return []
    ordered = sorted(serving, key=lambda s: s != ip)  # itself first when it serves
    return [f"{address} {registry.domain}" for address in ordered]


def client_files(registry: Registry, runtime: str, cluster: str) -> dict[str, tuple[bytes, int]]:
    """Absolute path -> (content, mode) of what points the host's runtime at the registry."""
    endpoint, scheme = registry.endpoint, registry.scheme
    files: dict[str, tuple[bytes, int]] = {}
    ca_path = ""
    if registry.kind == registries.LOCAL and not registry.insecure:
        ca_pem, _ = registry_pki.ca(cluster)
        for trust in TRUST_FOLDERS:
            files[f"{trust}/{endpoint}/ca.crt"] = (ca_pem, 0o644)
        ca_path = f"{CONTAINERD_CERTS}/{endpoint}/ca.crt"
    trust = f'ca = "{ca_path}"\n' if ca_path else ""
    trust += "skip_verify = true\n" if registry.insecure else ""
    host_entry = f'[host."{scheme}://{endpoint}"]\n  capabilities = ["pull", "resolve"]\n'
    host_entry += "".join(f"  {line}\n" for line in trust.splitlines())
    header = f"{MARK}\n"
    # The registry's own name: its trust at the top level, which is the server's (containerd
    # gives a [host] entry's ca to that entry only; a server entry without one fails on the
    # registry's certificate, and that error hides a plain "not found").
    files[f"{CONTAINERD_CERTS}/{endpoint}/hosts.toml"] = (
        (header + f'server = "{scheme}://{endpoint}"\n' + trust).encode(),
        0o644,
    )
    for source in registry.mirrored:  # the images' own names pull through the registry
        files[f"{CONTAINERD_CERTS}/{source}/hosts.toml"] = (
            (header + f'server = "{registries.mirror_server(source)}"\n\n' + host_entry).encode(),
            0o644,
        )
    if registry.username:
        auth = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
        config = {"auths": {endpoint: {"auth": auth}}}
        files[KUBELET_AUTH] = (json.dumps(config, indent=1).encode() + b"\n", 0o600)
    if runtime == "k3s":
        files[K3S_REGISTRIES] = (_k3s_registries(registry, ca_path), 0o600)
    if runtime == "k0s":
        files[K0S_DROP_IN] = (
            (
                f'{MARK}\n[plugins."io.containerd.grpc.v1.cri".registry]\n'
                f'  config_path = "{CONTAINERD_CERTS}"\n'
            ).encode(),
            0o644,
        )
    return files


def _k3s_registries(registry: Registry, ca_path: str) -> bytes:
    url = f"{registry.scheme}://{registry.endpoint}"
    mirrors = {name: {"endpoint": [url]} for name in (registry.endpoint, *registry.mirrored)}
    config: dict = {}
    if ca_path:
        config["tls"] = {"ca_file": ca_path}
    if registry.insecure:
        config["tls"] = {"insecure_skip_verify": True}
    if registry.username:
        config["auth"] = {"username": registry.username, "password": registry.password}
    document = {"mirrors": mirrors, "configs": {registry.endpoint: config} if config else {}}
    return (f"{MARK}\n" + yaml.safe_dump(document, sort_keys=False)).encode()


def configure(
    remote: Remote,
    ip: str,
    registry: Registry,
    serving: list[str],
    runtime: str,
    cluster: str,
) -> None:
    files = client_files(registry, runtime, cluster)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, (content, mode) in sorted(files.items()):
            add_file(tar, path.lstrip("/"), content, mode, int(time.time()))
    secrets = (registry.password,) if registry.password else ()
    remote.run("tar xf - --no-same-owner -C /", stdin=buffer.getvalue(), secrets=secrets)
    remote.run(hostsfile.set_lines_command(MARK, hosts_lines(registry, serving, ip)))


def unconfigure_command(endpoint: str, mirrored: tuple[str, ...] = ()) -> str:
    """Take the registry's hosts-file lines, trust folders and mirror files (those sealer
    wrote: marked) off a host."""
    q = shlex.quote
    folders = " ".join(q(f"{trust}/{endpoint}") for trust in TRUST_FOLDERS) if endpoint else ""
    removal = f"rm -rf {folders}; " if folders else ""
    for source in mirrored:
        path = q(f"{CONTAINERD_CERTS}/{source}/hosts.toml")
        removal += f"! grep -qF {q(MARK)} {path} 2>/dev/null || rm -f {path}; "
    return removal + hostsfile.set_lines_command(MARK, [])


READ_HOSTS_COMMAND = hostsfile.read_command(MARK)


# ---- pruning ----


def prune(
    remote: Remote, registry: Registry, keep_names: list[str], rootfs: str, ip: str
) -> tuple[int, int]:
    """Drop the tags not in keep_names, then the blobs nothing references (the registry's own
    garbage-collect, with the registry stopped), and start it again.
    Returns the number of blob files before and after."""
    target = folder(rootfs)
    keep = "".join(f"{name}\n" for name in keep_names)
    q = shlex.quote
    script = f"""
keep=$(cat); dir={q(target)}
count() {{ find "$dir/{BLOBS}" -type f -name data 2>/dev/null | wc -l; }}
before=$(count)
{stop_command(rootfs)}
cd "$dir/{REPOSITORIES}" 2>/dev/null && find . -type d -path '*/_manifests/tags/*' -prune |
  while read -r tag_dir; do
    repo=${{tag_dir#./}}; repo=${{repo%%/_manifests/tags/*}}; tag=${{tag_dir##*/}}
    printf '%s\\n' "$keep" | grep -qxF "$repo:$tag" || rm -rf "$tag_dir"
  done
{q(rootfs + "/bin/registry")} garbage-collect --delete-untagged "$dir/config.yml" > "$dir/gc.log" 2>&1 ||
  {{ tail -c 300 "$dir/gc.log" >&2; exit 1; }}
echo "$before $(count)"
"""
    out = remote.run(f"bash -c {q(script)}", stdin=keep.encode()).stdout.split()
    remote.run(_start_command(target, f"{rootfs}/bin/registry", ip, registry.port))
    return int(out[-2]), int(out[-1])
