"""Where sealer keeps its files: $SEALER_HOME, else ~/.sealer."""

from __future__ import annotations

import os
from pathlib import Path


def sealer_home() -> Path:
    return Path(os.environ.get("SEALER_HOME") or Path.home() / ".sealer")
