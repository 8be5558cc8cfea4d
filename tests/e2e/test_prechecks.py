"""End-to-end: `sealer check` and every plan read the hosts about to join and refuse the ones
that could not hold a node (issue 32). Each condition is made on purpose on real sandbox hosts:
a taken port, two hosts with one hostname, a foreign runtime, a small disk are real; swap,
memory and the clock are faked inside the host (`sealer sandbox fake`, said plainly)."""

from __future__ import annotations

from sandbox import hosts as sandbox
from tests.e2e.conftest import Cluster, host, ip
from tests.helpers import sealer


def _in(n: int, script: str) -> None:
    sandbox.run_in(host(n), ["sh", "-ec", script])


def test_each_host_check_blocks_the_plan_with_its_line_until_skipped(hosts, tmp_path):
    cluster = Cluster(tmp_path, "kubernetes", name="checked")
    cluster.write([1], [2, 3])
    check = cluster.sealer("check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "Checked 3 host(s)" in check.stdout

    # real conditions
    _in(2, "nohup python3 -m http.server 10250 --bind 0.0.0.0 >/dev/null 2>&1 & "
           "for i in $(seq 50); do ss -ltn | grep -q ':10250 ' && break; sleep 0.1; done")  # fmt: skip
    _in(3, "hostname SANDBOX-2")  # case aside, sandbox-2's name
    _in(3, "mkdir -p /usr/local/bin && printf '#!/bin/sh\\n' > /usr/local/bin/containerd && "
           "chmod 755 /usr/local/bin/containerd")  # fmt: skip
    _in(3, "mkdir -p /var/lib/sealer && mount -t tmpfs -o size=256k tmpfs /var/lib/sealer")
    # faked inside the host: swap, memory, the clock
    faked = sealer(
        "sandbox", "fake", "sandbox-1", "--swap", "1G", "--memory", "1G", "--clock", "90"
    )
    assert faked.returncode == 0, faked.stderr

    expected = [
        f"{ip(1)}: swap: found 1.0 GiB of swap on, want none",
        f"{ip(1)}: clock: found ",  # about 90 s (whole seconds on the host's side)
        " s ahead of this machine, want within 5 s",
        f"{ip(1)}: memory: found 1.0 GiB, want at least 1.7 GiB on a master",
        f"{ip(2)}: ports: found 10250 in use, want 10250 free for the node",
        f"{ip(2)}: hostname: found 'sandbox-2', also the name of {ip(3)}",
        f"{ip(3)}: hostname: found 'SANDBOX-2', also the name of {ip(2)}",
        f"{ip(3)}: runtime: found /usr/local/bin/containerd installed",
        f"{ip(3)}: disk: found 0 MiB free under /var/lib/sealer/data, want at least",
    ]
    for command in (("check",), ("plan",), ("apply", "--auto-approve")):
        refused = cluster.sealer(*command)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        for line in expected:
            assert line in refused.stderr, (line, refused.stderr)
        assert "8 host check(s) failed" in refused.stderr
    assert not cluster.state_path().exists()  # the refused apply touched nothing

    names = ("swap", "clock", "memory", "ports", "hostname", "runtime", "disk")
    skips = [arg for name in names for arg in ("--skip-check", name)]
    plan = cluster.sealer("plan", "--detailed-exitcode", *skips)
    assert plan.returncode == 2, plan.stdout + plan.stderr  # changes, no error
    assert f"{ip(3)}: runtime: found /usr/local/bin/containerd installed" in plan.stderr
    assert "(let through: --skip-check runtime)" in plan.stderr
    one_left = cluster.sealer("plan", *skips[:-2])
    assert one_left.returncode == 1 and "1 host check(s) failed" in one_left.stderr
    unknown = cluster.sealer("plan", "--skip-check", "sawp")
    assert unknown.returncode == 1
    assert "--skip-check sawp: no such check" in unknown.stderr

    # the fakes go away with --reset, and those checks pass again
    sealer("sandbox", "fake", "sandbox-1", "--reset")
    again = cluster.sealer("check", *skips[6:])
    assert again.returncode == 0, again.stdout + again.stderr


def test_a_running_node_is_checked_for_what_changes_its_system(hosts, tmp_path):
    from tests.e2e.conftest import NEW

    cluster = Cluster(tmp_path, "k3s", name="running")
    cluster.write([1], [2])
    cluster.apply()
    faked = sealer("sandbox", "fake", "sandbox-2", "--clock", "-120", "--memory", "512M")
    assert faked.returncode == 0, faked.stderr
    # a label needs nothing of the host's system: no check, no block
    cluster.write([1], [2], worker_extra={"labels": {"tier": "web"}})
    relabel = cluster.sealer("plan", "--detailed-exitcode")
    assert relabel.returncode == 2, relabel.stdout + relabel.stderr
    # an upgrade replaces what runs there: the refresh's own answer says the clock is off
    # (and a running node's memory is not held against it)
    cluster.write([1], [2], version=NEW)
    upgrade = cluster.sealer("plan")
    assert upgrade.returncode == 1, upgrade.stdout + upgrade.stderr
    assert (
        f"{ip(2)}: clock: found " in upgrade.stderr and " s behind this machine" in upgrade.stderr
    )
    assert "memory" not in upgrade.stderr and "1 host check(s) failed" in upgrade.stderr
    assert cluster.sealer("plan", "--skip-check", "clock").returncode == 0


def test_a_joining_host_that_does_not_answer_is_named_and_its_join_planned(hosts, tmp_path):
    """A host about to join that cannot be read is a warning naming it, not an error: a new
    cluster is planned before its hosts exist, and an apply joins the others (that host's join
    fails on its own). A recorded node that cannot be read stops the plan instead."""
    cluster = Cluster(tmp_path, "k3s", name="unreached")
    cluster.write([1], [2, 3])
    sandbox.stop_sshd(host(3))
    plan = cluster.sealer("plan", "--detailed-exitcode")
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert f"Warning: {ip(3)}: reach: found no answer (" in plan.stderr
    assert f'join_worker "{ip(3)}"' in plan.stdout
