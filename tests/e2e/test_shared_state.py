"""End-to-end on the PostgreSQL backend: a whole lifecycle with the state only in the database."""

from __future__ import annotations

import json
import signal
import subprocess
import time

from tests.e2e.conftest import IMAGES, NEW, Cluster, api, command_log, ip, node_versions
from tests.e2e.test_reliability import joins_on, start_apply

SECRET = "Env-9a1f3e77-NEVER-STORE"
ETCDCTL = str(IMAGES / ".vendor" / "etcd" / "etcdctl")


def test_lifecycle_on_the_postgresql_backend(hosts, tmp_path, postgres, pg_backend):
    cluster = Cluster(tmp_path, "kubernetes", name="e2e-shared-state")

    def stored() -> dict:
        rows = postgres.psql(
            f"SELECT serial, document FROM sealer.states WHERE cluster = '{cluster.name}'"
        )
        serial, document = rows.strip().split("|", 1)
        return {"serial": int(serial), **json.loads(document)}

    # init: 1 master + 2 workers
    cluster.write([1], [2, 3], env=[f"DB_PASSWORD={SECRET}"])
    cluster.apply()
    join = next(e["argv"] for e in command_log(2) if e["argv"][:2] == ["kubeadm", "join"])
    assert join == ["kubeadm", "join", "--config=/etc/kubernetes/kubeadm-join.yaml"]
    # The join tokens, as the control plane keeps them (read from its real etcd).
    tokens = json.loads(
        subprocess.run(
            [
                ETCDCTL,
                f"--endpoints=http://{ip(1)}:2379",
                "get",
                "/sandbox/cluster",
                "--print-value-only",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["tokens"]
    assert tokens
    first = stored()
    assert set(first["hosts"]) == {ip(1), ip(2), ip(3)} and first["serial"] >= 1
    assert not cluster.state_path().exists()  # nothing went to a local file
    assert not postgres.psql(f"SELECT 1 FROM sealer.journal WHERE cluster = '{cluster.name}'")

    # scale: add a master and a worker, remove a worker, in one apply
    cluster.write([1, 4], [2, 5], env=[f"DB_PASSWORD={SECRET}"])
    cluster.apply()
    scaled = stored()
    assert set(scaled["hosts"]) == {ip(n) for n in (1, 2, 4, 5)}
    assert set(api(1, "/nodes")) == {f"sandbox-{n}" for n in (1, 2, 4, 5)}
    assert scaled["serial"] > first["serial"]

    # upgrade, then a read-only drift check and a no-op plan from the database's state
    cluster.write([1, 4], [2, 5], version=NEW, env=[f"DB_PASSWORD={SECRET}"])
    cluster.apply()
    assert set(node_versions(1).values()) == {NEW}
    drift = cluster.sealer("drift")
    assert drift.returncode == 0, drift.stdout + drift.stderr
    again = cluster.sealer("plan", "--detailed-exitcode")
    assert again.returncode == 0 and "No changes." in again.stdout

    # the versions the backend kept cover the runs above
    versions = cluster.sealer("state", "versions")
    assert versions.returncode == 0 and len(versions.stdout.splitlines()) >= 4

    # destroy: the stored state is empty, and no secret ever reached the database
    cluster.sealer("destroy", "--auto-approve").check_returncode()
    final = stored()
    assert final["hosts"] == {} and final["image"] is None
    everything = postgres.psql(
        "SELECT string_agg(document::text, '') FROM sealer.versions; "
        "SELECT string_agg(info::text, '') FROM sealer.locks"
    )
    assert ip(4) in everything  # the kept versions do hold the runs above
    for secret in (SECRET, *tokens, postgres.password):
        assert secret not in everything


def test_kill_9_mid_apply_keeps_finished_actions_and_frees_the_lock(
    hosts, tmp_path, postgres, pg_backend
):
    cluster = Cluster(tmp_path, "kubernetes", name="e2e-shared-kill")
    cluster.write([1], [2, 3, 4])
    proc = start_apply(cluster, "--parallelism", "1")
    journal = f"SELECT count(*) FROM sealer.journal WHERE cluster = '{cluster.name}'"
    while int(postgres.psql(journal)) < 2 and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    recorded = int(postgres.psql(journal))
    assert recorded >= 2, "the apply ended before two actions were recorded"
    # Read back (journal replayed) at once: the dead run's session and its lock are gone.
    shown = cluster.sealer("show", "--json", "--lock-timeout", "10s")
    assert shown.returncode == 0, shown.stderr
    assert ip(1) in json.loads(shown.stdout)["hosts"]
    cluster.apply("--lock-timeout", "10s")
    assert set(cluster.state()["hosts"]) == {ip(n) for n in (1, 2, 3, 4)}
    for n in (1, 2, 3, 4):  # finished work was not repeated
        assert joins_on(n) == 1
