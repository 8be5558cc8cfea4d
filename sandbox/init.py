"""PID 1 of one sandbox host, run by `unshare --mount --uts --pid --fork`.

It builds the host's root (an overlay of the machine's / with the host's own upper folder),
chroots into it, starts OpenSSH on the host's address and the services enabled on the host (as
systemd does at boot), then reaps orphans until it is killed.
Killing it ends every process of the host (the kernel empties a PID namespace with its init).
Usage: init.py HOST_DIR NAME ADDRESS AUTHORIZED_KEY [netns PREFIX]
"""

import os
import shutil
import signal
import subprocess
import sys
import time

HOST_KEY = "/etc/ssh/ssh_host_ed25519_key"  # the only host key: made in milliseconds
WANTS = "/etc/systemd/system/multi-user.target.wants"  # what `systemctl enable` links
BOOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def sh(*args: str) -> None:
    subprocess.run(args, check=True)


def build_root(host_dir: str, name: str) -> str:
    upper, work, root = (os.path.join(host_dir, d) for d in ("upper", "work", "root"))
    sh("mount", "--make-rprivate", "/")
    sh(
        "mount",
        "-t",
        "overlay",
        "overlay",
        "-o",
        f"lowerdir=/,upperdir={upper},workdir={work}",
        root,
    )
    sh("mount", "-t", "proc", "proc", f"{root}/proc")
    sh("mount", "--rbind", "/dev", f"{root}/dev")
    sh("mount", "--rbind", "/sys", f"{root}/sys")
    for tmpfs in ("run", "tmp"):
        sh("mount", "-t", "tmpfs", "tmpfs", f"{root}/{tmpfs}")
    sh("hostname", name)
    return root


def prepare_ssh(authorized_key: str) -> None:
    marker = "/etc/ssh/.sandbox-host-keys"
    if not os.path.exists(marker):  # the first boot: this host's own keys, not the machine's
        for f in os.listdir("/etc/ssh"):
            if f.startswith("ssh_host_"):
                os.unlink(os.path.join("/etc/ssh", f))
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", HOST_KEY)  # fast, unlike RSA
        open(marker, "w").close()
    if not os.path.exists(marker + "-home"):  # a fresh host's root account, like a new install,
        for name in (".bashrc", ".profile"):  # not this machine's shell setup (pyenv & co.)
            if os.path.exists(f"/etc/skel/{name}"):
                shutil.copy(f"/etc/skel/{name}", f"/root/{name}")
        open(marker + "-home", "w").close()
    os.makedirs("/root/.ssh", mode=0o700, exist_ok=True)
    with open("/root/.ssh/authorized_keys", "w") as f:
        f.write(authorized_key.strip() + "\n")
    os.chmod("/root/.ssh/authorized_keys", 0o600)
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)


def sshd_command(address: str) -> list[str]:
    """The OpenSSH server of one host, listening on its own address only."""
    return [
        "/usr/sbin/sshd",
        "-o",
        f"ListenAddress={address}",
        "-o",
        f"HostKey={HOST_KEY}",
        "-o",
        "UseDNS=no",
        "-o",
        "MaxStartups=100:30:200",
        "-o",
        "MaxSessions=100",
    ]


def start_sshd(address: str) -> None:
    sh(*sshd_command(address))  # sshd daemonizes; its orphans are reaped below


def enabled_on_host(host_dir: str) -> list[str]:
    """The services `systemctl enable` linked on this host: the links in its own upper layer
    (the machine's own enabled units, seen through the overlay, are not the host's)."""
    wants = os.path.join(host_dir, "upper", WANTS.lstrip("/"))
    if not os.path.isdir(wants):
        return []
    return sorted(
        u for u in os.listdir(wants) if u.endswith(".service") and os.path.islink(f"{wants}/{u}")
    )


def start_services(units: list[str]) -> None:
    """A host that boots again starts what was enabled on it, through its own `systemctl`
    (whatever the host has installed), as systemd would."""
    env = {"PATH": BOOT_PATH, "HOME": "/root", "LANG": "C.UTF-8"}
    if not units or shutil.which("systemctl", path=env["PATH"]) is None:
        return
    with open("/var/log/sandbox-boot.log", "a") as log:
        for unit in units:
            subprocess.run(
                ["systemctl", "start", unit], env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=log, timeout=60, check=False,
            )  # fmt: skip


def join_network(address: str, prefix: str) -> None:
    """In a network namespace of its own: wait for the eth0 the parent moves in (one end of a
    veth pair on its bridge), then bring up loopback and the host's address."""
    for _ in range(400):
        if subprocess.run(["ip", "link", "show", "eth0"], capture_output=True).returncode == 0:
            break
        time.sleep(0.025)
    sh("ip", "link", "set", "lo", "up")
    sh("ip", "addr", "add", f"{address}/{prefix}", "dev", "eth0")
    sh("ip", "link", "set", "eth0", "up")


def main() -> None:
    host_dir, name, address, key = sys.argv[1:5]
    if len(sys.argv) > 5:  # netns PREFIX: the host has a network namespace of its own
        join_network(address, sys.argv[6])
    enabled = enabled_on_host(host_dir)
    os.chroot(build_root(host_dir, name))
    os.chdir("/")
    prepare_ssh(key)
    # Nothing tells the stand-ins which address is the node's: like the real tools, they take
    # it from the flags and config files sealer gives them.
    start_sshd(address)
    start_services(enabled)
    print("ready", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes pause() when an orphan arrives
    while True:  # reap every orphan so that no zombie piles up
        try:
            os.wait()
        except ChildProcessError:
            signal.pause()


if __name__ == "__main__":
    main()
