"""Where a cluster's state lives: --state PATH, else $SEALER_STATE, else $SEALER_HOME/state/."""

from __future__ import annotations

import os
from pathlib import Path

from cluster.image import sealer_home
from state.local import LocalBackend


def backend_for(cluster: str, state_path: str | None = None) -> LocalBackend:
    path = state_path or os.environ.get("SEALER_STATE")
    return LocalBackend(Path(path) if path else sealer_home() / "state" / f"{cluster}.json")
