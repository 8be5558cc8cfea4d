"""A real registry as teams run one: Distribution's registry on 127.0.0.1 with TLS (a CA made
here with openssl) and htpasswd (bcrypt) auth, for the tests and benches of pull and push."""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import secrets
import subprocess
import tempfile
import threading
import time
import urllib.parse
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
    tokens: object = None  # the TokenServer, with bearer-token auth

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


class TokenServer:
    """Bearer-token auth as Docker Hub and most registries run it: the registry answers 401
    with a realm; the client asks this server for a token with its basic credentials; the
    token is a JWT (RS256, the signing certificate in its x5c header) naming the scope granted.
    """

    def __init__(self, work: Path, user: str, password: str, service: str):
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                 "/CN=sealer test token issuer", "-keyout", "token.key", "-out", "token.crt",
                 cwd=work)  # fmt: skip
        self.bundle = work / "token.crt"
        self.key = serialization.load_pem_private_key((work / "token.key").read_bytes(), None)
        cert = x509.load_pem_x509_certificate(self.bundle.read_bytes())
        self.chain = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
        self.user, self.password, self.service = user, password, service
        self.issued = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                given = self.headers.get("Authorization", "")
                expected = (
                    "Basic "
                    + base64.b64encode(f"{server.user}:{server.password}".encode()).decode()
                )
                if given != expected:
                    self.send_response(401)
                    self.end_headers()
                    return
                query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
                token = server.token(query.get("scope", []))
                body = json.dumps(
                    {"token": token, "access_token": token, "expires_in": 300}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def token(self, scopes: list[str]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {"iss": "sealer-test-issuer", "sub": self.user, "aud": self.service,
                  "exp": now + 300, "nbf": now - 10, "iat": now, "jti": secrets.token_hex(8),
                  "access": access}  # fmt: skip
        header = {"typ": "JWT", "alg": "RS256", "x5c": self.chain}

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        signing = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        signature = self.key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
        self.issued += 1
        return f"{signing}.{b64(signature)}"

    def stop(self) -> None:
        self.httpd.shutdown()


@contextlib.contextmanager
def secure_registry(storage: Path, user: str = "ci", auth: str = "htpasswd"):
    """The registry for as long as the block runs; auth: htpasswd (basic) or token (bearer)."""
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
    tokens = None
    if auth == "token":
        tokens = TokenServer(work, user, password, "sealer-test-registry")
        config["auth"] = {"token": {"realm": tokens.realm, "service": "sealer-test-registry",
                                    "issuer": "sealer-test-issuer",
                                    "rootcertbundle": str(tokens.bundle)}}  # fmt: skip
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
            yield SecureRegistry(
                address, ca_dir / "ca.crt", user, password, storage, log_path, tokens
            )
        finally:
            if tokens:
                tokens.stop()
            process.terminate()
            process.wait(10)
            subprocess.run(["rm", "-rf", str(work)], check=False)
