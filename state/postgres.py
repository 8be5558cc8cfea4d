"""The PostgreSQL state backend: one shared state and one lock for a team.

- One row per cluster in `sealer.states` (lineage, serial, document as jsonb); the journal of
  finished actions in `sealer.journal`; the last KEEP_VERSIONS documents in `sealer.versions`.
- The lock is a session-level advisory lock: PostgreSQL drops it when the holder's connection
  ends, so a killed run frees it at once. Who holds it is in `sealer.locks`, keyed by the
  holder's backend pid, so a row left by a dead holder is never shown as the holder.
- The schema is created on first use and versioned in `sealer.schema_version`.
- A lost connection (the server restarted, a link flapped) is opened again for up to
  RECONNECT_FOR seconds and the statement run again (every journal patch and every store is
  idempotent). A run holding the lock takes it again on the new session, and stops with an
  error when another run took it, or changed the state, while the connection was down.
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

RECONNECT_FOR = 30.0  # seconds a restarting server is waited for

_NOT_READ = object()

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
        self._held: tuple[int, dict] | None = None  # (key, info) while this run holds the lock
        # (lineage, serial) this run last read or wrote; None: nothing was stored
        self._seen: tuple[str, int] | None | object = _NOT_READ
        self._writing: tuple[str, int] | None = None  # what store() is writing now

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

    def _execute(self, sql: str, params=(), reconnect: bool = True) -> list[tuple]:
        def statement(cur):
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []

        return self._run(statement, in_transaction=False, reconnect=reconnect)

    def _in_transaction(self, work):
        """work(cursor) in one transaction; on an error nothing of it is stored."""
        return self._run(work, in_transaction=True)

    def _run(self, work, in_transaction: bool, reconnect: bool = True):
        import psycopg

        for attempt in (1, 2):
            conn = self._connection()
            try:
                with contextlib.ExitStack() as stack:
                    if in_transaction:
                        stack.enter_context(conn.transaction())
                    return work(stack.enter_context(conn.cursor()))
            except psycopg.Error as e:
                if reconnect and attempt == 1 and conn.broken:
                    self._reconnect(e)
                    continue
                unchanged = "; the stored state is unchanged" if in_transaction else ""
                raise StateError(f"{self.url}: {_first_line(e)}{unchanged}") from None
        raise AssertionError("unreachable")

    def _reconnect(self, error: Exception) -> None:
        """A new session after a lost one, waiting for the server to come back; the lock, if
        this run held it, is taken again on it."""
        self.close()
        deadline = time.monotonic() + RECONNECT_FOR
        delay = 0.2
        while True:
            try:
                self._connection()
                break
            except StateError as e:
                if time.monotonic() + delay > deadline:
                    raise StateError(
                        f"{self.url}: the connection was lost ({_first_line(error)}) and not "
                        f"back within {RECONNECT_FOR:g} s: {str(e).split(': ', 1)[-1]}"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 4.0)
        if self._held is not None:
            self._take_lock_again()

    def _take_lock_again(self) -> None:
        key, info = self._held
        once = {"reconnect": False}  # a connection lost again here ends the run
        if not self._execute("SELECT pg_try_advisory_lock(%s)", (key,), **once)[0][0]:
            self._held = None
            raise LockError(
                f"{self.describe()}: the lock was lost while the connection was down, and "
                "another sealer run holds it now; what this run finished is in the journal"
            )
        self._record_holder(info, **once)
        stored = self._execute(
            "SELECT lineage, serial FROM sealer.states WHERE cluster = %s", (self.cluster,), **once
        )
        now = tuple(stored[0]) if stored else None
        if self._seen is not _NOT_READ and now not in (self._seen, self._writing):
            raise StateError(
                f"{self.describe()}: another sealer run changed the state while the connection "
                "was down; this run stops here, and what it finished is in the journal"
            )

    def _ensure_schema(self) -> None:
        import psycopg

        try:
            with self._conn.transaction(), self._conn.cursor() as cur:
                self._migrate(cur)
        except psycopg.Error as e:
            self.close()
            raise StateError(f"{self.url}: {_first_line(e)}") from None
        except StateError:
            self.close()
            raise

    def _migrate(self, cur) -> None:
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
            self._held = (key, info)
            self._record_holder(info)
            yield info
        finally:
            self._held = None
            with contextlib.suppress(StateError):  # a lost session took the lock with it
                self._execute(
                    "DELETE FROM sealer.locks WHERE cluster = %s AND backend_pid = "
                    "pg_backend_pid()",
                    (self.cluster,),
                    reconnect=False,
                )
                self._execute("SELECT pg_advisory_unlock(%s)", (key,), reconnect=False)
            self.close()

    def _record_holder(self, info: dict, reconnect: bool = True) -> None:
        self._execute(
            "INSERT INTO sealer.locks (cluster, backend_pid, info) "
            "VALUES (%s, pg_backend_pid(), %s) ON CONFLICT (cluster) DO UPDATE "
            "SET backend_pid = EXCLUDED.backend_pid, info = EXCLUDED.info",
            (self.cluster, json.dumps(info)),
            reconnect=reconnect,
        )

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
            self._seen = (doc["lineage"], doc["serial"])
        else:  # nothing stored yet, but maybe a first apply was killed before its first write
            doc = new_document(cluster)
            self._seen = None
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
        cluster = doc["cluster"]

        # Run again after a lost connection, it must change nothing more: the copy kept is
        # never of the document being written (the first run may have committed).
        def replace(cur) -> None:
            cur.execute(
                "INSERT INTO sealer.versions (cluster, lineage, serial, document) "
                "SELECT cluster, lineage, serial, document FROM sealer.states "
                "WHERE cluster = %s AND (lineage, serial) <> (%s, %s) ON CONFLICT DO NOTHING",
                (cluster, doc["lineage"], doc["serial"]),
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

        with self._guard:
            self._writing = (doc["lineage"], doc["serial"])
            try:
                self._in_transaction(replace)
            finally:
                self._writing = None
        self._seen = (doc["lineage"], doc["serial"])
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
