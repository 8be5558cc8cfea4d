"""Build the sandbox ClusterImages into examples/images/<runtime>-<version>/.

Kubernetes binaries cannot be downloaded on the machines sealer is tested on, so these images
carry SANDBOX STAND-INS (src/sandbox_standin/) in place of kubeadm/kubelet/kubectl, k3s and
k0s. Everything else is a real ClusterImage rootfs: Metadata, bin/, scripts/init.sh,
scripts/clean.sh, etc/, and bin/registry: Debian's registry (Distribution 2.8, unpacked into
.vendor/registry by scripts/setup), which sealer runs on the masters to serve the images'
registry/ folder (sealer build fills it with the container images the manifests name).
The control plane underneath is real: each image carries Debian's etcd (scripts/setup unpacks
it into .vendor/etcd), and the stand-ins read YAML with PyYAML's pure-Python parser, carried in
lib/sandbox-standin/ so that the images need nothing on a host but Python 3.
The container runtime of the kubernetes images is real too: Debian's containerd and runc
(.vendor/containerd), which the stand-in kubelet asks to pull every pod's images, and the
images kubeadm's control plane names (pause, etcd, kube-apiserver, ...) are tiny real OCI
images made here, offline, and collected into registry/ as sealer build collects any other.
The output is deterministic: the same source gives the same image digest.

    python examples/images/build.py            # all six images
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "src"))
# kubeadm's image tags, from the one table the kubeadm stand-in names and pulls them by
from sandbox_standin.kubeadm_images import image_tags  # noqa: E402

VENDOR = HERE / ".vendor"
VERSIONS = ("v1.25.3", "v1.26.1")
BINARIES = {
    "kubernetes": (
        "kubeadm",
        "kubelet",
        "kubectl",
        "kube-apiserver",
        "etcdctl",
        "crictl",
        "systemctl",
        "helm",
    ),
    "k3s": ("k3s", "kubectl", "systemctl", "helm"),
    "k0s": ("k0s", "kubectl", "systemctl", "helm"),
}

# Real programs the kubernetes images carry in bin/ (init.sh installs them in /usr/local/bin).
CONTAINERD_TOOLS = ("containerd", "containerd-shim-runc-v2", "ctr", "runc")
REAL_BINARIES = {"kubernetes": CONTAINERD_TOOLS, "k3s": (), "k0s": ()}

# The stand-in is imported as a package from the image's lib/ (not run as a script, which
# Python compiles at every start): its bytecode, and PyYAML's, ship compiled in the image.
STANDIN_PACKAGE = "sandbox_standin"
PYTHON = "/usr/bin/python3"
LOADER = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); "
    f"from {STANDIN_PACKAGE}.main import main; main()"
)
WRAPPER = """#!/bin/sh
# SANDBOX STAND-IN for {tool} {version}: not the real {tool}. See lib/sandbox-standin/.
{fast}lib="$(dirname "$(readlink -f "$0")")/../lib/sandbox-standin"
exec {python} -S -c '{loader}' "$lib" {tool} {version} "$@"
"""

# The questions a refresh asks every host (the version, whether the services run) answered
# in sh, as the stand-in would: a Python start per host and question is what a drift of
# a thousand hosts sharing two cores would otherwise spend its time on. Read-only, so they are
# not in the stand-in's command log (which tests read for the commands that change things).
VERSION_ANSWER = """if [ "$*" = "{question}" ]; then echo "{answer}"; exit 0; fi
"""
SYSTEMCTL = """running() {  # the unit's service process lives: its pid file, not a zombie
  pid=; stat=
  read -r pid 2>/dev/null < "/run/sandbox-systemd/${1%.service}.pid"
  case $pid in ''|*[!0-9]*) return 1 ;; esac
  read -r stat 2>/dev/null < "/proc/$pid/stat"
  case $stat in ''|*") Z "*) return 1 ;; esac
}
if [ "$1" = is-active ] && [ $# -ge 2 ]; then  # one line per unit; 0 if one runs
  shift; code=3
  for unit in "$@"; do
    if running "$unit"; then echo active; code=0; else echo inactive; fi
  done
  exit $code
fi
# `enable [--now] UNIT` and `start UNIT`, when the unit's ExecStart is plain words: the unit
# enabled (the link systemd makes for WantedBy=multi-user.target, which the sandbox host's init
# starts at boot) and the service started here as the stand-in's enable_unit and
# start_unit would (logged the same way), which saves a Python start per joining node.
# Anything else goes on to the stand-in.
unit=; command=; enable=
if [ $# -eq 3 ] && [ "$1" = enable ] && [ "$2" = --now ]; then unit=${3%.service}; enable=1
elif [ $# -eq 2 ] && [ "$1" = enable ]; then unit=${2%.service}; enable=1
elif [ $# -eq 2 ] && [ "$1" = start ]; then unit=${2%.service}
fi
case $unit in ''|*[!A-Za-z0-9@._-]*) unit= ;; esac
wanted=
if [ -n "$unit" ] && [ -f "/etc/systemd/system/$unit.service" ]; then
  while IFS= read -r line; do  # one read: whether boot starts the unit, and what it runs
    case $line in
      WantedBy=multi-user.target) wanted=1 ;;
      ExecStart=*) [ -n "$command" ] || command=${line#ExecStart=} ;;
    esac
  done < "/etc/systemd/system/$unit.service"
fi
[ -n "$enable" ] && [ -z "$wanted" ] && unit=  # left to the stand-in (its warning)
if [ -n "$enable" ] && [ -n "$wanted" ]; then
  wants=/etc/systemd/system/multi-user.target.wants
  mkdir -p "$wants" && ln -sfn "/etc/systemd/system/$unit.service" "$wants/$unit.service"
  if [ $# -eq 2 ]; then
    mkdir -p /var/log/sandbox-standin
    printf '{"time": %s, "argv": ["systemctl", "enable", "%s"], "read_only": false}\\n' \\
      "$(date +%s.%N)" "$2" >> /var/log/sandbox-standin/commands.log
    exit 0
  fi
fi
if [ -z "$unit" ] || [ -n "$SANDBOX_SERVICE" ] || ! command -v setsid >/dev/null; then
  command=
fi
if [ -n "$command" ]; then
  case $command in *[!A-Za-z0-9\\ /._=,:@-]*) command= ;; esac
  # The service inherits no descriptor of ours beyond 0-2 (a caller's `flock` lock would live
  # as long as the service): 3-9 are closed for it, higher ones (sh keeps this script open on
  # one) must be close-on-exec, or the Python way is taken.
  closed=
  [ -d "/proc/$$/fd" ] || command=  # no /proc: descriptors unknown
  for fd in /proc/$$/fd/*; do
    fd=${fd##*/}
    case $fd in 0|1|2) continue ;; [3-9]) closed="$closed $fd>&-"; continue ;; esac
    flags=
    if [ -e "/proc/$$/fdinfo/$fd" ]; then
      while read -r key value; do [ "$key" = flags: ] && flags=$value; done \\
        < "/proc/$$/fdinfo/$fd"
      [ $((0$flags & 02000000)) -ne 0 ] || command=
    fi
  done
fi
if [ -n "$command" ]; then
  logs=/var/log/sandbox-standin; pids=/run/sandbox-systemd
  mkdir -p "$logs" "$pids"
  words=; for word in "$@"; do words="$words, \\"$word\\""; done
  printf '{"time": %s, "argv": ["systemctl"%s], "read_only": false}\\n' \\
    "$(date +%s.%N)" "$words" >> "$logs/commands.log"
  if ! running "$unit"; then
    set -f; set -- $command; set +f
    # In the background of a shell without job control the child leads no process group,
    # so setsid makes it a session leader without forking: $! stays the service's pid.
    eval 'SANDBOX_SERVICE=$unit setsid "$@" < /dev/null >> "$logs/$unit.log" 2>&1'"$closed &"
    echo $! > "$pids/$unit.pid.tmp" && mv -f "$pids/$unit.pid.tmp" "$pids/$unit.pid"
  fi
  exit 0
fi
"""


def fast_answers(tool: str, version: str) -> str:
    if tool == "systemctl":
        return SYSTEMCTL
    answers = {
        "k3s": ("--version", f"k3s version {version}+k3s1 (SANDBOX STAND-IN)"),
        "kubelet": ("--version", f"Kubernetes {version}"),
        "k0s": ("version", f"{version}+k0s.0"),
    }
    if tool not in answers:
        return ""
    question, answer = answers[tool]
    return VERSION_ANSWER.format(question=question, answer=answer)


INIT = """#!/bin/bash
# Prepare this host for {runtime} {version} (sandbox image): install the binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
install -d /usr/local/bin /usr/local/lib/sandbox-standin
for tool in bin/*; do  # bin/registry runs from the rootfs, on the registry's hosts only
  [ "$(basename "$tool")" = registry ] || install -m 0755 "$tool" /usr/local/bin/
done
cp -a --remove-destination lib/sandbox-standin/. /usr/local/lib/sandbox-standin/  # running etcd: new inode
{extra}
echo "{runtime} {version} installed (SANDBOX STAND-IN binaries)"
"""

CLEAN = """#!/bin/bash
# Undo scripts/init.sh: remove what it installed and what the runtime left on the host.
set -uo pipefail
{stop}for tool in {binaries}; do rm -f "/usr/local/bin/$tool"; done
rm -rf {paths} /usr/local/lib/sandbox-standin
echo "host cleaned"
"""

# containerd as sealer's base images install it: a systemd unit, and a config.toml whose CRI
# plugin reads registry hosts from /etc/containerd/certs.d (where sealer writes hosts.toml and
# the registry's CA). The snapshotter is "native" (plain copies): a sandbox host's root is an
# overlayfs, and the kernel refuses an overlayfs (containerd's default snapshotter) whose upper
# layer is on another overlayfs; native works on any filesystem.
CONTAINERD_INIT = """install -d /etc/containerd/certs.d /etc/systemd/system
cat > /etc/containerd/config.toml <<'TOML'
version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "sea.hub:5000/pause:{pause}"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "/etc/containerd/certs.d"
TOML
cat > /etc/systemd/system/containerd.service <<'UNIT'
[Unit]
Description=containerd container runtime
After=network.target local-fs.target
[Service]
ExecStart=/usr/local/bin/containerd
Type=notify
Delegate=yes
KillMode=process
Restart=always
[Install]
WantedBy=multi-user.target
UNIT
systemctl enable --now containerd
for _ in $(seq 100); do  # its socket answers within a second
  ctr version >/dev/null 2>&1 && break
  sleep 0.1
done
ctr version >/dev/null || {{ echo "containerd did not start" >&2; exit 1; }}
"""

EXTRA_INIT = {
    "kubernetes": """install -d /etc/systemd/system /var/lib/kubelet
cat > /etc/systemd/system/kubelet.service <<'UNIT'
[Service]
ExecStart=/usr/local/bin/kubelet --kubeconfig=/etc/kubernetes/kubelet.conf --config=/var/lib/kubelet/config.yaml
[Install]
WantedBy=multi-user.target
UNIT
systemctl enable kubelet  # as sealer's base images do: kubeadm starts it, boots start it again""",
    "k3s": """install -d /etc/rancher/k3s /etc/systemd/system
for kind in "" "-agent"; do
  cat > "/usr/local/bin/k3s${kind}-uninstall.sh" <<UNINSTALL
#!/bin/sh
# SANDBOX STAND-IN of the uninstall script the k3s installer writes.
systemctl stop k3s${kind} || true
rm -rf /etc/rancher/k3s /var/lib/rancher/k3s /var/lib/sandbox-apiserver /etc/systemd/system/k3s${kind}.service
rm -f /etc/systemd/system/multi-user.target.wants/k3s${kind}.service
rm -f /usr/local/bin/k3s-uninstall.sh /usr/local/bin/k3s-agent-uninstall.sh
UNINSTALL
  chmod 0755 "/usr/local/bin/k3s${kind}-uninstall.sh"
done""",
    "k0s": "install -d /etc/k0s",
}

# containerd stops before its files go (sealer's own files in /etc/containerd/certs.d are
# taken away by sealer when the host leaves the cluster).
CONTAINERD_STOP = """systemctl stop containerd 2>/dev/null || true
"""
CONTAINERD_PATHS = (
    "/var/lib/containerd /run/containerd /etc/containerd/config.toml "
    "/etc/systemd/system/containerd.service "
    "/etc/systemd/system/multi-user.target.wants/containerd.service "
)

CLEAN_PATHS = {
    "kubernetes": CONTAINERD_PATHS
    + "/etc/kubernetes /var/lib/kubelet /var/lib/etcd /var/lib/sandbox-apiserver "
    "/etc/systemd/system/kubelet.service "
    "/etc/systemd/system/multi-user.target.wants/kubelet.service /root/.kube",
    "k3s": "/etc/rancher/k3s /var/lib/rancher/k3s /var/lib/sandbox-apiserver "
    "/etc/systemd/system/k3s.service /etc/systemd/system/k3s-agent.service "
    "/etc/systemd/system/multi-user.target.wants/k3s.service "
    "/etc/systemd/system/multi-user.target.wants/k3s-agent.service "
    "/usr/local/bin/k3s-uninstall.sh /usr/local/bin/k3s-agent-uninstall.sh /root/.kube",
    "k0s": "/etc/k0s /var/lib/k0s /var/lib/sandbox-apiserver "
    "/etc/systemd/system/k0scontroller.service /etc/systemd/system/k0sworker.service "
    "/etc/systemd/system/multi-user.target.wants/k0scontroller.service "
    "/etc/systemd/system/multi-user.target.wants/k0sworker.service /root/.kube",
}

# The image's default kubeadm documents, as sealer's images keep them (etc/kubeadm.yml):
# sealer merges the Clusterfile's documents over them, one document per kind, and points
# imageRepository at the cluster's registry (sea.hub:5000 by default) when none is named.
KUBEADM_DEFAULTS = """apiVersion: kubeadm.k8s.io/v1beta3
kind: InitConfiguration
localAPIEndpoint:
  bindPort: 6443
nodeRegistration:
  criSocket: unix:///run/containerd/containerd.sock
---
apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
kubernetesVersion: {version}
clusterName: kubernetes
networking:
  dnsDomain: cluster.local
  podSubnet: 100.64.0.0/10
  serviceSubnet: 10.96.0.0/22
apiServer:
  extraArgs:
    audit-log-maxage: "30"
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: ipvs
"""

ETC = {
    "kubernetes": ("kubeadm.yml", KUBEADM_DEFAULTS),
    "k3s": (
        "k3s-config.yaml",
        '# template; sealer writes /etc/rancher/k3s/config.yaml\nwrite-kubeconfig-mode: "0600"\n',
    ),
    "k0s": (
        "k0s.yaml",
        "apiVersion: k0s.k0sproject.io/v1beta1\nkind: ClusterConfig\nmetadata:\n  name: k0s\n",
    ),
}


def build(runtime: str, version: str, out: Path) -> Path:
    folder = out / f"{runtime}-{version}"
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "bin").mkdir(parents=True)
    for tool in BINARIES[runtime]:
        wrapper = WRAPPER.format(
            tool=tool,
            version=version,
            fast=fast_answers(tool, version),
            loader=LOADER,
            python=PYTHON,
        )
        (folder / "bin" / tool).write_text(wrapper)
    _carry_libraries(folder / "lib" / "sandbox-standin", runtime)
    shutil.copytree(
        HERE / "src" / STANDIN_PACKAGE,
        folder / "lib" / "sandbox-standin" / STANDIN_PACKAGE,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    _compile(folder / "lib" / "sandbox-standin")
    (folder / "scripts").mkdir()
    extra = EXTRA_INIT[runtime]
    if REAL_BINARIES[runtime]:
        pause = image_tags(version)["pause"]
        extra = CONTAINERD_INIT.format(pause=pause) + extra
    (folder / "scripts" / "init.sh").write_text(
        INIT.format(runtime=runtime, version=version, extra=extra)
    )
    (folder / "scripts" / "clean.sh").write_text(
        CLEAN.format(
            stop=CONTAINERD_STOP if REAL_BINARIES[runtime] else "",
            binaries=" ".join(BINARIES[runtime] + REAL_BINARIES[runtime]),
            paths=CLEAN_PATHS[runtime],
        )
    )
    (folder / "etc").mkdir()
    name, text = ETC[runtime]
    (folder / "etc" / name).write_text(text.format(version=version))
    registry = _vendored("registry", "registry")
    shutil.copy(registry, folder / "bin" / "registry")
    for tool in REAL_BINARIES[runtime]:
        shutil.copy(_vendored("containerd", tool), folder / "bin" / tool)
    metadata = {
        "version": version,
        "arch": "amd64",
        "variant": "sandbox",
        "kubeVersion": version,
        "ClusterRuntime": runtime,
    }
    if REAL_BINARIES[runtime]:  # a container runtime: the images kubeadm pulls, in registry/
        metadata["containerImages"] = _control_plane_images(folder, version, registry)
    (folder / "Metadata").write_text(json.dumps(metadata, indent=1) + "\n")
    for path in list((folder / "bin").iterdir()) + list((folder / "scripts").iterdir()):
        os.chmod(path, 0o755)
    return folder


def control_plane_sources(version: str) -> list[str]:
    """kubeadm's images for this version, by their registry.k8s.io names."""
    return [f"registry.k8s.io/{name}:{tag}" for name, tag in image_tags(version).items()]


def _control_plane_images(folder: Path, version: str, registry_program: Path) -> list[dict]:
    """Tiny real OCI images under the names kubeadm's control plane uses, made offline (one
    layer: a file naming the image), listed in manifests/imageList as sealer's base images
    list theirs, and copied into registry/ with skopeo through a registry serving that folder,
    as sealer build collects images. Returns Metadata's containerImages."""
    from imagebuild import containers, local_registry
    from sandbox.oci import oci_image

    sources = control_plane_sources(version)
    (folder / "manifests").mkdir()
    listed = "".join(f"{source}\n" for source in sources)
    (folder / "manifests" / "imageList").write_text(
        "# kubeadm's control-plane images (sandbox: tiny images, no binaries inside)\n" + listed
    )
    collected = []
    with tempfile.TemporaryDirectory(prefix="sandbox-images-") as tmp:
        layout = Path(tmp) / "oci"
        with local_registry.running(folder / "registry", str(registry_program)) as address:
            for number, source in enumerate(sources, start=2):
                image = containers.parse(source, f"manifests/imageList:{number}")
                note = f"{source}: a SANDBOX image (no binary inside)\n".encode()
                digest = oci_image(layout, image.served_as, [{"sandbox-image": note}])
                subprocess.run(
                    ["skopeo", "copy", "--quiet", "--preserve-digests", "--dest-tls-verify=false",
                     f"oci:{layout}:{image.served_as}", f"docker://{address}/{image.served_as}"],
                    check=True, capture_output=True, stdin=subprocess.DEVNULL,
                )  # fmt: skip
                collected.append(
                    {"name": image.served_as, "source": source, "digest": digest,
                     "from": image.where}
                )  # fmt: skip
    return collected


def _vendored(package: str, program: str) -> Path:
    """A program scripts/setup unpacked from Debian's PACKAGE into .vendor/PACKAGE/."""
    source = VENDOR / package / program
    if not source.exists():
        sys.exit(
            f"build.py: {source} is missing; run scripts/setup (it unpacks Debian's {package})"
        )
    return source


def _carry_libraries(lib: Path, runtime: str) -> None:
    """The real etcd (and etcdctl where the distribution ships it) and PyYAML's pure-Python
    parser, for the stand-ins."""
    lib.mkdir(parents=True)
    tools = ("etcd", "etcdctl") if runtime == "kubernetes" else ("etcd",)
    for tool in tools:
        shutil.copy(_vendored("etcd", tool), lib / tool)
        os.chmod(lib / tool, 0o755)
    (lib / "yaml").mkdir()
    for module in sorted(Path(yaml.__file__).parent.glob("*.py")):
        shutil.copy(module, lib / "yaml" / module.name)


def _compile(lib: Path) -> None:
    """Bytecode for the stand-in and PyYAML, made by the interpreter the wrappers run and
    checked against the source's hash (not its mtime, which a copy may change). A host whose
    Python differs ignores it and compiles for itself, as Python always does."""
    if not Path(PYTHON).exists():
        return
    subprocess.run(
        [PYTHON, "-m", "compileall", "-q", "--invalidation-mode", "checked-hash", str(lib)],
        check=True,
    )


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    for runtime in BINARIES:
        for version in VERSIONS:
            build(runtime, version, out)
    print(f"built {len(BINARIES) * len(VERSIONS)} sandbox images in {out}")


if __name__ == "__main__":
    main()
