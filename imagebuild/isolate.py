"""Run a Kubefile RUN command in an isolated environment, with the rootfs as its working folder.

The command gets new mount, PID, network, UTS and IPC namespaces (`unshare`). Inside, a fresh
root holds this machine's system folders read-only (so `sed`, `sh`, `tar` work) with their
secrets (shadow, SSH host keys, TLS private keys) masked, the image's rootfs read-write at
/rootfs, and an empty /tmp. It runs as root without any capability. It sees no network, no home
folder, no other process, and can change nothing but the rootfs. Needs root to set this up,
as the sandbox hosts do.

Run as `python -m imagebuild.isolate ROOTFS COMMAND` under `unshare`; see run_isolated().
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import socket
import subprocess
import sys

from cluster.errors import SealerError

# The machine's folders a build command may read (binaries, libraries, /etc for its users).
SYSTEM_FOLDERS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc")
# Secrets of the build machine under those folders, hidden from the command.
MASKED_FILES = ("etc/shadow", "etc/shadow-", "etc/gshadow", "etc/gshadow-", "etc/sudoers")
MASKED_FOLDERS = ("etc/ssh", "etc/ssl/private", "etc/sudoers.d")
DEVICES = ("null", "zero", "random", "urandom")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


DEFAULT_TIMEOUT = 3600.0  # seconds one RUN may take (sealer build --run-timeout)
DEFAULT_MEMORY = 8 * 2**30  # address space of each RUN process (sealer build --memory)
TIMED_OUT = 124  # as `timeout` exits


def run_isolated(
    rootfs: str,
    command: str,
    env: dict[str, str],
    timeout: float = DEFAULT_TIMEOUT,
    memory: int = DEFAULT_MEMORY,
) -> int:
    """Run command; its output goes to ours. The command's exit code (TIMED_OUT after timeout
    seconds: the whole PID namespace is killed)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        raise SealerError(
            "RUN needs root and Linux namespaces (unshare) to isolate the command; "
            "run sealer build as root"
        )
    clean_env = {"PATH": PATH, "HOME": "/tmp", "LANG": "C.UTF-8", **env}
    argv = [
        "unshare",
        "--mount",
        "--pid",
        "--net",
        "--uts",
        "--ipc",
        "--fork",
        "--kill-child",
        sys.executable,
        "-m",
        "imagebuild.isolate",
        rootfs,
        command,
    ]
    project = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    setup_env = {
        **clean_env,
        "PYTHONPATH": project,
        "SEALER_BUILD_ENV": json.dumps(clean_env),
        "SEALER_BUILD_MEMORY": str(memory),
    }
    try:
        # unshare --kill-child: when it is killed, the namespace's init and all it started die
        return subprocess.run(
            argv, env=setup_env, stdin=subprocess.DEVNULL, timeout=timeout
        ).returncode
    except subprocess.TimeoutExpired:
        return TIMED_OUT


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def _mount_point(rootfs: str) -> str:
    """An existing folder to build the new root on: mounts here stay in our namespace."""
    for folder in ("/mnt", "/media", "/srv", "/opt"):
        if os.path.isdir(folder) and not (rootfs + "/").startswith(folder + "/"):
            return folder
    raise SealerError("no folder to build the isolated root on (/mnt, /media, /srv)")


def _enter(rootfs: str, command: str) -> None:
    """Inside the new namespaces: build the new root, enter it, exec the command."""
    env = json.loads(os.environ["SEALER_BUILD_ENV"])
    memory = int(os.environ["SEALER_BUILD_MEMORY"])
    _mount("--make-rprivate", "/")
    new_root = _mount_point(os.path.realpath(rootfs))
    _mount("-t", "tmpfs", "-o", "mode=0755", "tmpfs", new_root)
    for name in SYSTEM_FOLDERS:
        source, target = f"/{name}", os.path.join(new_root, name)
        if os.path.islink(source):
            os.symlink(os.readlink(source), target)
        elif os.path.isdir(source):
            os.mkdir(target)
            _mount("--rbind", source, target)
            _mount("-o", "remount,bind,ro", target)
    for name in MASKED_FILES:
        if os.path.isfile(os.path.join(new_root, name)):
            _mount("--bind", "/dev/null", os.path.join(new_root, name))
    for name in MASKED_FOLDERS:
        if os.path.isdir(os.path.join(new_root, name)):
            _mount("-t", "tmpfs", "-o", "ro,size=4k", "tmpfs", os.path.join(new_root, name))
    os.mkdir(os.path.join(new_root, "rootfs"))
    _mount("--bind", rootfs, os.path.join(new_root, "rootfs"))
    os.mkdir(os.path.join(new_root, "tmp"), 0o1777)
    _mount("-t", "tmpfs", "tmpfs", os.path.join(new_root, "tmp"))
    os.mkdir(os.path.join(new_root, "proc"))
    _mount("-t", "proc", "proc", os.path.join(new_root, "proc"))
    os.mkdir(os.path.join(new_root, "dev"))
    for device in DEVICES:
        target = os.path.join(new_root, "dev", device)
        open(target, "w").close()
        _mount("--bind", f"/dev/{device}", target)
    for name, link in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0")):
        os.symlink(link, os.path.join(new_root, "dev", name))
    os.symlink("/proc/self/fd/1", os.path.join(new_root, "dev", "stdout"))
    os.symlink("/proc/self/fd/2", os.path.join(new_root, "dev", "stderr"))
    socket.sethostname("sealer-build")
    os.chroot(new_root)
    os.chdir("/rootfs")
    # Root without capabilities: it cannot undo the mounts above, mount or mknod anything,
    # or reach past file permissions; it still owns (and so can change) the rootfs.
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))  # inherited by every process
    setpriv = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs"]
    os.execve("/usr/bin/setpriv", [*setpriv, "/bin/sh", "-c", command], env)


SETUP_FAILED = 125  # as `docker run` does when the container cannot be set up

if __name__ == "__main__":
    try:
        _enter(sys.argv[1], sys.argv[2])
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"sealer build: cannot set up the isolated environment: {e}", file=sys.stderr)
        sys.exit(SETUP_FAILED)
