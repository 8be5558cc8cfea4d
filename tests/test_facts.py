"""The host facts' parsers, on recorded outputs: the odd ones too."""

from __future__ import annotations

from pathlib import Path

from executors import facts
from executors.runtimes import runtime_for

K3S = runtime_for("k3s").probe
KUBEADM = runtime_for("kubernetes").probe


def test_name_and_marker_of_a_host_holding_a_rootfs():
    assert facts.parse_name_and_marker("node-1\naarch64\nsha256:abc configs:0123\n") == facts.Seen(
        "node-1", "sha256:abc configs:0123", "aarch64"
    )


def test_name_and_marker_of_a_new_host_and_of_empty_output():
    assert facts.parse_name_and_marker("node-1\nx86_64\n") == facts.Seen("node-1", "", "x86_64")
    assert facts.parse_name_and_marker("") == facts.Seen("", "", "")


def test_host_state_of_a_running_k3s_server():
    out = (
        "hostname=m1\nmarker=sha256:abc configs:01\n"
        "version=k3s version v1.25.3+k3s1 (f2585c16)\nservices=active inactive \n"
    )
    assert facts.parse_host_state(out, K3S) == {
        "hostname": "m1",
        "marker": "sha256:abc configs:01",
        "machine": "",
        "version": "v1.25.3",
        "services": ("k3s",),
        "endpoint": None,
        "cert_expires": None,
        "host_aliases": None,
        "registry_addresses": None,
        "registry_running": None,
        "host_keys": (),
    }


def test_host_state_with_nothing_installed_and_a_missing_unit():
    # systemctl prints nothing for a unit it does not know, and `k3s` is not found
    out = "hostname=fresh\nmarker=\nversion=\nservices=\n"
    assert facts.parse_host_state(out, K3S) == {
        "hostname": "fresh",
        "marker": "",
        "machine": "",
        "version": None,
        "services": (),
        "endpoint": None,
        "cert_expires": None,
        "host_aliases": None,
        "registry_addresses": None,
        "registry_running": None,
        "host_keys": (),
    }


def test_host_aliases_are_read_from_sealer_lines_only():
    out = (
        "hostname=m1\naliases=10.0.0.9 db.local  db # sealer: hostAliases;"
        "10.0.0.8 cache # sealer: hostAliases;\n"
    )
    parsed = facts.parse_host_state(out, K3S)
    assert parsed["host_aliases"] == ("10.0.0.9 db.local db", "10.0.0.8 cache")
    assert facts.parse_host_state("hostname=m1\naliases=\n", K3S)["host_aliases"] == ()


def test_host_state_of_empty_output_is_all_unknown():
    assert facts.parse_host_state("", KUBEADM) == {
        "hostname": "",
        "marker": "",
        "machine": "",
        "version": None,
        "services": (),
        "endpoint": None,
        "cert_expires": None,
        "host_aliases": None,
        "registry_addresses": None,
        "registry_running": None,
        "host_keys": (),
    }


def test_a_non_utf8_hostname_arrives_replaced_not_as_an_error():
    raw = b"hostname=n\xffde\nversion=Kubernetes v1.25.3\nservices=active\n"
    parsed = facts.parse_host_state(raw.decode(errors="replace"), KUBEADM)  # as the driver does
    assert parsed["hostname"] == "n\ufffdde" and parsed["version"] == "v1.25.3"
    assert parsed["services"] == ("kubelet",)


def test_only_the_first_line_of_a_key_counts_and_noise_is_ignored():
    out = "motd: welcome\nhostname=a\nhostname=b\nversion=garbage\nservices=failed\n"
    parsed = facts.parse_host_state(out, KUBEADM)
    assert parsed["hostname"] == "a" and parsed["version"] is None and parsed["services"] == ()


def test_commands_quote_the_rootfs_path():
    fact = facts.name_and_marker("/var/lib/sealer/data/my cluster/rootfs")
    assert "'/var/lib/sealer/data/my cluster/rootfs/.sealer-digest'" in fact.command
    state = facts.host_state("/var/lib/sealer/data/my cluster/rootfs", K3S)
    assert "< '/var/lib/sealer/data/my cluster/rootfs/.sealer-digest';" in state.command
    assert "systemctl is-active k3s k3s-agent" in state.command


def test_the_refresh_script_runs_in_bash_and_answers_every_question(tmp_path):
    """Read-only, so it runs here as on a host: every key once, whatever this machine has."""
    import platform
    import subprocess

    rootfs = tmp_path / "data" / "c" / "rootfs"
    rootfs.mkdir(parents=True)
    (rootfs / ".sealer-digest").write_text("sha256:abc configs:1\n")
    done = subprocess.run(
        ["bash", "-c", facts.host_state(str(rootfs), K3S).command], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stderr == ""
    keys = [line.split("=", 1)[0] for line in done.stdout.splitlines()]
    expected = ["hostname", "marker", "machine", "version", "services", "endpoint", "aliases"]
    expected.append("registry")
    assert keys == [*expected, "registry_running", "host_keys"]
    parsed = facts.parse_host_state(done.stdout, K3S)
    assert parsed["marker"] == "sha256:abc configs:1"
    assert parsed["hostname"] == Path("/proc/sys/kernel/hostname").read_text().strip()
    assert parsed["registry_running"] is False
    assert parsed["machine"] == platform.machine()


def test_hostname_is_the_first_line_stripped():
    parse = facts.hostname().parse
    assert parse("node-1\n") == "node-1" and parse("") == "" and parse(" a \nb\n") == "a"


def test_host_state_reads_where_the_endpoint_name_points():
    line = "endpoint=127.0.1.2 apiserver.cluster.local # sealer: control-plane endpoint\n"
    assert facts.parse_host_state("hostname=w\n" + line, K3S)["endpoint"] == "127.0.1.2"
    assert facts.parse_host_state("hostname=w\nendpoint=\n", K3S)["endpoint"] == ""
    noise = "endpoint=10.0.0.9 apiserver.cluster.local\n"  # a line that is not sealer's
    assert facts.parse_host_state("hostname=w\n" + noise, K3S)["endpoint"] == ""


def test_the_api_server_certificate_end_date_is_read_from_openssl():
    assert facts.parse_not_after("notAfter=Nov 28 04:00:00 2027 GMT") == 1827374400.0
    assert facts.parse_not_after("notAfter=Jan  5 09:03:07 2027 GMT") == 1799139787.0
    assert facts.parse_not_after("") is None
    assert facts.parse_not_after("notAfter=garbage") is None


def test_host_state_reads_the_registry_lines_and_process():
    out = (
        "hostname=m1\nregistry=10.0.0.1 sea.hub # sealer: registry;10.0.0.2 sea.hub "
        "# sealer: registry;\nregistry_running=no\n"
    )
    state = facts.parse_host_state(out, K3S)
    assert state["registry_addresses"] == ("10.0.0.1", "10.0.0.2")
    assert state["registry_running"] is False


def test_the_host_key_files_are_read_as_fingerprints(tmp_path):
    """Issue 33: the refresh reads sshd's key files, so a kept connection cannot vouch for a
    key the host no longer has (executors/connections.py SharedRemote.confirm_key)."""
    import subprocess

    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    kind, blob, _ = (tmp_path / "k.pub").read_text().split()
    printed = subprocess.run(
        ["ssh-keygen", "-lf", str(key) + ".pub"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    assert facts.parse_host_keys(f"{kind} {blob};junk;ssh-rsa !!!;") == (printed,)
    assert facts.parse_host_state(f"host_keys={kind} {blob};\n", K3S)["host_keys"] == (printed,)
