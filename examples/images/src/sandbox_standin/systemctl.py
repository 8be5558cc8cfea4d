"""SANDBOX STAND-IN systemctl: units in /etc/systemd/system started by the tiny service manager."""

import os
import shlex
import sys

from .cmdline import Refused
from .common import fail, read_file
from .services import service_pid, spawn, stop_service

UNIT_DIR = "/etc/systemd/system"

# What `systemctl enable` records (a unit's WantedBy=multi-user.target): the units the host
# starts when it boots (the sandbox host's init reads it, as systemd does).
WANTS_DIR = f"{UNIT_DIR}/multi-user.target.wants"


def unit_command(name):
    text = read_file(os.path.join(UNIT_DIR, f"{name}.service"))
    if text is None:
        fail(f"Unit {name}.service not found.", 5)
    for line in text.splitlines():
        if line.startswith("ExecStart="):
            return shlex.split(line[len("ExecStart=") :])
    fail(f"Unit {name}.service has no ExecStart")


def start_unit(name):
    if service_pid(name) is None:
        spawn(name, unit_command(name))


def enable_unit(name):
    if not os.path.exists(f"{UNIT_DIR}/{name}.service"):
        fail(f"Failed to enable unit: Unit file {name}.service does not exist.")
    with open(f"{UNIT_DIR}/{name}.service") as f:
        if "WantedBy=multi-user.target" not in f.read().splitlines():
            print(  # systemd's own warning: nothing is enabled
                f"The unit files have no installation config (WantedBy=, ...) for {name}.service",
                file=sys.stderr,
            )
            return
    os.makedirs(WANTS_DIR, exist_ok=True)
    link = f"{WANTS_DIR}/{name}.service"
    if not os.path.islink(link):
        os.symlink(f"{UNIT_DIR}/{name}.service", link)
        print(f"Created symlink {link} \u2192 {UNIT_DIR}/{name}.service.", file=sys.stderr)


def disable_unit(name):
    link = f"{WANTS_DIR}/{name}.service"
    if os.path.islink(link):
        os.unlink(link)
        print(f"Removed {link}.", file=sys.stderr)


def tool_systemctl(version, argv):
    if argv == ["daemon-reload"]:
        return
    if len(argv) >= 2 and argv[0] == "is-active":  # one line per unit, as systemctl prints
        states = [
            "active" if service_pid(u.removesuffix(".service")) else "inactive" for u in argv[1:]
        ]
        print("\n".join(states))
        sys.exit(0 if "active" in states else 3)
    if len(argv) == 2 and argv[0] in ("enable", "disable"):
        unit = argv[1].removesuffix(".service")
        enable_unit(unit) if argv[0] == "enable" else disable_unit(unit)
        return
    if len(argv) == 2 and argv[0] in ("start", "restart", "stop", "is-active"):
        verb, unit = argv[0], argv[1].removesuffix(".service")
        if verb == "is-active":
            active = service_pid(unit) is not None
            print("active" if active else "inactive")
            sys.exit(0 if active else 3)
        if verb in ("stop", "restart"):
            stop_service(unit)
        if verb in ("start", "restart"):
            start_unit(unit)
        return
    if len(argv) == 3 and argv[0] in ("enable", "disable") and argv[1] == "--now":
        unit = argv[2].removesuffix(".service")
        if argv[0] == "disable":
            disable_unit(unit)
            stop_service(unit)
        else:
            enable_unit(unit)
            start_unit(unit)
        return
    raise Refused
