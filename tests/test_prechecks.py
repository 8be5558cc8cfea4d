"""The host checks' parser and judge (executors/prechecks.py, planner/prechecks.py), on
recorded answers: each check fires on its condition and only there."""

from __future__ import annotations

from executors import facts
from executors import prechecks as probes
from planner import prechecks

ANSWER = """hostname=node-a
pc_swap_kb=0
pc_listening= 00000000:0016 0100007F:1A0B 0200A8C0:0CEA 00000000000000000000000000000000:01BB
pc_mem_kb=4000000
pc_clock=1000
pc_disk_free_kb=10000000
pc_ip_forward=1
pc_br_netfilter=loaded
pc_runtimes=
"""


def _facts(**changes) -> dict:
    text = ANSWER
    for key, value in changes.items():
        text = "\n".join(
            f"pc_{key}={value}" if line.startswith(f"pc_{key}=") else line
            for line in text.splitlines()
        )
    return probes.parse(facts.key_values(text), read_at=1000.0)


def _subject(
    ip="10.0.0.2", master=True, joining=True, hostname="node-a", **facts
) -> prechecks.Subject:
    return prechecks.Subject(ip, master, joining, False, hostname, "", _facts(**facts))


CONTEXT = prechecks.Context("kubernetes", 5000, 100 << 20, "/var/lib/sealer/data", {})


def _lines(*subjects, context=CONTEXT) -> list[str]:
    return [p.line for p in prechecks.evaluate(list(subjects), context)]


def test_the_probe_answer_parses_into_numbers_ports_and_programs():
    facts = _facts(runtimes=" /usr/bin/containerd /usr/bin/kubelet")
    # as /proc/net/tcp and tcp6 have them: little-endian words, hex ports
    assert facts["listening"] == [
        ("0.0.0.0", 22),
        ("127.0.0.1", 6667),
        ("192.168.0.2", 3306),
        ("::", 443),
    ]
    assert facts["mem_kb"] == 4000000 and facts["clock_skew"] == 0
    assert facts["runtimes"] == ["/usr/bin/containerd", "/usr/bin/kubelet"]
    garbage = probes.parse({"pc_listening": "zz 00000000:0050 0A:10", "pc_mem_kb": "lots"}, 0.0)
    assert garbage["listening"] == [("0.0.0.0", 80)] and garbage["mem_kb"] is None


def test_a_healthy_host_has_no_problem():
    assert _lines(_subject()) == []


def test_each_condition_gives_its_line():
    assert _lines(_subject(swap_kb="1048576")) == [
        "10.0.0.2: swap: found 1.0 GiB of swap on, want none (the kubelet refuses swap)"
    ]
    assert _lines(_subject(listening=" 00000000:18EB 00000000:2A8A")) == []  # not ours
    # another address's listener (a shared network's other host) is not in the way
    assert _lines(_subject(listening=" 0501007F:192B")) == []
    taken = _lines(_subject(listening=" 0200000A:192B 00000000:2802"))  # 6443 on its address
    assert taken == [
        "10.0.0.2: ports: found 6443 in use, want 2379, 2380, 6443, 10250, 10257, 10259 free "
        "for the master"
    ]
    assert "clock: found 60 s ahead" in _lines(_subject(clock="1060"))[0]
    assert "clock" not in " ".join(_lines(_subject(clock="1004")))
    assert _lines(_subject(mem_kb="1000000")) == [
        "10.0.0.2: memory: found 977 MiB, want at least 1.7 GiB on a master"
    ]
    assert _lines(_subject(master=False, mem_kb="1000000")) == []  # a worker: no minimum
    assert (
        "disk: found 98 MiB free under /var/lib/sealer/data, want at least 200 MiB"
        in (_lines(_subject(disk_free_kb="100000"))[0])
    )
    assert (
        "runtime: found /usr/bin/containerd installed"
        in (_lines(_subject(runtimes=" /usr/bin/containerd"))[0])
    )
    assert "br_netfilter" in _lines(_subject(br_netfilter="absent"))[0]
    assert _lines(_subject(br_netfilter="available")) == []  # sealer's init loads it


def test_hostnames_clash_case_insensitively_with_checked_and_recorded_hosts():
    context = prechecks.Context("k3s", 0, 0, "/d", {"10.0.0.9": "Node-B"})
    lines = _lines(_subject("10.0.0.2", hostname="node-a"), _subject("10.0.0.3", hostname="NODE-A"),
                   _subject("10.0.0.4", hostname="node-b"), context=context)  # fmt: skip
    assert [line.split(": ")[0] for line in lines] == ["10.0.0.2", "10.0.0.3", "10.0.0.4"]
    assert "also the name of 10.0.0.3" in lines[0] and "also the name of 10.0.0.9" in lines[2]


def test_a_running_node_is_not_held_to_a_joining_hosts_checks():
    running = _subject(joining=False, listening=" 00000000:192B", runtimes=" /usr/bin/k3s",
                       ip_forward="0")  # fmt: skip
    lines = _lines(running)
    assert lines == [
        "10.0.0.2: ip_forward: found net.ipv4.ip_forward = 0, want 1 (pods need forwarding; "
        "something turned it off)"
    ]
    # a host holding sealer's rootfs (an apply killed before the state recorded the join)
    # has sealer's own runtime and listeners
    retried = prechecks.Subject("10.0.0.2", True, True, False, "n", "sha256:x",
                                _facts(runtimes=" /usr/local/bin/k3s",
                                       listening=" 00000000:094B"))  # fmt: skip
    assert _lines(retried) == []


def test_errors_block_unless_skipped_and_warnings_never_do():
    problems = prechecks.evaluate([_subject(swap_kb="8", mem_kb="1")], CONTEXT)
    assert {p.check for p in prechecks.blocking(problems, frozenset())} == {"swap", "memory"}
    assert prechecks.blocking(problems, frozenset({"swap", "memory"})) == []
    said = prechecks.said(problems, frozenset({"swap"}))
    assert said == [problems[0].line + " (let through: --skip-check swap)"]
    k3s = prechecks.Context("k3s", 0, 0, "/d", {})  # k3s runs with swap: a warning
    assert prechecks.blocking(prechecks.evaluate([_subject(swap_kb="8")], k3s), frozenset()) == []
    assert prechecks.unknown_checks(("swap", "nope")) == ["nope"]
