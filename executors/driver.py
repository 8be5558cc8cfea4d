"""The infra driver: one Fabric connection per host, reused for the whole run.

Commands run over the connection's own SSH transport (one exec channel each), so that stdin can
carry secrets and large streams (a rootfs tarball) without per-chunk overhead. Secrets passed to
`run(..., secrets=...)` are masked in every error this module raises.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import logging
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cluster.errors import SealerError
from cluster.model import SSH
from executors import retrying
from executors.openssh import forward_argv, proxy_command

MASK = "(sensitive value)"

# paramiko logs failed handshakes with tracebacks from its own threads; sealer reports them
# as one-line HostErrors instead.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
log = logging.getLogger("sealer.ssh")  # each remote command, masked: --log-level debug
logging.getLogger("paramiko").propagate = False


class HostError(SealerError):
    """A command failed on a host, or the host could not be reached."""

    def __init__(
        self,
        ip: str,
        message: str,
        unreachable: bool = False,
        retryable: bool = False,
        reason: str = "",
    ):
        self.ip = ip
        self.message = message
        self.unreachable = unreachable
        self.retryable = retryable  # a connection problem that may pass
        # why the host could not be used: down, timed_out, auth_failed, host_key_changed
        self.reason = reason or ("down" if unreachable else "")
        super().__init__(f"{ip}: {message}")


class HostKeyChanged(HostError):
    """The host shows another key than the one pinned in the state (refused before login)."""

    def __init__(self, ip: str, pinned: str, seen: str):
        self.pinned, self.seen = pinned, seen
        super().__init__(
            ip,
            f"host key changed: the state pinned {pinned}, the host now shows {seen}. If the "
            f"host was reinstalled on purpose, accept its new key with: "
            f"sealer state forget-host-key {ip}",
            unreachable=True,
            reason="host_key_changed",
        )


class _NoSession(HostError):
    """The OpenSSH client failed before its session began (see OPENSSH_NO_SESSION)."""


# What OpenSSH prints when it failed before a session could start: no connection, a reset or
# closed handshake (a busy sshd, MaxStartups), a late banner. The remote command never ran.
OPENSSH_NO_SESSION = re.compile(
    r"kex_exchange_identification|during banner exchange|^ssh: connect to host "
    r"|^Connection (?:closed|reset) by ",
    re.MULTILINE,
)


class KeyMismatch(Exception):
    def __init__(self, seen: str):
        self.seen = seen


@functools.cache
def pinned_key_policy():
    """The policy class (made once: paramiko is imported late, planning never needs it)."""
    import paramiko

    class PinnedKey(paramiko.MissingHostKeyPolicy):
        """Called by paramiko after the key exchange and before authentication."""

        def __init__(self, pinned: str):
            self.pinned = pinned

        def missing_host_key(self, client, hostname, key):
            seen = fingerprint(key)
            if self.pinned and seen != self.pinned:
                raise KeyMismatch(seen)
            client.get_host_keys().add(hostname, key.get_name(), key)  # in memory only

    return PinnedKey


@dataclass(frozen=True)
class Result:
    exit_code: int
    stdout: str
    stderr: str


def mask(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


ENV_FROM_STDIN = 'IFS= read -r -d "" __env || exit 97; eval "$__env"; unset __env; '
OUTPUT_GRACE = 2.0  # seconds a command's output may go on after its exit (see Remote._drain)


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0
    command: float = 600.0
    retries: int = 2  # more connection attempts after a failed one
    # told of each failed attempt that a later one overcame (host, reason): the command
    # counts them for its output (those that were not overcome are the command's error)
    retried: Callable[[str, str], None] | None = field(default=None, compare=False)

    def passed(self, host: str, message: str) -> None:
        if self.retried is not None:
            self.retried(host, retrying.short_reason(message))


IDLE_WAKEUP = 2.0  # seconds between an idle SSH connection's checks (paramiko's: 0.1)


class Remote:
    """One host: a lazily opened Fabric connection and the commands run over it."""

    def __init__(self, ip: str, ssh: SSH, timeouts: Timeouts, known_key: str = "", gateways=None):
        self.ip = ip
        self.ssh = ssh
        self.timeouts = timeouts
        self.known_key = known_key
        self.gateways = gateways  # the run's jump-host connections (executors.jumps)
        self._connection = None
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        """Where its SSH server is reached (~/.ssh/config's HostName, else its IP)."""
        return self.ssh.address or self.ip

    def _route(self):
        """The socket the SSH connection runs over when it is not a direct TCP connection:
        a channel through the jump hosts, or the user's ProxyCommand; None: direct."""
        if self.ssh.jumps:
            if self.gateways is None:
                raise HostError(self.ip, "no jump-host connections in this run")
            try:
                return self.gateways.channel(self.ssh.jumps, self.address, self.ssh.port)
            except HostError as e:  # the bastion's failure, said for this host
                raise HostError(self.ip, e.message, True, e.retryable, e.reason) from None
        if self.ssh.proxy_command:
            import paramiko

            command = expand_tokens(self.ssh.proxy_command, self.address, self.ssh)
            return paramiko.ProxyCommand(shlex.join(["/bin/sh", "-c", f"exec {command}"]))
        return None

    # ---- connecting ----

    def _connect(self):
        from fabric import Connection  # imported late: planning never needs it
        from paramiko.ssh_exception import (
            AuthenticationException,
            BadHostKeyException,
            SSHException,
        )

        connect_kwargs = {
            # the agent's keys when no key file is named (ssh.agent: false turns it off)
            "allow_agent": self.ssh.agent and not self.ssh.key_file,
            "look_for_keys": False,
            "banner_timeout": self.timeouts.connect,
            "auth_timeout": self.timeouts.connect,
        }
        route = self._route()
        if route is not None:
            connect_kwargs["sock"] = route
        if self.ssh.key_file:
            connect_kwargs["key_filename"] = self.ssh.key_file
            if self.ssh.key_passphrase:
                connect_kwargs["passphrase"] = self.ssh.key_passphrase
        if self.ssh.password:
            connect_kwargs["password"] = self.ssh.password
        connection = Connection(
            self.address,
            user=self.ssh.user,
            port=self.ssh.port,
            connect_timeout=self.timeouts.connect,
            connect_kwargs=connect_kwargs,
        )
        # The host key is checked before any authentication, so a host that is not the one
        # pinned in the state never sees a password. With a pin, the pin decides; without one,
        # the user's known_hosts does (Fabric does not read it), and a host it does not list is
        # accepted, then pinned in the state.
        if not self.known_key:
            with contextlib.suppress(OSError):
                connection.client.load_system_host_keys()
        connection.client.set_missing_host_key_policy(pinned_key_policy()(self.known_key))
        try:
            connection.open()
            # paramiko's reader thread wakes every 0.1 s on an idle connection to look for a
            # close; a fleet's thousand connections made that ~10,000 wake-ups a second, a
            # third of the run's CPU. Data and closes still wake it at once.
            connection.client.get_transport().sock.settimeout(IDLE_WAKEUP)
        except KeyMismatch as mismatch:
            connection.close()
            raise HostKeyChanged(self.ip, self.known_key, mismatch.seen) from None
        except AuthenticationException:
            raise HostError(
                self.ip,
                f"SSH authentication failed: tried {self._login()} (check ssh.user, "
                "ssh.passwd / ssh.pk)",
                unreachable=True,
                reason="auth_failed",
            ) from None
        except TimeoutError:
            raise HostError(
                self.ip,
                f"SSH connection timed out after {self.timeouts.connect:g}s "
                f"(tried {self._login()})",
                unreachable=True,
                retryable=True,
                reason="timed_out",
            ) from None
        except BadHostKeyException as e:
            raise HostError(
                self.ip,
                f"the host key ({fingerprint(e.key)}) does not match the one in your "
                f"known_hosts ({fingerprint(e.expected_key)}); fix ~/.ssh/known_hosts if the "
                f"host was reinstalled",
                unreachable=True,
                reason="host_key_changed",
            ) from None
        except (OSError, SSHException, EOFError) as e:
            reason = str(e) or type(e).__name__
            # a port that accepts but never speaks SSH ends in paramiko's banner timeout
            silent = "banner" in reason.lower() or "timed out" in reason.lower()
            raise HostError(
                self.ip,
                f"cannot connect over SSH on port {self.ssh.port}: "
                f"{mask(reason, self._secrets())} (tried {self._login()})",
                unreachable=True,
                retryable=True,
                reason="timed_out" if silent else "down",
            ) from None
        return connection

    def _login(self) -> str:
        """What a failed connection tried, for its message: user, address, port and key file
        (whether a password was offered, never the password)."""
        if self.ssh.key_file:
            way = f"key {self.ssh.key_file}"
        else:
            way = "ssh-agent's keys" if self.ssh.agent else "no key"
        if self.ssh.password:
            way += " and a password"
        through = ""
        if self.ssh.jumps:
            through = " through bastion " + " then ".join(j.name for j in self.ssh.jumps)
        elif self.ssh.proxy_command:
            through = " through its ProxyCommand"
        return f"{self.ssh.user}@{self.address}:{self.ssh.port}{through} with {way}"

    def _secrets(self) -> tuple[str, ...]:
        return (self.ssh.password, self.ssh.key_passphrase)

    def transport(self):
        with self._lock:
            if self._connection is None or not self._connection.is_connected:
                self._connection = self._connect_with_retries()
                self._check_pinned_key()
            return self._connection.client.get_transport()

    def _connect_with_retries(self):
        """A connection problem that may pass (no answer, a late banner, a reset handshake)
        is tried again after a growing, jittered pause, as long as the attempt can end
        within the command deadline; a refused login or a changed key is final. Failures
        that passed are told to timeouts.retried; those that did not are the error."""
        deadline = time.monotonic() + self.timeouts.command
        passed = []
        for attempt in range(self.timeouts.retries + 1):
            try:
                connection = self._connect()
            except HostError as e:
                wait = retrying.pause(attempt)
                last = attempt == self.timeouts.retries
                if (
                    last
                    or not e.retryable
                    or not retrying.room_for(deadline, wait, self.timeouts.connect)
                ):
                    raise
                log.info("%s: %s; trying again in %.1fs", self.ip, e.message, wait)
                passed.append(e.message)
                time.sleep(wait)
            else:
                for message in passed:
                    self.timeouts.passed(self.ip, message)
                return connection
        raise AssertionError("unreachable")

    def _check_pinned_key(self) -> None:
        """Checked again once connected: nothing may have slipped past the policy."""
        if not self.known_key:
            return
        seen = fingerprint(self._connection.client.get_transport().get_remote_server_key())
        if seen != self.known_key:
            self._connection.close()
            self._connection = None
            raise HostKeyChanged(self.ip, self.known_key, seen)

    def host_key(self) -> str:
        """SHA256 fingerprint of the host's key, as OpenSSH prints it."""
        return fingerprint(self.transport().get_remote_server_key())

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    # ---- running ----

    def run(
        self,
        command: str,
        *,
        env: dict[str, str] | None = None,
        stdin: bytes = b"",
        check: bool = True,
        timeout: float | None = None,
        secrets: tuple[str, ...] = (),
    ) -> Result:
        """Run command (through sudo for a non-root user). stdin may carry secrets."""
        wrapped, stdin = self.command_line(command, env, stdin)
        all_secrets = self.secrets_of(env, secrets)
        started = time.monotonic()
        result = self._exec(wrapped, stdin, timeout or self.timeouts.command, all_secrets)
        self._log(command, all_secrets, result.exit_code, started)
        if check and result.exit_code != 0:
            raise command_failed(self.ip, command, result, all_secrets)
        return result

    def _log(self, command: str, secrets, code: int, started: float) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s: `%s` exited %d after %.3fs",
                self.ip, mask(command, secrets)[:500].replace("\n", "\\n"), code,
                time.monotonic() - started,
            )  # fmt: skip

    @property
    def _sudo_password(self) -> str:
        """The password sudo reads for a non-root user ("" when sudo needs none: sudo -n)."""
        return self.ssh.password if self.ssh.user != "root" else ""

    def secrets_of(self, env: dict[str, str] | None, secrets) -> tuple[str, ...]:
        """What an error about a command must mask: its secrets, its env, the login's."""
        return tuple(secrets) + self._secrets() + tuple(env.values() if env else ())

    def command_line(
        self, command: str, env: dict[str, str] | None, stdin: bytes
    ) -> tuple[str, bytes]:
        """The command as the host's shell gets it (sudo for a non-root user), and the stdin
        to send: sudo's password first when it needs one, then the env, then the command's own.

        Env values may be secrets: they travel on stdin, never in a command line that `ps`
        shows to every user of the host. The shell reads them up to a NUL byte (bash reads a
        pipe byte by byte, so the command still gets the rest of stdin)."""
        script = command
        if env:
            exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(env.items()))
            script = ENV_FROM_STDIN + command
            stdin = exports.encode() + b"\0" + stdin
        wrapped = f"bash -c {shlex.quote(script)}"
        if self._sudo_password:  # sudo reads the password as the first line of stdin
            wrapped = f"sudo -S -p '' -- {wrapped}"
            stdin = self._sudo_password.encode() + b"\n" + stdin
        elif self.ssh.user != "root":
            wrapped = f"sudo -n -- {wrapped}"
        return wrapped, stdin

    @contextlib.contextmanager
    def _transport_errors(self, doing: str = "SSH session"):
        """The one mapping of a transport that broke under a command to a HostError: the
        host went away, the connection is dropped (the next command opens a new one)."""
        try:
            yield
        except HostError:
            raise
        except (OSError, EOFError) as e:
            self.close()
            raise HostError(
                self.ip, f"{doing} failed: {e or type(e).__name__}", unreachable=True
            ) from None

    def tunnel(self, port: int):
        """A socket-like channel to this host's own port, opened by its SSH server: how the
        operator reaches a service of a host it has no direct route to (behind a bastion)."""
        try:
            with self._transport_errors("tunnel"):
                return self.transport().open_channel(
                    "direct-tcpip", (self.ip, port), ("127.0.0.1", 0), timeout=self.timeouts.connect
                )
        except HostError:
            raise
        except Exception as e:  # paramiko's ChannelException: forwarding refused or failed
            raise HostError(self.ip, f"SSH tunnel to port {port} failed: {e}") from None

    def forward_argv(self, port: int) -> list[str] | None:
        """An OpenSSH command whose stdin reaches this host's own port through its jump
        hosts (encryption in C: a bulk stream's way); None when OpenSSH cannot take the
        route (a secret, no pin yet, a ProxyCommand) or the host is reached directly."""
        if not self.ssh.jumps or self.gateways is None:
            return None
        return forward_argv(self.ssh.jumps, self._jump_pins(), self.ip, port, self.timeouts.connect)

    def _jump_pins(self) -> dict[str, str]:
        """The jumps' keys an OpenSSH process may trust: the state's pins and those this run
        saw and checked (the host is connected first, through them)."""
        self.transport()
        return {**self.gateways.pins, **self.gateways.seen}

    @property
    def routed(self) -> bool:
        """Reached through jump hosts or a ProxyCommand, not by a direct connection."""
        return bool(self.ssh.jumps or self.ssh.proxy_command)

    def follow(
        self, command: str, *, env: dict[str, str] | None = None, stdin: bytes = b""
    ) -> Followed:
        """Start a long-running command (e.g. `kubectl get --watch`) to read as it writes;
        stdin (which may carry secrets) is sent whole first."""
        wrapped, stdin = self.command_line(command, env, stdin)
        channel = self._open_channel()
        try:
            with self._transport_errors():
                channel.settimeout(None)  # the reader decides how long to wait
                channel.exec_command(wrapped)
                if stdin:
                    channel.sendall(stdin)
                channel.shutdown_write()
        except HostError:
            channel.close()
            raise
        return Followed(self.ip, channel)

    def _open_channel(self):
        try:
            with self._transport_errors():
                return self.transport().open_session(timeout=self.timeouts.connect)
        except HostError:
            raise
        except Exception as e:  # paramiko's SSHException: the transport died under us
            self.close()
            raise HostError(self.ip, f"SSH session failed: {e}", unreachable=True) from None

    def _exec(self, command: str, stdin: bytes, timeout: float, secrets) -> Result:
        channel = self._open_channel()
        try:
            with self._transport_errors():
                try:
                    channel.settimeout(timeout)
                    channel.exec_command(command)
                    if stdin:
                        channel.sendall(stdin)
                    channel.shutdown_write()
                    stdout, stderr = self._drain(channel, timeout)
                    code = channel.recv_exit_status()
                except TimeoutError:  # the command's own timeout, not the transport's
                    raise HostError(
                        self.ip, f"`{mask(command, secrets)[:200]}` timed out after {timeout:g}s"
                    ) from None
        finally:
            channel.close()
        return Result(code, stdout.decode(errors="replace"), stderr.decode(errors="replace"))

    @staticmethod
    def _drain(channel, timeout: float) -> tuple[bytes, bytes]:
        """stdout and stderr of a command, once it has exited and its output has ended.

        sshd sends the exit status as soon as the command exits, which can be before the last
        of its output (what was still in the pipe): read on until the end of the output. A
        command that leaves a background process holding its output (`daemon &`) gets
        OUTPUT_GRACE seconds after its exit, not a wait for that process.
        """
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout
        exited_at = None
        while True:
            if channel.recv_ready():
                out += channel.recv(65536)
            elif channel.recv_stderr_ready():
                err += channel.recv_stderr(65536)
            elif channel.exit_status_ready():
                exited_at = exited_at or time.monotonic()
                if (
                    channel.eof_received
                    or channel.closed
                    or time.monotonic() - exited_at > OUTPUT_GRACE
                ):
                    break
                time.sleep(0.002)  # the rest of the output is on its way
            else:
                if time.monotonic() > deadline:
                    raise TimeoutError
                channel.status_event.wait(0.005)
        return bytes(out), bytes(err)

    def upload(
        self, command: str, path: str, timeout: float | None = None, *, alone: bool = False
    ) -> Result:
        """Run command (e.g. `tar xf -`) with the file at path as its stdin: a bulk copy.

        While other hosts copy too, and with key authentication, the bytes go through the
        OpenSSH client (encryption in C, no GIL: about 2x faster than paramiko when 20 hosts
        copy at once), pinned to the host key this connection verified. Otherwise, and for
        an upload `alone` (nothing else copying), they stream over the open Fabric connection:
        no second process and handshake, which a single stream does not win back.
        """
        # The OpenSSH client gets no secret: not for a key's passphrase nor for sudo's password.
        openssh = (
            self.ssh.key_file
            and not self.ssh.key_passphrase
            and not self._sudo_password
            and shutil.which("ssh")
        )
        route = self._openssh_route() if openssh and not alone else None
        if route is not None:
            try:
                return self._upload_openssh(command, path, timeout or self.timeouts.command, route)
            except _NoSession as failed:  # the command never started: the open connection
                copied = self.stream(command, _file_chunks(path), timeout)  # takes the copy
                self.timeouts.passed(self.ip, failed.message)
                return copied
        return self.stream(command, _file_chunks(path), timeout)

    def _openssh_route(self) -> list[str] | None:
        """OpenSSH's options for this host's way (none: direct; a ProxyCommand through its
        jump hosts, pinned to the keys they showed); None when OpenSSH cannot take it."""
        if self.ssh.proxy_command:
            return None  # the user's command may prompt or cost a login: one connection only
        if not self.ssh.jumps:
            return []
        proxy = proxy_command(
            self.ssh.jumps, self._jump_pins(), self.address, self.ssh.port, self.timeouts.connect
        )
        return None if proxy is None else ["-o", f"ProxyCommand={proxy}"]

    def _upload_openssh(self, command: str, path: str, timeout: float, route: list[str]) -> Result:
        key = self.transport().get_remote_server_key()
        host = self.address if self.ssh.port == 22 else f"[{self.address}]:{self.ssh.port}"
        with tempfile.NamedTemporaryFile("w", suffix=".known_hosts") as known_hosts:
            known_hosts.write(f"{host} {key.get_name()} {key.get_base64()}\n")
            known_hosts.flush()
            wrapped, no_stdin = self.command_line(command, None, b"")
            assert not no_stdin  # no sudo password on this path (upload() checks)
            argv = [
                "ssh",
                "-F",
                "/dev/null",  # the way to the host is sealer's (route), not a config's
                "-i",
                self.ssh.key_file,
                "-p",
                str(self.ssh.port),
                *route,
                "-o",
                "BatchMode=yes",
                "-o",  # AES-GCM runs on the CPU's AES instructions: the cheapest bulk cipher
                "Ciphers=aes128-gcm@openssh.com,aes256-gcm@openssh.com,"
                "chacha20-poly1305@openssh.com,aes128-ctr",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                f"UserKnownHostsFile={known_hosts.name}",
                "-o",
                "LogLevel=ERROR",
                "-o",
                f"ConnectTimeout={int(self.timeouts.connect)}",
                "-l",
                self.ssh.user,
                "--",  # nothing after this is read as an option
                self.address,
                wrapped,
            ]
            with open(path, "rb") as stdin:
                try:
                    done = subprocess.run(argv, stdin=stdin, capture_output=True, timeout=timeout)
                except subprocess.TimeoutExpired:
                    raise HostError(self.ip, f"upload timed out after {timeout:g}s") from None
        result = Result(
            done.returncode,
            done.stdout.decode(errors="replace"),
            done.stderr.decode(errors="replace"),
        )
        if done.returncode == 255:
            error = _NoSession if OPENSSH_NO_SESSION.search(result.stderr) else HostError
            raise error(
                self.ip, f"upload over SSH failed: {result.stderr.strip()}", unreachable=True
            )
        if done.returncode != 0:
            raise HostError(
                self.ip, f"`{command}` exited with {done.returncode}: {result.stderr.strip()}"
            )
        return result

    def stream(self, command: str, chunks, timeout: float | None = None) -> Result:
        """Run command with a large stdin (an iterable of bytes), e.g. `tar xf -`; sudo's
        password (for a non-root user who needs one) goes first, as for run()."""
        wrapped, first = self.command_line(command, None, b"")
        channel = self._open_channel()
        started = time.monotonic()
        try:
            with self._transport_errors("upload"):
                channel.settimeout(timeout or self.timeouts.command)
                channel.exec_command(wrapped)
                if first:
                    channel.sendall(first)
                for chunk in chunks:
                    channel.sendall(chunk)
                channel.shutdown_write()
                stdout, stderr = self._drain(channel, timeout or self.timeouts.command)
                code = channel.recv_exit_status()
        finally:
            channel.close()
        self._log(command, self._secrets(), code, started)
        result = Result(code, stdout.decode(errors="replace"), stderr.decode(errors="replace"))
        if code != 0:
            raise HostError(self.ip, f"`{command}` exited with {code}: {result.stderr.strip()}")
        return result


def command_failed(ip: str, command: str, result: Result, secrets) -> HostError:
    """The error for a command that exited non-zero: its code and last lines, masked."""
    detail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-3:]
    return HostError(
        ip,
        f"`{mask(command, secrets)}` exited with "
        f"{result.exit_code}: {mask(' | '.join(detail), secrets)}",
    )


class Followed:
    """A command still running on a host (see Remote.follow)."""

    def __init__(self, ip: str, channel):
        self.ip = ip
        self._channel = channel

    def chunks(self):
        """Its stdout, as it comes, until it ends or close() is called."""
        while chunk := self._channel.recv(65536):
            yield chunk

    def failure(self) -> str:
        """Why it ended: its exit code and last stderr line ("" for a clean exit)."""
        if not self._channel.status_event.wait(2.0):  # the status follows the output's end
            return "ended without an exit status"
        code = self._channel.recv_exit_status()
        if code == 0:
            return ""
        stderr = b""
        while self._channel.recv_stderr_ready():
            stderr += self._channel.recv_stderr(65536)
        last = stderr.decode(errors="replace").strip().splitlines()[-1:]
        return f"exited with {code}" + (f": {last[0]}" if last else "")

    def close(self) -> None:
        """End it: the command loses its stdout and sshd its channel."""
        self._channel.close()


def _file_chunks(path: str, size: int = 1 << 20):
    with open(path, "rb") as f:
        while chunk := f.read(size):
            yield chunk


def expand_tokens(command: str, address: str, ssh: SSH) -> str:
    """A ProxyCommand's %-tokens, as OpenSSH expands them (%h host, %p port, %r user)."""
    values = {"h": address, "p": str(ssh.port), "r": ssh.user, "n": address, "%": "%"}
    return re.sub(r"%(.)", lambda m: values.get(m.group(1), m.group(0)), command)


def fingerprint(key) -> str:
    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


class Driver:
    """The connections of one run, by IP."""

    def __init__(
        self,
        hosts: dict[str, SSH],
        timeouts: Timeouts | None = None,
        pinned_keys: dict[str, str] | None = None,
        reuse=None,
        gateways=None,
    ):
        self.timeouts = timeouts or Timeouts()
        self.reuse = reuse  # connections shared across runs for reads (executors.connections)
        self.gateways = gateways  # the jump hosts' connections (executors.jumps.Gateways)
        self._ssh = dict(hosts)
        self._pinned = dict(pinned_keys or {})  # ip -> fingerprint first seen (from the state)
        self._remotes: dict[str, Remote] = {}
        self._readers: dict = {}
        self._lock = threading.Lock()

    def host(self, ip: str) -> Remote:
        with self._lock:
            remote = self._remotes.get(ip)
            if remote is None:
                if ip not in self._ssh:
                    raise HostError(ip, "no SSH settings for this host")
                remote = self._remotes[ip] = Remote(
                    ip, self._ssh[ip], self.timeouts, self._pinned.get(ip, ""), self.gateways
                )
            return remote

    def reader(self, ip: str):
        """The host for read-only commands: over a connection shared across runs when the
        driver has them and the host can use one (see executors.connections), else host(ip)."""
        remote = self.host(ip)
        if self.reuse is None:
            return remote
        with self._lock:
            if ip not in self._readers:
                self._readers[ip] = self.reuse.reader(remote)
            return self._readers[ip]

    def close(self) -> None:
        for remote in list(self._remotes.values()):
            remote.close()
        if self.gateways is not None:
            self.gateways.close()
