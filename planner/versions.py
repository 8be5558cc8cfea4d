"""Which image changes a running cluster may take: same runtime, no downgrade, one minor at most."""

from __future__ import annotations

from cluster.errors import SealerError
from cluster.image import parse_version


class TransitionError(SealerError):
    pass


def check_transition(old: dict | None, new: dict) -> None:
    if old is None:
        return
    if old["runtime"] != new["runtime"]:
        raise TransitionError(
            f"changing the runtime from {old['runtime']} to {new['runtime']} requires "
            f"`sealer destroy` first (a cluster cannot move between distributions in place)"
        )
    check_version_step(old["version"], new["version"])


def check_version_step(old: str, new: str) -> None:
    before, after = parse_version(old), parse_version(new)
    if after < before:
        raise TransitionError(f"downgrading from {old} to {new} is not supported")
    if after[0] != before[0] or after[1] > before[1] + 1:
        raise TransitionError(
            f"upgrading from {old} to {new} skips a minor version; upgrade one minor at a time "
            f"(to v{before[0]}.{before[1] + 1}.x first)"
        )


def is_upgrade(old: str, new: str) -> bool:
    return parse_version(new) > parse_version(old)
