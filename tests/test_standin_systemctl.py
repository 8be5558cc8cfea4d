"""The sandbox systemctl's sh fast path (`enable --now`, `start`), run for real in a mount
namespace whose /etc/systemd/system, /run and /var/log are fresh tmpfs: the service it starts
must be what the stand-in's start_unit (src/sandbox_standin/systemctl.py) makes (own session,
pid file, logged command), and must not keep a caller's descriptors, such as the lock of sealer's `flock` steps."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SYSTEMCTL = ROOT / "examples" / "images" / "k3s-v1.25.3" / "bin" / "systemctl"

SCRIPT = r"""
set -e
for dir in /etc/systemd/system /run /var/log; do mount -t tmpfs sandbox-test "$dir"; done
printf '[Service]\nExecStart=%s\n' "$EXEC_START" > /etc/systemd/system/demo.service
flock "$LOCK" "$SYSTEMCTL" "$@"
pid=$(cat /run/sandbox-systemd/demo.pid)
echo "pid $pid"
echo "session $(ps -o sid= -p "$pid")"
echo "fds $(ls /proc/"$pid"/fd | tr '\n' ' ')"
flock -n "$LOCK" echo "lock free"
echo "state $("$SYSTEMCTL" is-active demo)"
"$SYSTEMCTL" "$@"
echo "again $(cat /run/sandbox-systemd/demo.pid)"
echo "log $(tail -n 2 /var/log/sandbox-standin/commands.log | head -n 1)"
kill "$pid"
"""


def start(tmp_path: Path, exec_start: str, *argv: str) -> dict[str, str]:
    if not SYSTEMCTL.exists() or not shutil.which("unshare"):
        pytest.fail("the sandbox images are not built (scripts/setup) or unshare is missing")
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", SCRIPT, "sh", *argv],
        env={
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "EXEC_START": exec_start,
            "LOCK": str(tmp_path / "step.lock"),
            "SYSTEMCTL": str(SYSTEMCTL),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return dict(
        line.split(" ", 1) if " " in line else (line, "") for line in done.stdout.splitlines()
    )


@pytest.mark.parametrize("argv", [("enable", "--now", "demo"), ("start", "demo.service")])
def test_a_started_service_runs_alone_and_keeps_no_lock_of_the_caller(tmp_path, argv):
    said = start(tmp_path, "/bin/sleep 300", *argv)
    assert said["session"].strip() == said["pid"]  # a session of its own, as systemd's
    assert said["fds"].split() == ["0", "1", "2"]  # the caller's flock lock (3) not kept
    assert "free" in said["lock"]
    assert said["state"] == "active"
    assert said["again"] == said["pid"]  # running: not started twice
    logged = json.loads(said["log"])
    assert logged["argv"] == ["systemctl", *argv] and logged["read_only"] is False


def test_a_unit_whose_command_line_needs_quoting_is_started_by_the_python_stand_in(tmp_path):
    said = start(tmp_path, "/bin/sh -c 'exec sleep 300'", "enable", "--now", "demo")
    assert said["session"].strip() == said["pid"]
    assert said["fds"].split() == ["0", "1", "2"]
    assert "free" in said["lock"]
    assert json.loads(said["log"])["argv"] == ["systemctl", "enable", "--now", "demo"]


ENABLE = r"""
set -e
for dir in /etc/systemd/system /run /var/log; do mount -t tmpfs sandbox-test "$dir"; done
printf '[Service]\nExecStart=%s\n%s' "$EXEC_START" "$INSTALL" > /etc/systemd/system/demo.service
"$SYSTEMCTL" "$@"
echo "link $(readlink /etc/systemd/system/multi-user.target.wants/demo.service || true)"
echo "state $("$SYSTEMCTL" is-active demo || true)"
"$SYSTEMCTL" disable --now demo
echo "after $(ls /etc/systemd/system/multi-user.target.wants/ | tr '\n' ' ')"
"""


WANTED = "[Install]\nWantedBy=multi-user.target\n"


def run_enable_script(argv, exec_start, install):
    """ENABLE for a demo unit with this ExecStart and [Install] section: (stderr, what it said)."""
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", ENABLE, "sh", *argv],
        env={
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "EXEC_START": exec_start,
            "INSTALL": install,
            "SYSTEMCTL": str(SYSTEMCTL),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr, dict(line.split(" ", 1) for line in done.stdout.splitlines())


@pytest.mark.parametrize(
    "exec_start", ["/bin/sleep 300", "/bin/sh -c 'exec sleep 300'"], ids=["sh", "python"]
)
@pytest.mark.parametrize("argv", [("enable", "demo"), ("enable", "--now", "demo")])
@pytest.mark.parametrize("wanted", [True, False], ids=["wanted", "no-install-section"])
def test_enable_links_a_wanted_unit_for_the_next_boot_and_disable_removes_it(
    exec_start, argv, wanted
):
    """As systemd: `enable` links a unit with WantedBy=multi-user.target (what a sandbox host
    starts when it boots again), warns about one without [Install], and starts only with --now."""
    stderr, said = run_enable_script(argv, exec_start, WANTED if wanted else "")
    expected = "/etc/systemd/system/demo.service" if wanted else ""
    assert said["link"].strip() == expected
    assert said["state"] == ("active" if "--now" in argv else "inactive")
    assert said["after"].strip() == ""
    assert ("no installation config" in stderr) is not wanted


def test_start_runs_a_wanted_unit_without_enabling_it():
    """`start` is not `enable`: the unit runs now and is not linked for the next boot."""
    _, said = run_enable_script(("start", "demo"), "/bin/sleep 300", WANTED)
    assert said["link"].strip() == ""
    assert said["state"] == "active"
