"""Where a cluster's state lives.

--backend URL (or $SEALER_BACKEND) selects a shared PostgreSQL backend; otherwise the state is
a local file: --state PATH, else $SEALER_STATE, else $SEALER_HOME/state/<cluster>.json.
"""

from __future__ import annotations

import os
from pathlib import Path

from cluster.image import sealer_home
from state.local import LocalBackend, StateError


def backend_for(cluster: str, state_path: str | None = None, backend_url: str | None = None):
    if state_path and backend_url:
        raise StateError("--state and --backend both name a state; give one of them")
    if not state_path and not backend_url:
        backend_url = os.environ.get("SEALER_BACKEND") or None
        state_path = os.environ.get("SEALER_STATE") or None
        if backend_url and state_path:
            raise StateError("SEALER_BACKEND and SEALER_STATE are both set; unset one of them")
    if backend_url:
        from state.postgres import PostgresBackend, is_postgres_url

        if not is_postgres_url(backend_url):
            raise StateError(
                f"backend {backend_url!r}: unsupported; give a postgres://USER@HOST:PORT/DB URL "
                f"(or --state PATH for a local file)"
            )
        return PostgresBackend(backend_url, cluster)
    path = Path(state_path) if state_path else sealer_home() / "state" / f"{cluster}.json"
    return LocalBackend(path)
