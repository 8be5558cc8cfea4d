"""Every program the project runs on the operator's side is installed by scripts/setup or is
on every fresh machine of this kind (scripts/fresh-check's base root): a passing CI on a
machine set up by hand once must not hide a missing install step (issue 29)."""

from __future__ import annotations

import re

from tests import programs

# Debian's Essential packages: on every Debian root, mmdebstrap's included.
ESSENTIAL = {
    "base-files", "bash", "bsdutils", "coreutils", "dash", "debianutils", "diffutils", "dpkg",
    "findutils", "grep", "gzip", "hostname", "login", "sed", "tar", "util-linux",
}  # fmt: skip
APT = "apt"  # mmdebstrap's `--variant=apt` root has apt besides the Essential packages

# program -> (how it gets onto a fresh machine, the Debian package or a reason)
#   essential / base: already there (ESSENTIAL, or the fresh root's own package list)
#   setup: scripts/setup installs the package when the program is missing
#   optional: the code works without it, and says what it misses
#   project: scripts/setup installs it from this repository
#   fresh-check: scripts/fresh-check installs it before using it (it runs before setup)
PROVIDERS = {
    "bash": ("essential", "bash"),
    "sh": ("essential", "dash"),
    "cat": ("essential", "coreutils"),
    "cp": ("essential", "coreutils"),
    "cut": ("essential", "coreutils"),
    "env": ("essential", "coreutils"),
    "mv": ("essential", "coreutils"),
    "rmdir": ("essential", "coreutils"),
    "sha256sum": ("essential", "coreutils"),
    "grep": ("essential", "grep"),
    "sed": ("essential", "sed"),
    "install": ("essential", "coreutils"),
    "ls": ("essential", "coreutils"),
    "mkdir": ("essential", "coreutils"),
    "mktemp": ("essential", "coreutils"),
    "rm": ("essential", "coreutils"),
    "sleep": ("essential", "coreutils"),
    "tar": ("essential", "tar"),
    "hostname": ("essential", "hostname"),
    "dpkg-deb": ("essential", "dpkg"),
    "flock": ("essential", "util-linux"),
    "nsenter": ("essential", "util-linux"),
    "pivot_root": ("essential", "util-linux"),
    "runuser": ("essential", "util-linux"),
    "setpriv": ("essential", "util-linux"),
    "unshare": ("essential", "util-linux"),
    "apt-get": ("base", "apt"),
    "mount": ("base", "mount"),
    "umount": ("base", "mount"),
    "ip": ("base", "iproute2"),
    "ss": ("base", "iproute2"),
    "tc": ("base", "iproute2"),
    "python3": ("base", "python3"),
    "git": ("base", "git"),
    "sshd": ("setup", "openssh-server"),
    "ssh": ("setup", "openssh-client"),
    "ssh-keygen": ("setup", "openssh-client"),
    "scp": ("setup", "openssh-client"),
    "ssh-agent": ("setup", "openssh-client"),
    "ssh-add": ("setup", "openssh-client"),
    "ssh-keyscan": ("setup", "openssh-client"),
    "skopeo": ("setup", "skopeo"),
    "umoci": ("setup", "umoci"),  # tests: an independent OCI tool unpacks what sealer pushes
    "postgres": ("setup", "postgresql"),
    "psql": ("setup", "postgresql"),  # postgresql depends on postgresql-client
    "openssl": ("setup", "openssl"),
    "time": ("setup", "time"),
    "sudo": ("setup", "sudo"),  # on sandbox hosts: tests/e2e/test_sudo_user.py
    "mmdebstrap": ("fresh-check", "mmdebstrap"),  # scripts/fresh-check installs it itself
    "helm": ("optional", "sealer build warns without it: list a chart's images in imageList"),
    # sandbox/init.py, inside a host that boots again: the host's own systemctl (a
    # ClusterImage's init.sh installs it); a host without one starts nothing
    "systemctl": ("optional", "a sandbox host's own, from the image it was given"),
    "sealer": ("project", "pip install -e . into .venv"),
    # the stand-in kubelet's, on sandbox hosts: the kubernetes images carry it in bin/
    "ctr": ("vendored", "containerd"),
}


def base_packages() -> set[str]:
    """The fresh root's packages, as scripts/fresh-check makes it."""
    text = (programs.ROOT / "scripts/fresh-check").read_text()
    listed = re.search(r'^BASE_PACKAGES="([^"]+)"', text, re.M)
    assert listed, "scripts/fresh-check names its packages in BASE_PACKAGES"
    return set(listed.group(1).split()) | {APT}


def setup_packages() -> set[str]:
    """The packages scripts/setup installs when a program of theirs is missing."""
    text = (programs.ROOT / "scripts/setup").read_text()
    return set(re.findall(r"missing\+=\(([\w.+-]+)\)", text))


def vendored_packages() -> set[str]:
    """The Debian packages scripts/setup downloads and unpacks for the sandbox images."""
    text = (programs.ROOT / "scripts/setup").read_text()
    return {
        p for line in re.findall(r"apt-get download -qq ([\w .+-]+)", text) for p in line.split()
    }


def test_every_program_run_is_provided_for():
    found = programs.python_programs()
    for program, where in programs.shell_programs(programs.scripts()).items():
        found.setdefault(program, []).extend(where)
    unknown = {p: w[:3] for p, w in found.items() if p not in PROVIDERS}
    assert not unknown, (
        f"programs run without an install step: {unknown}; install each in scripts/setup "
        "(or say in PROVIDERS why a fresh machine has it)"
    )


def test_each_provider_is_real():
    base, installed = base_packages(), setup_packages()
    fresh_check = (programs.ROOT / "scripts/fresh-check").read_text()
    missing = []
    for program, (how, package) in PROVIDERS.items():
        if how == "essential" and package not in ESSENTIAL:
            missing.append(f"{program}: {package} is not Essential")
        elif how == "base" and package not in base:
            missing.append(f"{program}: {package} is not in the fresh root")
        elif how == "setup" and package not in installed:
            missing.append(f"{program}: scripts/setup does not install {package}")
        elif how == "fresh-check" and f"install -y -qq {package}" not in fresh_check:
            missing.append(f"{program}: scripts/fresh-check does not install {package}")
        elif how == "vendored" and package not in vendored_packages():
            missing.append(f"{program}: scripts/setup does not unpack {package}")
    assert not missing, missing


def test_the_scanner_sees_what_it_must():
    """The audit is only as good as the scan: programs known to be run are found."""
    found = programs.python_programs()
    for program in ("skopeo", "sshd", "ssh-keygen", "unshare", "openssl", "helm"):
        assert program in found, program
    shell = programs.shell_programs(programs.scripts())
    assert "ssh" in shell and "dpkg-deb" in shell
    assert "openssh-server" not in shell  # a package name in missing+=(...), not a command
