"""Start, list, fault and stop sandbox hosts (see ../shared/reference/sandbox-hosts.md).

Host N is `sandbox-N` on 127.0.1.N:22 (past 254: 127.0.2.x, ...): an `unshare` of mount, UTS
and PID namespaces whose PID 1 is sandbox/init.py. Everything lives under $SEALER_HOME/sandbox:
the key pair, one folder per host (overlay upper/work/root, the init's pid), and a ready
Clusterfile.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cluster.errors import SealerError
from cluster.image import sealer_home
from sandbox import network

INIT = Path(__file__).with_name("init.py")
MAX_HOSTS = 2000
STARTERS = 16  # hosts started at once: each start is mostly waiting for mounts and sshd


class SandboxError(SealerError):
    pass


@dataclass
class SandboxHost:
    number: int
    folder: Path

    @property
    def name(self) -> str:
        return f"sandbox-{self.number}"

    @property
    def address(self) -> str:
        try:  # as it was started (the mode may have changed since)
            return (self.folder / "address").read_text().strip()
        except OSError:
            return address(self.number)

    @property
    def link(self) -> str:
        """netns hosts: what shapes the host's link ('' unshaped); loopback: 'loopback'."""
        if not (self.folder / "netns").exists():
            return "loopback"
        return network.describe_link(self.number) or "veth, unshaped"

    @property
    def init_pid(self) -> int | None:
        try:
            pid = int((self.folder / "init.pid").read_text())
        except (OSError, ValueError):
            return None
        return pid if alive(pid) else None

    def processes(self) -> list[int]:
        """Every process of this host (its PID namespace), as pids of the machine."""
        init = self.init_pid
        if init is None:
            return []
        namespace = os.readlink(f"/proc/{init}/ns/pid")
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{entry}/ns/pid") == namespace:
                        found.append(int(entry))
        return found


def address(number: int, net: str | None = None) -> str:
    """Host N's address in a mode (default $SEALER_SANDBOX_NET, see sandbox/network.py)."""
    if (net or network.mode()) == "netns":
        return network.host_address(number)
    block, rest = divmod(number - 1, 254)  # 1..254 -> 127.0.1.N, as it always was
    return f"127.0.{1 + block}.{1 + rest}"


def base() -> Path:
    """$SEALER_SANDBOX_DIR, else $SEALER_HOME/sandbox."""
    folder = os.environ.get("SEALER_SANDBOX_DIR")
    return Path(folder) if folder else sealer_home() / "sandbox"


def key_path() -> Path:
    return base() / "id_ed25519"


def hosts() -> list[SandboxHost]:
    folder = base() / "hosts"
    if not folder.is_dir():
        return []
    found = [SandboxHost(int(p.name), p) for p in folder.iterdir() if p.name.isdigit()]
    return sorted(found, key=lambda h: h.number)


def check_support() -> None:
    if sys.platform != "linux":
        raise SandboxError("sandbox hosts need Linux namespaces; this is " + sys.platform)
    if os.geteuid() != 0:
        raise SandboxError("sandbox hosts need root (mount, unshare and chroot); run as root")
    for tool in ("unshare", "nsenter", "ssh-keygen", "mount"):
        if not shutil.which(tool):
            raise SandboxError(f"sandbox hosts need `{tool}`; install util-linux / openssh-client")
    if not os.path.exists("/usr/sbin/sshd"):
        raise SandboxError("sandbox hosts need an OpenSSH server: apt-get install openssh-server")


def ensure_key() -> Path:
    key = key_path()
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "sealer-sandbox", "-f", str(key)],
            check=True,
        )
    return key


def up(
    count: int,
    timeout: float = 30.0,
    rate: str | None = None,
    delay: str | None = None,
    operator_rate: str | None = None,
    net: str | None = None,
) -> list[SandboxHost]:
    """Start hosts 1..count (those already running are kept). In netns mode, rate and delay
    shape each new host's link (both ways), operator_rate this machine's side of the bridge."""
    check_support()
    if not 1 <= count <= MAX_HOSTS:
        raise SandboxError(f"sandbox up: between 1 and {MAX_HOSTS} hosts, not {count}")
    net = net or network.mode()
    netns = net == "netns"
    if not netns and (rate or delay or operator_rate):
        raise SandboxError("--rate, --delay and --operator-rate need --net netns")
    network.check_shape(rate, delay)
    network.check_shape(operator_rate, None)
    if netns:
        network.ensure_bridge()
        network.make_room_for(count)
        network.shape(network.BRIDGE, operator_rate, delay)
    public_key = ensure_key().with_suffix(".pub").read_text()
    new = [h for h in _host_list(count) if h.init_pid is None]
    if not netns:  # netns addresses are on our bridge only
        for host in new:
            where = address(host.number, net)
            if _listening(where):
                raise SandboxError(
                    f"{where}:22 is already in use by a process that is "
                    f"not a sandbox host of {base()}; stop it first"
                )

    def start(host: SandboxHost) -> None:
        _start(host, public_key, address(host.number, net), netns)
        if netns:
            network.attach(host.number, host.init_pid)
            network.shape_host(host.number, host.init_pid, rate, delay)
        _wait_for_ssh(host, timeout)

    with ThreadPoolExecutor(STARTERS) as pool:
        list(pool.map(start, new))  # the first failure is raised
    return hosts()[:count]


def _host_list(count: int) -> list[SandboxHost]:
    return [SandboxHost(n, base() / "hosts" / str(n)) for n in range(1, count + 1)]


def _start(host: SandboxHost, public_key: str, where: str, netns: bool) -> None:
    for sub in ("upper", "work", "root"):
        (host.folder / sub).mkdir(parents=True, exist_ok=True)
    (host.folder / "address").write_text(where)
    if netns:
        (host.folder / "netns").write_text("")
    log = open(host.folder / "init.log", "w")  # noqa: SIM115 - the child keeps it open
    namespaces = ["--mount", "--uts", "--pid", *(["--net"] if netns else [])]
    extra = ["netns", str(network.NETWORK.prefixlen)] if netns else []
    proc = subprocess.Popen(
        [
            "unshare",
            *namespaces,
            "--fork",
            sys.executable,
            str(INIT),
            str(host.folder),
            host.name,
            where,
            public_key,
            *extra,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    log.close()
    init = _child_of(proc.pid, timeout=10)
    (host.folder / "init.pid").write_text(str(init))
    (host.folder / "unshare.pid").write_text(str(proc.pid))


def _listening(address: str) -> bool:
    import socket

    with contextlib.suppress(OSError), socket.create_connection((address, 22), 0.5):
        return True
    return False


def _child_of(pid: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            if children:
                return int(children[0])
        time.sleep(0.01)
    raise SandboxError(f"sandbox host did not start (unshare pid {pid})")


def _wait_for_ssh(host: SandboxHost, timeout: float) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host.address, 22), 0.5) as s:
            if s.recv(4).startswith(b"SSH-"):
                return
        if host.init_pid is None:
            break
        time.sleep(0.05)
    log = (host.folder / "init.log").read_text()[-400:] if host.folder.exists() else ""
    raise SandboxError(f"{host.name} ({host.address}) did not start its SSH server: {log}")


def down() -> int:
    """Stop every sandbox host and remove its mounts and files (the key pair stays)."""
    count = 0
    for host in hosts():
        init = host.init_pid
        if init is not None:
            os.kill(init, signal.SIGKILL)  # the kernel ends the whole PID namespace
            wait_gone(init)
            count += 1
        _wait_unshare(host)
        shutil.rmtree(host.folder, ignore_errors=True)
    network.remove_bridge()  # its veth ends went with the hosts' namespaces
    return count


def wait_gone(pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def _wait_unshare(host: SandboxHost) -> None:
    with contextlib.suppress(OSError, ValueError):
        pid = int((host.folder / "unshare.pid").read_text())
        wait_gone(pid)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purpose.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    return False


# ---- faults and repairs, for tests and for trying things by hand ----


def _sshd_pids(host: SandboxHost) -> list[int]:
    pids = []
    for pid in host.processes():
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/comm").read_text().strip() == "sshd":
                pids.append(pid)
    return pids


def stop_sshd(host: SandboxHost) -> None:
    """The host goes dark for SSH: its server and every open session end."""
    for pid in _sshd_pids(host):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _sshd_pids(host) and time.monotonic() < deadline:
        time.sleep(0.02)


def power_off(host: SandboxHost) -> None:
    """The host dies whole, as a machine losing power: every process ends at once (the
    kernel empties a PID namespace with its init); its disk stays for a power_on (up())."""
    init = host.init_pid
    if init is not None:
        os.kill(init, signal.SIGKILL)
        wait_gone(init)
    _wait_unshare(host)


def set_link(host: SandboxHost, up: bool) -> None:
    """netns hosts: their cable, pulled or put back (this machine's end of the veth)."""
    if not (host.folder / "netns").exists():
        raise SandboxError(f"{host.name}: only netns hosts have a link to pull")
    network.set_link(host.number, up)


def start_sshd(host: SandboxHost, timeout: float = 30) -> None:
    from sandbox.init import sshd_command

    run_in(host, sshd_command(host.address))
    _wait_for_ssh(host, timeout)


def regenerate_host_key(host: SandboxHost) -> None:
    from sandbox.init import HOST_KEY

    run_in(
        host,
        ["sh", "-c", f"rm -f /etc/ssh/ssh_host_* && ssh-keygen -q -t ed25519 -N '' -f {HOST_KEY}"],
    )
    stop_sshd(host)
    start_sshd(host)


def run_in(
    host: SandboxHost, command: list[str], input: str | None = None
) -> subprocess.CompletedProcess:
    """Run a command inside the host (its namespaces and root), as root, without SSH."""
    init = host.init_pid
    if init is None:
        raise SandboxError(f"{host.name} is not running")
    network_too = ["-n"] if (host.folder / "netns").exists() else []
    return subprocess.run(
        ["nsenter", "-t", str(init), "-m", "-u", "-p", *network_too, "-r", "-w", *command],
        capture_output=True,
        text=True,
        check=True,
        input=input,
    )


def find(which: str, command: str) -> SandboxHost:
    """The running sandbox host named sandbox-N, N, or by its address."""
    found = [h for h in hosts() if which in (h.name, h.address, str(h.number))]
    if not found:
        raise SandboxError(f"sandbox {command}: no sandbox host {which!r} (`sealer sandbox ls`)")
    return found[0]


def make_private(which: str, private: bool = True) -> str:
    """Cut (or restore) this machine's route to a netns host: inside the host, a blackhole
    route for this machine's address drops every reply, so nothing of this machine's reaches
    it (SSH, ping, the relay), while the other hosts still do. Behind a bastion it can still
    be reached. Returns the host's name."""
    host = find(which, "private")
    if not (host.folder / "netns").exists():
        raise SandboxError(
            f"sandbox private: {host.name} shares this machine's network; use --net netns"
        )
    route = ["ip", "route", "replace" if private else "del", "blackhole", f"{network.OPERATOR}/32"]
    try:
        run_in(host, route)
    except subprocess.CalledProcessError as e:
        if private or "No such process" not in (e.stderr or ""):  # not private: nothing to undo
            raise SandboxError(f"sandbox private: {' '.join(route)}: {e.stderr.strip()}") from None
    return host.name


FAKES = "/run/sealer-sandbox"  # inside a host: the files its fakes show
FAKE_DATE = "/usr/local/bin/date"


def fake(which: str, swap_kb: int | None, memory_kb: int | None, clock: int | None) -> str:
    """A sandbox-only override of what a host reports, for the host checks (sealer check):
    /proc/swaps and /proc/meminfo are replaced, inside the host only, by files saying swap_kb
    of swap and memory_kb of memory (a bind mount, as LXCFS does), and `date` runs clock
    seconds off. None leaves one as it is; 0 gives the real one back. Nothing
    else changes: the host has this machine's memory and clock. Returns the host's name."""
    host = find(which, "fake")
    script = [f"mkdir -p {FAKES}"]
    if swap_kb is not None:
        script.append("umount /proc/swaps 2>/dev/null || true")
        if swap_kb:
            script += [
                f"printf 'Filename\\tType\\tSize\\tUsed\\tPriority\\n"
                f"/sandbox-swap\\tfile\\t{swap_kb}\\t0\\t-2\\n' > {FAKES}/swaps",
                f"mount --bind {FAKES}/swaps /proc/swaps",
            ]
    if memory_kb is not None:
        script.append("umount /proc/meminfo 2>/dev/null || true")
        if memory_kb:
            script += [
                f"sed 's/^MemTotal:.*/MemTotal: {memory_kb} kB/' /proc/meminfo > {FAKES}/meminfo",
                f"mount --bind {FAKES}/meminfo /proc/meminfo",
            ]
    try:
        run_in(host, ["sh", "-ec", "; ".join(script)])
        if clock is not None:
            date = (
                f"#!/bin/sh\n# sealer sandbox fake: this host runs {clock} s off\n"
                f'exec /usr/bin/date -d "@$(( $(/usr/bin/date +%s) + ({clock}) ))" "$@"\n'
            )
            _wrap(host, FAKE_DATE, date if clock else "")
    except subprocess.CalledProcessError as e:
        raise SandboxError(f"sandbox fake: {host.name}: {e.stderr.strip()}") from None
    return host.name


FAKE_UNAME = "/usr/local/bin/uname"


def report_machine(which: str, machine: str) -> str:
    """A sandbox-only override: the host's `uname -m` answers machine ("" removes it). The
    host still runs this machine's programs; only what sealer reads as its architecture
    changes, to try multi-arch images. Returns the host's name."""
    import re

    host = find(which, "arch")
    if machine and not re.fullmatch(r"[a-z0-9_]{1,32}", machine):
        raise SandboxError(f"sandbox arch: {machine!r} is not a machine name (e.g. aarch64)")
    script = (
        "#!/bin/sh\n# sealer sandbox arch: this host reports another architecture\n"
        f'case "$1" in -m|-p|-i) echo {machine}; exit 0 ;; esac\n'
        'exec /usr/bin/uname "$@"\n'
    )
    _wrap(host, FAKE_UNAME, script if machine else "")
    return host.name


def _wrap(host: SandboxHost, path: str, script: str) -> None:
    """A sandbox fake: an executable script at path (in /usr/local/bin, ahead of the real
    program in PATH) inside the host; "" removes it."""
    if not script:
        run_in(host, ["rm", "-f", path])
        return
    install = f"mkdir -p /usr/local/bin && cat > {path} && chmod 755 {path}"
    run_in(host, ["sh", "-c", install], input=script)


def clusterfile(ips: list[str], image: str, masters: int = 1, name: str = "sandbox") -> str:
    """A ready Clusterfile for these sandbox hosts' addresses."""
    spec = {
        "apiVersion": "sealer.io/v2",
        "kind": "Cluster",
        "metadata": {"name": name},
        "spec": {
            "image": image,
            "ssh": {"user": "root", "pk": str(key_path()), "port": "22"},
            "hosts": [{"ips": ips[:masters], "roles": ["master"]}]
            + ([{"ips": ips[masters:], "roles": ["node"]}] if ips[masters:] else []),
        },
    }
    return "# sandbox hosts made by `sealer sandbox up`\n" + _yaml(spec)


def _yaml(data: dict) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None)


def describe() -> list[dict]:
    return [
        {
            "name": h.name,
            "address": h.address,
            "link": h.link,
            "running": h.init_pid is not None,
            "sshd": bool(_sshd_pids(h)),
        }
        for h in hosts()
    ]


if __name__ == "__main__":  # python -m sandbox.hosts up 3 | down | ls
    command = sys.argv[1]
    if command == "up":
        print(json.dumps([h.address for h in up(int(sys.argv[2]))]))
    elif command == "down":
        print(down())
    else:
        print(json.dumps(describe(), indent=1))
