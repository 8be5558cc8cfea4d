"""Run a Kubefile RUN command in an isolated environment, with the rootfs as its working folder.

The command gets new mount, PID, network, UTS and IPC namespaces (`unshare`). Inside, a fresh
root holds this machine's system folders read-only (so `sed`, `sh`, `tar` work) with their
secrets (shadow, SSH host keys, TLS private keys) masked, the image's rootfs read-write at
/rootfs, and an empty /tmp. It runs as nobody on this machine and as root in a user namespace
of its own, without any capability. It sees no network, no home folder, no other process, can
read no root-only file of the machine and can change nothing but the rootfs. Needs root to set
this up, as the sandbox hosts do.

Run as `python -m imagebuild.isolate ROOTFS COMMAND` under `unshare`; see run_isolated().
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import socket
import subprocess
import sys

from cluster.errors import SealerError

# The machine's folders a build command may read (binaries, libraries, /etc for its users).
NOBODY = 65534  # the user a RUN step is on this machine (root only in its own user namespace)
SYSTEM_FOLDERS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc")
# Secrets of the build machine under those folders, hidden from the command.
MASKED_FILES = ("etc/shadow", "etc/shadow-", "etc/gshadow", "etc/gshadow-", "etc/sudoers")
MASKED_FOLDERS = ("etc/ssh", "etc/ssl/private", "etc/sudoers.d")
DEVICES = ("null", "zero", "random", "urandom")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


DEFAULT_TIMEOUT = 3600.0  # seconds one RUN may take (sealer build --run-timeout)
DEFAULT_MEMORY = 8 * 2**30  # address space of each RUN process (sealer build --memory)
TIMED_OUT = 124  # as `timeout` exits


def check_support(where: str = "RUN") -> None:
    """RUN isolates its command in Linux namespaces, which needs root: say so before a build
    starts, not at its first RUN."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        raise SealerError(
            f"{where} needs root and Linux namespaces (unshare) to isolate the command; "
            "run sealer build as root"
        )


def run_isolated(
    rootfs: str,
    command: str,
    env: dict[str, str],
    timeout: float = DEFAULT_TIMEOUT,
    memory: int = DEFAULT_MEMORY,
) -> int:
    """Run command; its output goes to ours. The command's exit code (TIMED_OUT after timeout
    seconds: the whole PID namespace is killed)."""
    check_support()
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
    owners = _hand_over(rootfs)
    try:
        # unshare --kill-child: when it is killed, the namespace's init and all it started die
        return subprocess.run(
            argv, env=setup_env, stdin=subprocess.DEVNULL, timeout=timeout
        ).returncode
    except subprocess.TimeoutExpired:
        return TIMED_OUT
    finally:
        _take_back(rootfs, owners)


def _hand_over(rootfs: str) -> dict[str, tuple[int, int]]:
    """Give the rootfs to nobody for one RUN; the owners that were not root, to restore."""
    kept = {}
    for path in _every_path(rootfs):
        info = os.lstat(path)
        if (info.st_uid, info.st_gid) != (0, 0):
            kept[os.path.relpath(path, rootfs)] = (info.st_uid, info.st_gid)
        os.lchown(path, NOBODY, NOBODY)
    return kept


def _take_back(rootfs: str, kept: dict[str, tuple[int, int]]) -> None:
    """Everything back to root (what the step made too), then the owners it had before."""
    for path in _every_path(rootfs):
        os.lchown(path, 0, 0)  # never follows a link the step may have made
    for relative, (uid, gid) in kept.items():
        with contextlib.suppress(FileNotFoundError):
            os.lchown(os.path.join(rootfs, relative), uid, gid)


def _every_path(rootfs: str):
    yield rootfs
    for folder, dirnames, filenames in os.walk(rootfs):  # does not follow linked folders
        for name in dirnames + filenames:
            yield os.path.join(folder, name)


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
    # pivot_root, not chroot: the kernel gives no user namespace to a chrooted process
    os.chdir(new_root)
    os.mkdir("old-root")
    subprocess.run(["pivot_root", ".", "old-root"], check=True)
    os.chroot(".")
    subprocess.run(["umount", "-l", "/old-root"], check=True)  # the machine's tree, gone
    os.rmdir("/old-root")
    os.chdir("/rootfs")
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))  # inherited by every process
    # The command runs as nobody on this machine (so no root-only file of it is readable,
    # masked or not) and as root in a user namespace of its own, without capabilities even
    # there: it cannot undo the mounts above, mount or mknod anything. The rootfs is handed
    # to nobody for the step (run_isolated), so the command can change all of it.
    as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]
    root_inside = ["unshare", "--user", "--map-root-user", "--"]
    no_caps = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs", "--"]
    argv = [*as_nobody, *root_inside, *no_caps, "/bin/sh", "-c", command]
    # This process stays the namespace's init: it keeps the signal that kills it with
    # `unshare` (a process that changes its user loses it), and the namespace dies with it.
    code = subprocess.run(argv, executable="/usr/bin/setpriv", env=env).returncode
    sys.exit(code if code >= 0 else 128 - code)


SETUP_FAILED = 125  # as `docker run` does when the container cannot be set up

if __name__ == "__main__":
    try:
        _enter(sys.argv[1], sys.argv[2])
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"sealer build: cannot set up the isolated environment: {e}", file=sys.stderr)
        sys.exit(SETUP_FAILED)
