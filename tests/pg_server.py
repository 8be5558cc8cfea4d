"""A throwaway PostgreSQL server for the tests: its own data folder, on 127.0.0.1 only.

The server binaries come from Debian's postgresql package (scripts/setup installs it when
missing). PostgreSQL refuses to run as root, so as root the server runs as the `postgres`
user. Clients log in with a password (scram-sha-256) given through PGPASSWORD, as a team would.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

USER = "sealer"
DATABASE = "sealer"


def server_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=_version_key)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("postgres")
    if on_path:
        return Path(on_path).resolve().parent
    raise RuntimeError("no PostgreSQL server binaries: run scripts/setup (Debian's postgresql)")


def _version_key(path: str) -> int:
    part = Path(path).parent.parent.name
    return int(part) if part.isdigit() else 0


class PostgresServer:
    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="sealer-pg-"))
        self.data = self.folder / "data"
        self.password = secrets.token_urlsafe(16)
        self.port = free_port()
        self.bindir = server_bindir()
        self._run_as = "postgres" if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgres://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def start(self) -> PostgresServer:
        password_file = self.folder / "pwfile"
        password_file.write_text(self.password + "\n")
        if self._run_as:
            account = pwd.getpwnam(self._run_as)
            os.chown(self.folder, account.pw_uid, account.pw_gid)
            os.chown(password_file, account.pw_uid, account.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            USER,
            f"--pwfile={password_file}",
            "--auth=scram-sha-256",
            "--no-sync",
            "-E",
            "UTF8",
        )
        password_file.unlink()
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.folder / "log"),
            "-w",
            "start",
        )
        self._client("createdb", DATABASE)
        return self

    def stop(self) -> None:
        if self.data.exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.folder, ignore_errors=True)

    def restart(self) -> None:
        """Stop (every session ends, advisory locks with them) and start again, same port."""
        self._run(
            "pg_ctl", "-D", str(self.data), "-m", "fast", "-l", str(self.folder / "log"), "-w",
            "restart",
        )  # fmt: skip

    def psql(self, sql: str) -> str:
        """Run SQL as the test's user; return psql's unaligned output."""
        return self._client("psql", "-d", DATABASE, "-Atc", sql)

    def _client(self, program: str, *args: str) -> str:
        """A client program, logged in over TCP as the test's user with its password."""
        connection = ["-h", "127.0.0.1", "-p", str(self.port), "-U", USER]
        return subprocess.run(
            [str(self.bindir / program), *connection, *args],
            env={**os.environ, "PGPASSWORD": self.password},
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def _run(self, program: str, *args: str, check: bool = True) -> None:
        command = [str(self.bindir / program), *args]
        if self._run_as:
            command = ["runuser", "-u", self._run_as, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, cwd=self.folder)
        if check and result.returncode != 0:
            raise RuntimeError(f"{program} failed: {result.stderr.strip() or result.stdout}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
