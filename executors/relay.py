"""Send one file to many hosts through the hosts themselves: pipelined chains.

The operator's uplink is one link; the cluster has as many links as hosts. So the operator
sends the image's tarball to the head of each chain, and every host passes each chunk on to
the next host while it writes its own copy: the time stays near one copy over one link plus a
small cost per hop, not hosts x size.

- Each host runs a small receiver (python3, given on stdin over the operator's SSH session,
  never a file of ours left behind) listening on its own address, on a port the kernel picks.
  It accepts data only from a peer that first sends the one-time token the operator gave it
  for this transfer (over SSH stdin, never argv), within a few seconds, and only from a host
  before it in its chain (the head: from anyone with the token); a silent or wrong connection
  is dropped and the next one accepted. It reads no more than the announced size. The
  operator's SSH credentials never reach a host.
- Every host unpacks the stream as it arrives (one disk write per byte, not a tarball then
  its unpacking) into a 0700 folder of its own, hashing as it goes, and keeps the folder only
  if the size and the sha256 the operator gave it match: a relay that tampers with what it
  forwards is caught by the next host, which removes what it unpacked. GNU tar keeps members
  inside that folder (no `..`, no absolute names, links outside become placeholders), so a
  bad stream cannot write elsewhere before the check.
- A relay that dies or cheats mid-stream cuts its chain short: the hosts after it report a
  bad or short copy, and the caller sends them the file directly (the operator is the other
  source). A host without python3 does the same. So the relay can only make a copy faster.

Only the image's own files travel this way (the rendered Configs, which may hold secrets, go
to each host over SSH), and only between hosts of the apply.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import shlex
import shutil
import socket
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from executors.driver import Driver, HostError

CHAIN_LENGTH = 8  # hosts per chain: a dead relay costs at most this many direct copies
CHUNK = 1 << 20
ACCEPT_TIMEOUT = 60  # seconds a receiver waits for its sender
TOKEN_TIMEOUT = 5  # seconds a connection has to say the token before the next is accepted

# The receiver: one JSON line on stdin, then it prints "port N", receives, forwards, unpacks
# into OUT.part, checks, and renames OUT.part to OUT.
RECEIVER = r"""
import hashlib, hmac, ipaddress, json, os, shutil, socket, subprocess, sys, time
cfg = json.loads(sys.stdin.readline())
family = socket.AF_INET6 if ":" in cfg["bind"] else socket.AF_INET
server = socket.socket(family, socket.SOCK_STREAM)
server.bind((cfg["bind"], 0))
server.listen(16)
print("port", server.getsockname()[1], flush=True)
token = cfg["token"].encode()
peers = {ipaddress.ip_address(p) for p in cfg.get("peers") or ()}
deadline = time.monotonic() + cfg["wait"]
conn = None
while conn is None:  # a silent or wrong connection costs its token_wait, never the transfer
    left = deadline - time.monotonic()
    if left <= 0:
        print("no-sender", flush=True)
        sys.exit(0)
    server.settimeout(left)
    try:
        candidate, address = server.accept()
    except OSError:
        continue
    if peers and ipaddress.ip_address(address[0].split("%")[0]) not in peers:
        candidate.close()  # only a host before this one in its chain sends to it
        continue
    candidate.settimeout(max(0.1, min(cfg.get("token_wait", 5), left)))
    said = b""
    try:
        while len(said) < len(token) + 1 and not said.endswith(b"\n"):
            got = candidate.recv(len(token) + 1 - len(said))
            if not got:
                break
            said += got
    except OSError:
        said = b""
    if hmac.compare_digest(said, token + b"\n"):
        conn = candidate
        conn.settimeout(cfg["wait"])
    else:
        candidate.close()
server.close()
forward = None
if cfg["next"]:
    try:
        forward = socket.create_connection(
            (cfg["next"]["host"], cfg["next"]["port"]), 10, source_address=(cfg["bind"], 0)
        )  # from its own address: the next host accepts only that one
        forward.sendall(cfg["next"]["token"].encode() + b"\n")
    except OSError as e:
        print("forward-failed", e, flush=True)
        forward = None
digest, total, unpacked = hashlib.sha256(), 0, True
part = cfg["out"] + ".part"
def clear(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)
clear(part)
os.makedirs(os.path.dirname(part), exist_ok=True)
os.mkdir(part, 0o700)  # nobody else reads a copy not checked yet
tar = subprocess.Popen(["tar", "xf", "-", "-C", part], stdin=subprocess.PIPE,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
over = False
while True:
    try:
        chunk = conn.recv(min(1 << 20, cfg["size"] - total + 1))  # one byte past: too long
    except OSError:
        break
    if not chunk:
        break
    if total + len(chunk) > cfg["size"]:
        over = True  # more than announced: stop here, keep nothing
        break
    digest.update(chunk)
    total += len(chunk)
    if forward is not None:
        try:
            forward.sendall(chunk)
        except OSError:
            forward = None
    if tar is not None:
        try:
            tar.stdin.write(chunk)
        except OSError:
            unpacked = False  # keep forwarding: the next host judges its own copy
            tar.kill()
            tar.wait()
            tar = None
if forward is not None:
    forward.close()
if tar is not None:
    try:
        tar.stdin.close()
    except OSError:
        pass
    unpacked = tar.wait() == 0 and unpacked
if unpacked and not over and total == cfg["size"] and digest.hexdigest() == cfg["digest"]:
    clear(cfg["out"])
    os.replace(part, cfg["out"])
    print("ok", flush=True)
else:
    shutil.rmtree(part, ignore_errors=True)
    why = "over-size" if over else ("unpacked" if unpacked else "tar-failed")
    print("bad", total, digest.hexdigest(), why, flush=True)
"""


@dataclass(frozen=True)
class Receipt:
    """How the file reached one host: ok, or why not (then it is sent directly)."""

    ok: bool
    error: str = ""


def file_digest(path: Path) -> str:
    """sha256 of a (cached, immutable) file, itself cached beside it."""
    saved = path.with_name(path.name + ".sha256")
    if saved.exists() and saved.stat().st_mtime >= path.stat().st_mtime:
        return saved.read_text().strip()
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    saved.write_text(digest.hexdigest())
    return digest.hexdigest()


def chains_of(ips: list[str], length: int = CHAIN_LENGTH) -> list[list[str]]:
    """Split hosts into chains of at most `length`, as even as possible."""
    count = max(1, -(-len(ips) // length))
    return [ips[i::count] for i in range(count)]


class Relay:
    """One transfer of the tarball `source`, unpacked into the folder `dest`, to every host of
    `ips`."""

    def __init__(self, driver: Driver, source: Path, dest: str, ips: list[str]):
        self.driver = driver
        self.source = source
        self.dest = dest
        self.ips = ips
        self.size = source.stat().st_size
        self.digest = file_digest(source)

    def run(self) -> dict[str, Receipt]:
        chains = chains_of(self.ips)
        with ThreadPoolExecutor(len(chains)) as pool:
            results = pool.map(self._run_chain, chains)
        return {ip: r for chain in results for ip, r in chain.items()}

    def _run_chain(self, chain: list[str]) -> dict[str, Receipt]:
        receipts: dict[str, Receipt] = {}
        started = []  # (ip, follow, token, port), from the tail back to the head
        following = None  # the next host's (address, port, token)
        for i, ip in reversed(list(enumerate(chain))):
            token = secrets.token_hex(16)
            # its sender is a host before it in the chain (the one just before, unless that
            # one's receiver did not start); the head's is the operator, whose address the
            # head may not know (a bastion, NAT): any peer, the token decides
            senders = chain[:i]
            try:
                followed, port, said = self._start_receiver(ip, token, following, senders)
            except (HostError, OSError, ValueError) as e:
                receipts[ip] = Receipt(False, f"relay receiver did not start: {e}")
                continue  # the host before it forwards to the one after it
            started.append((ip, followed, said))
            following = {"host": ip, "port": port, "token": token}
        if following is not None:
            threading.Thread(target=self._send_head, args=(following,), daemon=True).start()
        with ThreadPoolExecutor(max(1, len(started))) as pool:
            outcomes = pool.map(lambda s: _outcome(s[1], s[2]), started)
            receipts.update(zip((s[0] for s in started), outcomes, strict=True))
        return receipts

    def _start_receiver(self, ip: str, token: str, following: dict | None, senders: list[str] = ()):
        remote = self.driver.host(ip)
        header = {
            "bind": ip,
            "token": token,
            "out": self.dest,
            "size": self.size,
            "digest": self.digest,
            "next": following,
            "wait": ACCEPT_TIMEOUT,
            "token_wait": TOKEN_TIMEOUT,
            "peers": list(senders),
        }
        stdin = json.dumps(header).encode() + b"\n"
        command = f"python3 -c {shlex.quote(RECEIVER)}"
        followed = remote.follow(command, stdin=stdin)
        first = b""
        for chunk in followed.chunks():
            first += chunk
            if b"\n" in first:
                break
        line, _, rest = first.partition(b"\n")
        words = line.decode(errors="replace").split()
        if len(words) != 2 or words[0] != "port":
            followed.close()
            raise ValueError(followed.failure() or f"said {line[:100]!r}")
        return followed, int(words[1]), rest

    def _send_head(self, head: dict) -> None:
        """The operator is the head's sender: one copy per chain over the operator's link,
        through the head's SSH connection when the operator has no route to it (a bastion)."""
        remote = self.driver.host(head["host"])
        try:
            if remote.routed:
                self._send_routed(remote, head)
                return
            with socket.create_connection((head["host"], head["port"]), 10) as conn:
                conn.sendall(head["token"].encode() + b"\n")
                with open(self.source, "rb") as f:
                    conn.sendfile(f)
        except (OSError, HostError):
            pass  # the head reports a short copy; the caller sends it directly

    def _send_routed(self, remote, head: dict) -> None:
        """To a head behind a bastion: over `ssh -W` through it (OpenSSH's encryption, in C),
        else over a channel of the head's own SSH connection."""
        forward = remote.forward_argv(head["port"])
        if forward is not None:
            with open(self.source, "rb") as f:
                ssh = subprocess.Popen(
                    forward, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )  # fmt: skip
                try:
                    ssh.stdin.write(head["token"].encode() + b"\n")
                    shutil.copyfileobj(f, ssh.stdin, CHUNK)
                finally:
                    ssh.stdin.close()
                    try:  # the head's receiver has its own deadlines; this is the last resort
                        ssh.wait(timeout=self.driver.timeouts.command)
                    except subprocess.TimeoutExpired:
                        ssh.kill()
            return
        with contextlib.closing(remote.tunnel(head["port"])) as channel:
            channel.sendall(head["token"].encode() + b"\n")
            with open(self.source, "rb") as f:
                while chunk := f.read(CHUNK):
                    channel.sendall(chunk)


def _outcome(followed, said: bytes) -> Receipt:
    """What a receiver printed after its port, until it ended."""
    try:
        for chunk in followed.chunks():
            said += chunk
    except OSError as e:
        return Receipt(False, f"relay receiver lost: {e}")
    lines = said.decode(errors="replace").split("\n")
    if "ok" in lines:
        return Receipt(True)
    bad = [line for line in lines if line.startswith("bad")]
    if bad:
        return Receipt(False, f"the copy received failed its digest check ({bad[0]})")
    return Receipt(False, f"relay receiver ended: {followed.failure() or 'no result'}")
