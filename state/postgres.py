"""The PostgreSQL state backend: one shared state and one lock for a team.

- One row per cluster in `sealer.states` (lineage, serial, document as jsonb); the journal of
  finished actions in `sealer.journal`; the last KEEP_VERSIONS documents in `sealer.versions`.
- The lock is a session-level advisory lock: PostgreSQL drops it when the holder's connection
  ends, so a killed run frees it at once. Who holds it is in `sealer.locks`, keyed by the
  holder's backend pid, so a row left by a dead holder is never shown as the holder.
- The schema is created on first use and versioned in `sealer.schema_version`.
- Passwords come from libpq (PGPASSWORD, ~/.pgpass, PGSERVICEFILE); a URL carrying one is
  refused, so it never sits in shell history, `ps` or a log line.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import time

from state.common import BackendBase, LockError, StateError, lock_held_message, lock_info, parse
from state.document import apply_patch, new_document

SCHEMA_VERSION = 1
KEEP_VERSIONS = 10

# Taken (per transaction) while creating or migrating the schema, so two first users cannot race.
_SCHEMA_LOCK_KEY = 0x5EA1E7_0000_0001

_MIGRATIONS = {
    1: [
        """CREATE TABLE sealer.states (
             cluster text PRIMARY KEY,
             lineage text NOT NULL,
             serial integer NOT NULL,
             document jsonb NOT NULL,
             updated_at timestamptz NOT NULL DEFAULT now())""",
        """CREATE TABLE sealer.journal (
             id bigserial PRIMARY KEY,
             cluster text NOT NULL,
             lineage text NOT NULL,
             serial integer NOT NULL,
             patch jsonb NOT NULL,
             recorded_at timestamptz NOT NULL DEFAULT now())""",
        "CREATE INDEX journal_by_cluster ON sealer.journal (cluster, id)",
        """CREATE TABLE sealer.versions (
             cluster text NOT NULL,
             lineage text NOT NULL,
             serial integer NOT NULL,
             document jsonb NOT NULL,
             saved_at timestamptz NOT NULL DEFAULT now(),
             PRIMARY KEY (cluster, lineage, serial))""",
        """CREATE TABLE sealer.locks (
             cluster text PRIMARY KEY,
             backend_pid integer NOT NULL,
             info jsonb NOT NULL)""",
    ],
}


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


class PostgresBackend(BackendBase):
    def __init__(self, url: str, cluster: str):
        self.url = url
        self.cluster = cluster
        self._check_url()
        self._conn = None
        self._guard = threading.Lock()  # apply records finished actions from several threads
        self._journal_pending = False

    def describe(self) -> str:
        return f"{self.url} (cluster {self.cluster})"

    # ---- connection and schema ----

    def _check_url(self) -> None:
        from psycopg import conninfo

        try:
            params = conninfo.conninfo_to_dict(self.url)
        except Exception as e:  # psycopg.ProgrammingError on a malformed URL
            raise StateError(
                f"backend {_redacted(self.url)!r}: not a valid PostgreSQL URL: "
                f"{_redacted(_first_line(e))}"
            ) from None
        if params.get("password"):
            raise StateError(
                "backend URL: remove the password from it; sealer reads it from PGPASSWORD "
                "or ~/.pgpass, so it never shows in shell history, ps or logs"
            )

    def _connection(self):
        if self._conn is None:
            import psycopg

            try:
                self._conn = psycopg.connect(
                    self.url, autocommit=True, connect_timeout=10, application_name="sealer"
                )
            except psycopg.Error as e:
                raise StateError(f"{self.url}: cannot connect: {_first_line(e)}") from None
            self._ensure_schema()
        return self._conn

    def _execute(self, sql: str, params=()) -> list[tuple]:
        import psycopg

        try:
            with self._connection().cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else []
        except psycopg.Error as e:
            raise StateError(f"{self.url}: {_first_line(e)}") from None

    @contextlib.contextmanager
    def _transaction(self):
        import psycopg

        conn = self._connection()
        try:
            with conn.transaction(), conn.cursor() as cur:
                yield cur
        except psycopg.Error as e:
            raise StateError(
                f"{self.url}: {_first_line(e)}; the stored state is unchanged"
            ) from None

    def _ensure_schema(self) -> None:
        with self._transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
            cur.execute("CREATE SCHEMA IF NOT EXISTS sealer")
            cur.execute("CREATE TABLE IF NOT EXISTS sealer.schema_version (version integer)")
            cur.execute("SELECT max(version) FROM sealer.schema_version")
            current = cur.fetchone()[0] or 0
            if current > SCHEMA_VERSION:
                raise StateError(
                    f"{self.url}: the database holds sealer schema version {current}; this "
                    f"sealer knows up to {SCHEMA_VERSION}: upgrade sealer"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[version]:
                    cur.execute(statement)
                cur.execute("INSERT INTO sealer.schema_version VALUES (%s)", (version,))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # ---- locking ----

    @contextlib.contextmanager
    def lock(self, operation: str, timeout: float = 0.0):
        key = _lock_key(self.cluster)
        deadline = time.monotonic() + timeout
        while not self._execute("SELECT pg_try_advisory_lock(%s)", (key,))[0][0]:
            if time.monotonic() >= deadline:
                raise LockError(self._lock_held_message(key))
            time.sleep(0.1)
        info = lock_info(operation, self.describe())
        try:
            self._execute(
                "INSERT INTO sealer.locks (cluster, backend_pid, info) "
                "VALUES (%s, pg_backend_pid(), %s) ON CONFLICT (cluster) DO UPDATE "
                "SET backend_pid = EXCLUDED.backend_pid, info = EXCLUDED.info",
                (self.cluster, json.dumps(info)),
            )
            yield info
        finally:
            with contextlib.suppress(StateError):
                self._execute(
                    "DELETE FROM sealer.locks WHERE cluster = %s AND backend_pid = "
                    "pg_backend_pid()",
                    (self.cluster,),
                )
                self._execute("SELECT pg_advisory_unlock(%s)", (key,))
            self.close()

    def _lock_held_message(self, key: int) -> str:
        unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
        # pg_locks shows a bigint advisory key as classid (high half) and objid (low half).
        rows = self._execute(
            "SELECT l.info FROM sealer.locks l JOIN pg_locks p ON p.pid = l.backend_pid "
            "WHERE l.cluster = %s AND p.locktype = 'advisory' AND p.granted "
            "AND p.classid = %s AND p.objid = %s AND p.objsubid = 1",
            (self.cluster, unsigned >> 32, unsigned & 0xFFFF_FFFF),
        )
        return lock_held_message(self.describe(), rows[0][0] if rows else {})

    # ---- reading ----

    def read(self, cluster: str) -> dict:
        # One statement, so the document and its journal come from the same snapshot.
        rows = self._execute(
            "SELECT s.document::text, (SELECT coalesce(json_agg(j.patch ORDER BY j.id), '[]') "
            "FROM sealer.journal j WHERE j.cluster = s.cluster AND j.lineage = s.lineage "
            "AND j.serial = s.serial) FROM sealer.states s WHERE s.cluster = %s",
            (cluster,),
        )
        if rows:
            text, patches = rows[0]
            doc = parse(text.encode(), self.describe(), cluster)
        else:  # nothing stored yet, but maybe a first apply was killed before its first write
            doc = new_document(cluster)
            unwritten = self._execute(
                "SELECT lineage, patch FROM sealer.journal WHERE cluster = %s AND serial = 0 "
                "ORDER BY id",
                (cluster,),
            )
            if unwritten:
                doc["lineage"] = unwritten[0][0]
            patches = [patch for lineage, patch in unwritten if lineage == doc["lineage"]]
        for patch in patches:
            apply_patch(doc, patch)
        self._journal_pending = bool(patches)
        return doc

    def versions(self) -> list[tuple[int, str, str]]:
        """(serial, lineage, saved_at) of the kept earlier versions, newest first."""
        return [
            (serial, lineage, saved_at.strftime("%Y-%m-%dT%H:%M:%SZ"))
            for serial, lineage, saved_at in self._execute(
                "SELECT serial, lineage, saved_at AT TIME ZONE 'UTC' FROM sealer.versions "
                "WHERE cluster = %s ORDER BY saved_at DESC, serial DESC",
                (self.cluster,),
            )
        ]

    def read_version(self, serial: int) -> dict | None:
        rows = self._execute(
            "SELECT document::text FROM sealer.versions WHERE cluster = %s AND serial = %s "
            "ORDER BY saved_at DESC LIMIT 1",
            (self.cluster, serial),
        )
        return json.loads(rows[0][0]) if rows else None

    # ---- the journal of finished actions ----

    def append(self, doc: dict, patch: dict) -> None:
        """Record one finished action durably (committed), and apply it to doc."""
        apply_patch(doc, patch)
        with self._guard:
            self._execute(
                "INSERT INTO sealer.journal (cluster, lineage, serial, patch) "
                "VALUES (%s, %s, %s, %s)",
                (doc["cluster"], doc["lineage"], doc["serial"], json.dumps(patch)),
            )
            self._journal_pending = True

    # ---- writing ----

    def store(self, doc: dict) -> None:
        """Make doc the cluster's state as it is (serial included), keeping the one it replaces."""
        with self._guard, self._transaction() as cur:
            cluster = doc["cluster"]
            cur.execute(
                "INSERT INTO sealer.versions (cluster, lineage, serial, document) "
                "SELECT cluster, lineage, serial, document FROM sealer.states "
                "WHERE cluster = %s ON CONFLICT DO NOTHING",
                (cluster,),
            )
            cur.execute(
                "INSERT INTO sealer.states (cluster, lineage, serial, document) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (cluster) DO UPDATE SET "
                "lineage = EXCLUDED.lineage, serial = EXCLUDED.serial, "
                "document = EXCLUDED.document, updated_at = now()",
                (cluster, doc["lineage"], doc["serial"], json.dumps(doc)),
            )
            cur.execute("DELETE FROM sealer.journal WHERE cluster = %s", (cluster,))
            cur.execute(
                "DELETE FROM sealer.versions WHERE cluster = %s AND (lineage, serial) NOT IN "
                "(SELECT lineage, serial FROM sealer.versions WHERE cluster = %s "
                "ORDER BY saved_at DESC, serial DESC LIMIT %s)",
                (cluster, cluster, KEEP_VERSIONS),
            )
        self._journal_pending = False


def _lock_key(cluster: str) -> int:
    """A signed 64-bit advisory lock key for the cluster (pg_advisory_lock takes a bigint)."""
    digest = hashlib.sha256(f"sealer-state:{cluster}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _redacted(text: str) -> str:
    """A URL's password replaced, for messages about a URL that may carry one."""
    return re.sub(r"(://[^:/@\s]*):[^@\s]*@", r"\1:***@", text)


def _first_line(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
