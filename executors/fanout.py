"""How many hosts to talk to at once: sized from the host count and the open-file limit.

Each host in flight holds a few files: its SSH socket, an ssh child's three pipes, a copy's
tarball. A fixed width either wastes a large fleet's time or, past `ulimit -n`, fails with
"Too many open files"; so the width is what the limit allows, within a ceiling.
"""

from __future__ import annotations

import resource

FILES_PER_HOST = 8  # a socket, an ssh child's pipes, a file being sent, and a margin
RESERVED_FILES = 64  # the process's own: state, logs, the image, Python's modules
CEILING = 200  # past this, threads on two cores only wait on one another


def fan_out(hosts: int, wanted: int) -> int:
    """Hosts in flight: wanted, but no more than there are hosts or the file limit allows."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        by_files = CEILING
    else:
        by_files = max(1, (soft - RESERVED_FILES) // FILES_PER_HOST)
    return max(1, min(wanted, hosts, by_files, CEILING))
