"""End-to-end: the image reaches the hosts through the hosts themselves (executors/relay.py),
and a relay that dies or cheats mid-stream only sends the hosts after it to the operator."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Cluster, ip, ssh

# A python3 earlier on the host's PATH that runs sealer's relay receiver with its forwarding
# sabotaged after a few chunks: killed (kill -9 of itself) or flipping one byte. Any other
# use of python3 goes to the real one untouched.
SABOTEUR = r"""#!/usr/bin/python3
import os, signal, socket, sys
if len(sys.argv) < 3 or sys.argv[1] != "-c" or "compare_digest" not in sys.argv[2]:
    os.execv("/usr/bin/python3", ["python3", *sys.argv[1:]])
MODE = "{mode}"
sent = [0]
real = socket.socket.sendall
def sendall(self, data, *args):
    sent[0] += 1
    if sent[0] == 4:  # the token, then a few chunks of data went through
        if MODE == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        data = bytes([data[0] ^ 0xFF]) + bytes(data[1:])
    return real(self, data, *args)
socket.socket.sendall = sendall
code = sys.argv[2]
sys.argv = ["-c"]
exec(compile(code, "<relay>", "exec"), {{"__name__": "__main__"}})
"""


def _markers(numbers) -> set[str]:
    return {
        ssh(n, "cat /var/lib/sealer/data/e2e/rootfs/.sealer-digest").stdout.strip() for n in numbers
    }


def _rootfs_digest(n: int) -> str:
    command = (
        "cd /var/lib/sealer/data/e2e/rootfs && find . -type f ! -name '.sealer-*' -print0 "
        "| sort -z | xargs -0 sha256sum | sha256sum"
    )
    return ssh(n, command).stdout.split()[0]


def test_every_host_gets_the_image_through_the_cluster(hosts, tmp_path):
    cluster = Cluster(tmp_path, "k3s")
    cluster.write([1], [2, 3, 4, 5])
    result = cluster.apply()
    assert "relay: 5 of 5 hosts got the image through the cluster" in result.stdout
    assert len(_markers(range(1, 6))) == 1
    assert len({_rootfs_digest(n) for n in range(1, 6)}) == 1
    leftovers = ssh(3, "ls /var/lib/sealer/data/e2e/").stdout.split()
    assert leftovers == ["rootfs"]  # the received copy became the rootfs


@pytest.mark.parametrize("mode", ["kill", "flip"])
def test_a_relay_that_dies_or_cheats_sends_the_hosts_after_it_to_the_operator(
    hosts, tmp_path, mode
):
    saboteur = 2  # the chain is the plan's order: 1 (head), 2, 3, 4, 5
    script = SABOTEUR.format(mode=mode)
    ssh(
        saboteur,
        f"cat > /usr/local/bin/python3 <<'EOF'\n{script}EOF\nchmod +x /usr/local/bin/python3",
    )
    cluster = Cluster(tmp_path, "k3s")
    cluster.write([1], [2, 3, 4, 5])
    result = cluster.apply()
    after = [ip(n) for n in (3, 4, 5)]
    if mode == "kill":
        assert "relay: 1 of 5 hosts got the image" in result.stdout
        assert f"{ip(saboteur)}: sent directly" in result.stdout
    else:  # the cheat kept a good copy itself; the next host caught the flipped byte
        assert "relay: 2 of 5 hosts got the image" in result.stdout
        assert f"{ip(3)}: sent directly: the copy received failed its digest check" in (
            result.stdout
        )
    for address in after:
        assert f"{address}: sent directly" in result.stdout
    assert len(_markers(range(1, 6))) == 1  # every host holds the same, verified image
    assert len({_rootfs_digest(n) for n in range(1, 6)}) == 1
    assert len(cluster.state()["hosts"]) == 5
    for n in (3, 4, 5):  # what a bad stream unpacked was removed
        assert ssh(n, "ls /var/lib/sealer/data/e2e/").stdout.split() == ["rootfs"]


def test_a_rebuilt_image_sends_only_what_changed_and_every_host_checks_it(hosts, tmp_path):
    import shutil

    from tests.e2e.conftest import IMAGES, OLD

    image = tmp_path / "image"
    shutil.copytree(IMAGES / f"k3s-{OLD}", image, symlinks=True)
    (image / "manifests").mkdir(exist_ok=True)
    (image / "manifests" / "keep.yaml").write_text("kept: 1\n")
    (image / "manifests" / "drop.yaml").write_text("dropped: 1\n")
    cluster = Cluster(tmp_path, "k3s")
    cluster.write([1], [2, 3])
    text = cluster.path.read_text().replace(str(IMAGES / f"k3s-{OLD}"), str(image))
    cluster.path.write_text(text)
    cluster.apply()
    (image / "manifests" / "keep.yaml").write_text("kept: 2\n")
    (image / "manifests" / "drop.yaml").unlink()
    (image / "manifests" / "new.yaml").write_text("new: 1\n")
    result = cluster.apply()
    assert "3 changed" in result.stdout  # sync_rootfs on each host
    root = "/var/lib/sealer/data/e2e/rootfs/manifests"
    for n in (1, 2, 3):
        assert ssh(n, f"cat {root}/keep.yaml {root}/new.yaml").stdout == "kept: 2\nnew: 1\n"
        assert ssh(n, f"test -e {root}/drop.yaml", check=False).returncode == 1
        assert ssh(n, "ls /var/lib/sealer/data/e2e/").stdout.split() == ["rootfs"]
    assert len({_rootfs_digest(n) for n in (1, 2, 3)}) == 1
    assert len(_markers((1, 2, 3))) == 1
