"""A real registry as teams run one: Distribution's registry on 127.0.0.1 with TLS (a CA made
here with openssl) and htpasswd (bcrypt) auth, for the tests and benches of pull and push."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import yaml

from cluster import registry as registries
from imagebuild import local_registry

VENDORED = Path(__file__).resolve().parent.parent / "examples/images/.vendor/registry/registry"


@dataclass(frozen=True)
class SecureRegistry:
    address: str  # 127.0.0.1:PORT
    ca: Path  # the CA file that signed its certificate
    user: str
    password: str
    storage: Path
    log: Path  # its access log: what went over the wire

    def cert_dir(self) -> Path:
        """A folder holding ca.crt, as skopeo's --cert-dir and certs.d/HOST:PORT take it."""
        return self.ca.parent

    def trust_in(self, sealer_home: Path) -> None:
        """$SEALER_HOME/certs.d/HOST:PORT/ca.crt: this sealer home trusts the registry."""
        folder = sealer_home / "certs.d" / self.address
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "ca.crt").write_bytes(self.ca.read_bytes())

    def skopeo_creds(self) -> list[str]:
        return ["--creds", f"{self.user}:{self.password}"]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """(ca.crt, server.crt, server.key) for 127.0.0.1."""
    folder.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
             "/CN=sealer test CA", "-keyout", "ca.key", "-out", "ca.crt", cwd=folder)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", "server.key", "-out", "server.csr", cwd=folder)  # fmt: skip
    (folder / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "server.crt",
             cwd=folder)  # fmt: skip
    return folder / "ca.crt", folder / "server.crt", folder / "server.key"


@contextlib.contextmanager
def secure_registry(storage: Path, user: str = "ci"):
    """The registry for as long as the block runs."""
    program = str(VENDORED) if VENDORED.exists() else local_registry.binary()
    work = Path(tempfile.mkdtemp(prefix="sealer-secure-registry-"))
    ca, cert, key = make_certificates(work / "tls")
    password = secrets.token_urlsafe(18)
    (work / "htpasswd").write_text(
        f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()}\n"
    )
    storage.mkdir(parents=True, exist_ok=True)
    port = local_registry.free_port()
    address = f"127.0.0.1:{port}"
    config = registries.distribution_config(
        str(storage), address, {"certificate": str(cert), "key": str(key)}, str(work / "htpasswd")
    )
    config["log"] = {"level": "info", "accesslog": {"disabled": False}}
    (work / "config.yml").write_text(yaml.safe_dump(config))
    ca_dir = work / "ca"
    ca_dir.mkdir()
    (ca_dir / "ca.crt").write_bytes(ca.read_bytes())
    log_path = work / "registry.log"
    with open(log_path, "w+b") as log:
        process = subprocess.Popen([program, "serve", str(work / "config.yml")], stdout=log,
                                   stderr=subprocess.STDOUT)  # fmt: skip
        try:
            local_registry.wait_ready(f"https://{address}/v2/", process, log, ca=str(ca))
            yield SecureRegistry(address, ca_dir / "ca.crt", user, password, storage, log_path)
        finally:
            process.terminate()
            process.wait(10)
            subprocess.run(["rm", "-rf", str(work)], check=False)
