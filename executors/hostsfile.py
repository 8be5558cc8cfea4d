"""Lines sealer owns in a host's hosts file, each ending with a mark naming what it is for
(the control-plane endpoint, spec.hostAliases). Other lines are never touched. The file is
rewritten in place under flock: a container's hosts file is a bind mount a rename would not
replace."""

from __future__ import annotations

import shlex

HOSTS = "/etc/hosts"


def set_lines_command(mark: str, lines: list[str]) -> str:
    """Make the lines marked `mark` exactly these (none: remove them)."""
    return set_marked_lines_command({mark: lines})


def set_marked_lines_command(lines_by_mark: dict[str, list[str]]) -> str:
    """The same for several marks in one edit (one round trip, one lock)."""
    marked = [f"{line} {mark}" for mark, lines in lines_by_mark.items() for line in lines]
    appends = "".join(f" && printf '%s\\n' {shlex.quote(m)} >> \"$tmp\"" for m in marked)
    patterns = " ".join(f"-e {shlex.quote(mark)}" for mark in lines_by_mark)
    script = (
        f"test -f {HOSTS} || touch {HOSTS}; tmp=$(mktemp) && "
        f'{{ grep -vF {patterns} {HOSTS} || true; }} > "$tmp"{appends} && '
        f'cat "$tmp" > {HOSTS}; status=$?; rm -f "$tmp"; exit $status'
    )
    return f"flock {HOSTS} bash -c {shlex.quote(script)}"


def read_command(mark: str) -> str:
    return f"grep -F {shlex.quote(mark)} {HOSTS} || true"


def parse_lines(text: str, mark: str) -> list[str]:
    """The marked lines, without the mark, whitespace normalised."""
    return [" ".join(line.replace(mark, "").split()) for line in text.splitlines() if mark in line]
