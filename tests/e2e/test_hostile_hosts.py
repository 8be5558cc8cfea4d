"""Issue 13, class 2, on real hosts: a host that names itself with shell characters gets no
command run on the bootstrap master; it is refused with a one-line reason."""

from __future__ import annotations

from sandbox import hosts as sandbox
from sandbox.init import sshd_command
from tests.e2e.conftest import NEW, Cluster, host, ip, ssh, ssh_driver


def test_a_hostname_with_shell_characters_is_refused_and_runs_nothing(hosts, tmp_path):
    cluster = Cluster(tmp_path, "k3s")
    cluster.write([1], [2], worker_extra={"labels": {"pool": "a"}})
    evil = "w2;touch${IFS}/tmp/pwned-by-w2"
    # the worker's root renames it (the `hostname` tool would refuse; the kernel does not)
    ssh(2, f"python3 -c 'import socket, sys; socket.sethostname(sys.argv[1])' '{evil}'")
    assert ssh(2, "hostname").stdout.strip() == evil
    result = cluster.apply(expect=1)
    output = result.stdout + result.stderr
    assert f"{ip(2)}: its hostname {evil!r} is not a valid node name" in output
    assert ssh(1, "test -e /tmp/pwned-by-w2", check=False).returncode == 1  # nothing ran
    assert ip(2) not in cluster.state()["hosts"]  # the join is not recorded
    assert ip(1) in cluster.state()["hosts"]  # the rest of the apply went on


def test_a_host_whose_key_changed_never_receives_the_password(hosts, tmp_path):
    """The key is checked before authentication, by apply and by every refresh."""
    password = "Pw-3c1d-MUST-NOT-BE-OFFERED"
    cluster = Cluster(tmp_path, "k3s")
    cluster.write([1], [2])
    cluster.apply()  # host 2's key is pinned in the state
    sandbox.regenerate_host_key(host(2))  # a reinstalled host, or a man in the middle
    # a second OpenSSH server on host 2 that logs every authentication method offered to it
    log = "/tmp/sshd-2222.log"
    sandbox.run_in(
        host(2),
        [
            *sshd_command(ip(2)),
            "-p",
            "2222",
            "-E",
            log,
            "-o",
            "LogLevel=DEBUG1",
            "-o",
            "PasswordAuthentication=yes",
        ],
    )
    extra = {"ssh": {"port": "2222", "passwd": password, "pk": ""}}
    cluster.write([1], [2], NEW, worker_extra=extra)  # an upgrade: work on host 2 itself
    drift = cluster.sealer("drift", "--json")
    assert drift.returncode == 2
    assert '"kind": "host_key_changed"' in drift.stdout
    plan = cluster.sealer("plan")
    apply = cluster.sealer("apply", "--auto-approve")
    assert apply.returncode == 1 and "host key changed" in apply.stdout + apply.stderr
    seen = sandbox.run_in(host(2), ["cat", log]).stdout
    assert "Connection from" in seen  # sealer did connect to it
    assert "method password" not in seen and "Failed password" not in seen
    for result in (drift, plan, apply):
        assert password not in result.stdout + result.stderr


def test_env_values_reach_the_command_but_no_command_line(hosts):
    secret = "Env-9e4f-NOT-IN-PS"
    driver = ssh_driver(1)
    try:
        out = (
            driver.host(ip(1))
            .run(
                "echo value=$DB_PASSWORD; read -r line; echo stdin=$line; "
                "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '",
                env={"DB_PASSWORD": secret, "OTHER": 'it\'s "quoted" $x'},
                stdin=b"the command's own input\n",
            )
            .stdout
        )
    finally:
        driver.close()
    assert f"value={secret}" in out and "stdin=the command's own input" in out
    listed = out.split("stdin=", 1)[1]
    assert secret not in listed.split("\n", 1)[1]  # in no process's command line
