"""Lines sealer owns in a host's hosts file, each ending with a mark naming what it is for
(the control-plane endpoint, spec.hostAliases). Other lines are never touched. The file is
rewritten in place under flock: a container's hosts file is a bind mount a rename would not
replace."""

from __future__ import annotations

import shlex

HOSTS = "/etc/hosts"


def set_lines_command(mark: str, lines: list[str]) -> str:
    """Make the lines marked `mark` exactly these (none: remove them)."""
    marked = [f"{line} {mark}" for line in lines]
    appends = "".join(f" && printf '%s\\n' {shlex.quote(m)} >> \"$tmp\"" for m in marked)
    script = (
        f"test -f {HOSTS} || touch {HOSTS}; tmp=$(mktemp) && "
        f'{{ grep -vF {shlex.quote(mark)} {HOSTS} || true; }} > "$tmp"{appends} && '
        f'cat "$tmp" > {HOSTS}; status=$?; rm -f "$tmp"; exit $status'
    )
    return f"flock {HOSTS} bash -c {shlex.quote(script)}"


def read_command(mark: str) -> str:
    return f"grep -F {shlex.quote(mark)} {HOSTS} || true"


def parse_lines(text: str, mark: str) -> list[str]:
    """The marked lines, without the mark, whitespace normalised."""
    return [" ".join(line.replace(mark, "").split()) for line in text.splitlines() if mark in line]
