"""Connections that outlive a run: OpenSSH ControlMaster sockets, one per pinned host.

A refresh (plan, drift, a no-op apply) asks every host a few read-only questions. Opening an
SSH connection costs far more than a question (about 65 ms of this machine's CPU per host), so
the reads go through OpenSSH connection sharing: the first run opens a master connection per
host, which stays up `persist` seconds after its last use; later runs open channels on it.

What keeps reuse safe:
- A master is only ever opened with the host key pinned in the state: OpenSSH may trust no
  known_hosts file, and a KnownHostsCommand vouches for the key only when its fingerprint is the
  pin. A reused connection is one whose key was checked against that pin when it was opened.
- The socket's name is a digest of (lineage, user, host, port, pinned fingerprint): another
  state (lineage), another user, or a new pin (after `sealer state forget-host-key`) never finds
  the old socket. A host reinstalled with a new key has lost its old connections with its sshd.
- Sockets live in $SEALER_HOME/connections, a 0700 directory of this user's (refused
  otherwise); OpenSSH makes the sockets themselves 0600.
- Only hosts reached with a key file that needs no passphrase and no sudo password are shared
  (nothing secret has to reach the ssh process); the others use the run's own connections.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import stat
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from cluster.errors import SealerError
from cluster.records import PIN
from executors import mux
from executors.driver import HostError, Remote, Result, command_failed
from executors.openssh import identity_options, pinned_options, proxy_command


@dataclass(frozen=True)
class Reuse:
    """Where a run's shared connections live and how long they outlive it."""

    folder: Path
    persist: float
    lineage: str

    def reader(self, remote: Remote):
        """remote's reads over a shared connection when its host can have one, else remote."""
        return shared_reader(remote, self)

    def socket_path(self, name: str) -> str:
        """A short path to a socket in the folder, however deep the folder is (a socket's path
        has ~100 bytes): through an open descriptor of the folder."""
        return _path_in(self.folder, name)


@functools.cache
def _folder_descriptor(folder: str) -> int:
    return os.open(folder, os.O_RDONLY | os.O_DIRECTORY)  # kept for the process's life


def folder_for(home: Path) -> Path:
    """$SEALER_HOME/connections, made 0700; refused if it is not a directory of this user's."""
    folder = home / "connections"
    with contextlib.suppress(FileExistsError):  # a file or a link there is refused below
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode):
        raise SealerError(f"{folder}: not a directory; sealer keeps its SSH sockets there")
    if info.st_uid != os.geteuid():
        raise SealerError(
            f"{folder}: owned by uid {info.st_uid}, not by this user; sealer will not keep "
            f"SSH connections in a directory another user controls"
        )
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(folder, 0o700)  # ours: close it to the others
    return folder


def socket_name(
    lineage: str, user: str, ip: str, port: int, fingerprint: str, route: tuple[str, ...] = ()
) -> str:
    """Short (a socket path has ~100 bytes) and different for any change of these (the route:
    the options that lead to the host, its jump hosts' pins included)."""
    identity = "\0".join((lineage, user, ip, str(port), fingerprint, *route))
    return hashlib.sha256(identity.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Endpoint:
    """One shareable connection: whom it reaches, with which key file, pinned to what."""

    ip: str
    port: int
    user: str
    key_file: str  # "": the agent's keys
    fingerprint: str
    lineage: str
    address: str = ""  # where its SSH server is reached when not at ip (HostName)
    route: tuple[str, ...] = ()  # OpenSSH options that lead there (a pinned ProxyCommand)
    via: str = ""  # its jump hosts, for `sealer connections ls`

    @property
    def name(self) -> str:
        return socket_name(
            self.lineage, self.user, self.address or self.ip, self.port, self.fingerprint,
            self.route,
        )  # fmt: skip

    def describe(self) -> dict:
        return {
            "host": self.ip,
            "port": self.port,
            "user": self.user,
            "key_file": self.key_file or "(ssh-agent)",
            "fingerprint": self.fingerprint,
            "lineage": self.lineage,
            **({"via": self.via} if self.via else {}),
        }


def ssh_argv(endpoint: Endpoint, reuse: Reuse, connect_timeout: float) -> list[str]:
    """The ssh command line up to the host (the command follows), relative to reuse.folder."""
    return [
        "ssh",
        *identity_options(endpoint.key_file, agent=True),
        "-p",
        str(endpoint.port),
        "-l",
        endpoint.user,
        "-F",
        "/dev/null",  # the user's ssh config must not redirect or weaken this connection
        *endpoint.route,
        *pinned_options(endpoint.fingerprint, connect_timeout),
        "-o",
        "ControlMaster=auto",
        "-o",
        f"ControlPath=./{endpoint.name}",  # relative: run in reuse.folder (short paths)
        "-o",
        f"ControlPersist={max(1, int(reuse.persist))}",
        "-o",
        "ServerAliveInterval=30",
        "--",
        endpoint.address or endpoint.ip,
    ]


def remember(endpoint: Endpoint, reuse: Reuse) -> None:
    """What `sealer connections ls` shows about a socket (no secret: a key file's path)."""
    info = reuse.folder / f"{endpoint.name}.json"
    if not info.exists():
        tmp = info.with_suffix(".tmp")
        tmp.write_text(json.dumps(endpoint.describe()))
        os.replace(tmp, info)


@dataclass(frozen=True)
class Shared:
    """A connection as `sealer connections ls` lists it."""

    name: str
    info: dict
    pid: int  # of its OpenSSH master


def listing(folder: Path) -> list[Shared]:
    """The open connections recorded in the folder. Records whose master has gone (expired,
    or its host went away) are removed as they are found."""
    found = []
    for info_file in sorted(folder.glob("*.json")):
        name = info_file.stem
        try:
            info = json.loads(info_file.read_text())
            found.append(Shared(name, info, mux.alive(_path_in(folder, name))))
        except (OSError, ValueError, mux.NoMaster):
            info_file.unlink(missing_ok=True)
            (folder / name).unlink(missing_ok=True)
    return found


def close(folder: Path, shared: Shared) -> None:
    """End a master (its host's sshd sees the connection close) and forget it."""
    with contextlib.suppress(mux.NoMaster):
        mux.terminate(_path_in(folder, shared.name))
    (folder / f"{shared.name}.json").unlink(missing_ok=True)
    (folder / shared.name).unlink(missing_ok=True)


def _path_in(folder: Path, name: str) -> str:
    return f"/proc/self/fd/{_folder_descriptor(str(folder))}/{name}"


class _SshFailed(Exception):
    """ssh itself failed (exit 255): no connection, a refused key, a refused login."""


class SharedRemote:
    """Read-only commands on one host over its shared connection (see the module's doc).

    Same interface as Remote.run for the refresh's reads. When ssh itself fails (exit 255: no
    connection, a refused key, a refused login), the command is asked again over the run's own
    connection, whose driver tells exactly why the host cannot be used (the pinned and the
    shown key, a timeout, a refused login); reads are safe to ask twice.
    """

    def __init__(self, remote: Remote, endpoint: Endpoint, reuse: Reuse):
        self.ip = remote.ip
        self._remote = remote
        self._endpoint = endpoint
        self._reuse = reuse
        self._argv = ssh_argv(endpoint, reuse, remote.timeouts.connect)
        self._shared = True  # until ssh fails once: then this run uses its own connection
        self._lock = threading.Lock()

    def run(self, command, *, env=None, stdin=b"", check=True, timeout=None, secrets=()):
        own = functools.partial(
            self._remote.run, command, env=env, stdin=stdin, check=check, timeout=timeout
        )
        if not self._shared:
            return own(secrets=secrets)
        wrapped, wire_stdin = self._remote.command_line(command, env, stdin)
        limit = timeout or self._remote.timeouts.command
        try:
            code, out, err = self._over_master(wrapped, wire_stdin, limit)
        except _SshFailed:  # this run goes on over its own connection, which says why
            self._shared = False
            return own(secrets=secrets)
        except (subprocess.TimeoutExpired, mux.MuxTimeout):
            raise HostError(self.ip, f"`{command[:200]}` timed out after {limit:g}s") from None
        result = Result(code, out.decode(errors="replace"), err.decode(errors="replace"))
        if check and result.exit_code != 0:
            raise command_failed(self.ip, command, result, self._remote.secrets_of(env, secrets))
        return result

    def _over_master(self, wrapped: str, stdin: bytes, limit: float):
        """Over the master when one answers: no ssh process, a session on the connection.
        Else ssh runs it, opening the master (pinned) that then outlives this run."""
        try:
            return mux.run(self._reuse.socket_path(self._endpoint.name), wrapped, stdin, limit)
        except mux.NoMaster:
            pass
        done = subprocess.run(
            [*self._argv, wrapped],
            input=stdin,
            capture_output=True,
            cwd=self._reuse.folder,
            timeout=limit,
        )
        if done.returncode == 255:
            raise _SshFailed
        with self._lock:
            remember(self._endpoint, self._reuse)
        return done.returncode, done.stdout, done.stderr

    def host_key(self) -> str:
        """The pin: a shared connection exists only to a host that showed it."""
        return self._endpoint.fingerprint if self._shared else self._remote.host_key()

    def confirm_key(self, on_disk: tuple[str, ...]) -> str:
        """A kept connection vouches for the key the host showed when it was opened, maybe
        long ago. When the host's key files (read in the same command) no longer hold the
        pin, the master is ended and a fresh handshake decides: the pinned key (a key kept
        elsewhere: all is well) or HostKeyChanged with the key the host shows now."""
        if not self._shared or not on_disk or self._endpoint.fingerprint in on_disk:
            return self.host_key()
        with contextlib.suppress(mux.NoMaster):
            mux.terminate(self._reuse.socket_path(self._endpoint.name))
        self._shared = False
        return self._remote.host_key()


def shared_reader(remote: Remote, reuse: Reuse):
    """remote's reads over a shared connection when its host can have one, else remote."""
    ssh = remote.ssh
    shareable = (
        reuse.persist > 0
        # a pin becomes an argument of a command: nothing but a fingerprint is allowed
        and PIN.fullmatch(remote.known_key or "")
        and identity_options(ssh.key_file, ssh.agent) is not None
        and not ssh.key_passphrase
        and (ssh.user == "root" or not ssh.password)  # sudo -n: no password on stdin
        and not ssh.proxy_command  # the user's command: the run's own connection only
    )
    if not shareable:
        return remote
    route: tuple[str, ...] = ()
    if ssh.jumps:  # only through jump hosts pinned in the state
        proxy = proxy_command(
            ssh.jumps, remote.gateways.pins, remote.address, ssh.port, remote.timeouts.connect
        )
        if proxy is None:
            return remote
        route = ("-o", f"ProxyCommand={proxy}")
    endpoint = Endpoint(
        remote.ip, int(ssh.port), ssh.user, str(ssh.key_file), remote.known_key, reuse.lineage,
        address=ssh.address, route=route, via=" then ".join(j.name for j in ssh.jumps),
    )  # fmt: skip
    return SharedRemote(remote, endpoint, reuse)
