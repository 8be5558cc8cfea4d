"""A tiny service manager: start a service in its own session with a pid file, stop it, wait."""

import contextlib
import os
import signal
import subprocess
import sys
import time

from .common import LOG_DIR, RUN_DIR, read_file, write_file


def spawn(name, argv):
    """Start argv detached, as a service; its pid goes to RUN_DIR/<name>.pid."""
    os.makedirs(RUN_DIR, exist_ok=True)
    os.makedirs(LOG_DIR, exist_ok=True)
    with open(os.path.join(LOG_DIR, f"{name}.log"), "a") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env={**os.environ, "SANDBOX_SERVICE": name},
        )
    write_file(os.path.join(RUN_DIR, f"{name}.pid"), str(proc.pid))


def service_pid(name):
    try:
        pid = int(read_file(os.path.join(RUN_DIR, f"{name}.pid"), "") or 0)
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as f:
            if f.read().split(") ")[1][0] == "Z":
                return None
        return pid
    except (ValueError, OSError):
        return None


def stop_service(name):
    """As systemd stops a unit (KillMode=control-group): SIGTERM to every process of the
    service, its children too (k3s's and k0s's embedded etcd, even one orphaned by a server
    stopped while it was still starting), a wait until all are gone, then SIGKILL."""
    pid = service_pid(name)
    if pid:
        group = os.getpgid(pid) if _leads_its_group(pid) else None
        _signal(pid, group, signal.SIGTERM)
        deadline = time.time() + 10
        while _alive(pid, group) and time.time() < deadline:
            time.sleep(0.02)
        if _alive(pid, group):
            _signal(pid, group, signal.SIGKILL)
            for _ in range(100):
                if not _alive(pid, group):
                    break
                time.sleep(0.02)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(RUN_DIR, f"{name}.pid"))


def _leads_its_group(pid):
    """Services are started in a session of their own: the service is its process group."""
    try:
        return os.getpgid(pid) == pid
    except OSError:
        return False


def _signal(pid, group, sig):
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group is not None:
            os.killpg(group, sig)
        else:
            os.kill(pid, sig)


def _alive(pid, group):
    """Any process of the service left (a zombie is gone for this purpose)."""
    if group is None:
        with contextlib.suppress(ValueError, OSError), open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
        return False
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(ValueError, OSError):
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(") ", 1)[1].split()
            if int(fields[2]) == group and fields[0] != "Z":  # state, ppid, pgrp
                return True
    return False


def spawn_child(name, argv):
    """A process that lives and dies with this one (k3s's and k0s's embedded etcd)."""
    os.makedirs(LOG_DIR, exist_ok=True)
    with open(os.path.join(LOG_DIR, f"{name}.log"), "a") as log:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)


def stop_with(children):
    """On SIGTERM (systemctl stop), stop the children first, then exit."""

    def stop(*_):
        for child in children:
            if child is not None and child.poll() is None:
                child.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(10)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)


def stay():
    while True:
        time.sleep(3600)


def rest(role):
    """What a registered agent does from then on: nothing, in the same process (its pid is
    the service's), but as a 1 MB `sleep` instead of a 27 MB Python: a thousand sandbox nodes
    would otherwise need 27 GB. SIGTERM still ends it, as it ends the service."""
    sys.stdout.flush()
    os.execv("/bin/sleep", [f"{role} (SANDBOX STAND-IN, registered)", "infinity"])
