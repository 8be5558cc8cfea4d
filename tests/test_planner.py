"""Planning rules: each rule of the planner, on models built in memory (the planner is pure)."""

from __future__ import annotations

import itertools

import pytest

from cluster.errors import SealerError
from cluster.model import SSH, Cluster, Host, Image
from cluster.records import State, host_record
from planner import make_destroy_plan as plan_destroy
from planner import make_plan as plan_for
from planner.build import batch_size
from state.document import new_document


def make_plan(cluster: Cluster, doc: dict, **options):
    """The planner on a state document as stored (the tests edit documents, as a user could)."""
    return plan_for(cluster, State.from_json(doc), **options)


def make_destroy_plan(doc: dict):
    return plan_destroy(State.from_json(doc))


def image(version="v1.25.3", runtime="kubernetes", digest=None) -> Image:
    return Image(
        name=f"{runtime}:{version}",
        rootfs="/nowhere",
        digest=digest or f"sha256:{runtime}{version}",
        version=version,
        runtime=runtime,
    )


def host(ip, master=False, labels=None, taints=(), env=None, port=22) -> Host:
    return Host(
        ip,
        ("master",) if master else ("node",),
        labels or {},
        tuple(taints),
        env or {},
        SSH(port=port),
    )


def desired(masters, workers=(), version="v1.25.3", runtime="kubernetes", **overrides) -> Cluster:
    hosts = {ip: host(ip, master=True) for ip in masters}
    hosts.update({ip: host(ip) for ip in workers})
    hosts.update(overrides)
    return Cluster(
        name="c", image=image(version, runtime), hosts=hosts, env={}, cmd=(), app_names=()
    )


def applied(cluster: Cluster, version=None, bootstrap=None) -> dict:
    """A state as if `cluster` had been applied."""
    doc = new_document(cluster.name)
    doc["serial"] = 5
    doc["image"] = cluster.image.record()
    if version:
        doc["image"]["version"] = version
    doc["bootstrap_master"] = bootstrap or cluster.masters[0]
    for ip, h in cluster.hosts.items():
        doc["hosts"][ip] = host_record(
            h, lineage=doc["lineage"], version=version or cluster.image.version, status="ready"
        ).to_json()
    return doc


def by_id(plan):
    return {a.id: a for a in plan.actions}


def kinds(plan):
    return [(a.kind, a.host) for a in plan.actions]


M = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
W = ["10.0.1.1", "10.0.1.2", "10.0.1.3"]


def test_empty_state_init_first_master_chain_masters_workers_after_init():
    plan = make_plan(desired(M, W), new_document("c"))
    a = by_id(plan)
    assert plan.actions[0].id == "init_cluster.10.0.0.1"
    assert a["join_master.10.0.0.2"].depends_on == ("init_cluster.10.0.0.1",)
    assert a["join_master.10.0.0.3"].depends_on == ("join_master.10.0.0.2",)
    for ip in W:
        assert a[f"join_worker.{ip}"].depends_on == ("init_cluster.10.0.0.1",)
    assert plan.summary == {"add": 6, "change": 0, "destroy": 0}
    assert plan.bootstrap_master == "10.0.0.1" and plan.lineage is None


def test_no_change_is_an_empty_plan_and_ssh_settings_do_not_count():
    cluster = desired(M, W)
    state = applied(cluster)
    assert make_plan(cluster, state).empty
    moved = desired(M, W, **{W[0]: host(W[0], port=2222)})
    assert make_plan(moved, state).empty


def test_new_masters_join_before_any_master_leaves_and_masters_leave_one_at_a_time():
    state = applied(desired(M, W))
    plan = make_plan(desired(["10.0.0.1", "10.0.0.4", "10.0.0.5"], W), state)
    a = by_id(plan)
    assert a["join_master.10.0.0.4"].depends_on == ()
    assert a["join_master.10.0.0.5"].depends_on == ("join_master.10.0.0.4",)
    assert a["delete_master.10.0.0.2"].depends_on == ("join_master.10.0.0.5",)
    assert a["delete_master.10.0.0.3"].depends_on == ("delete_master.10.0.0.2",)
    order = [x.id for x in plan.actions]
    assert order.index("join_master.10.0.0.5") < order.index("delete_master.10.0.0.2")


def test_removing_the_bootstrap_master_hands_the_role_over_and_it_leaves_last():
    state = applied(desired(M, W))
    plan = make_plan(desired(["10.0.0.2", "10.0.0.3", "10.0.0.4"], W), state)
    a = by_id(plan)
    assert plan.bootstrap_master == "10.0.0.2"
    assert a["delete_master.10.0.0.1"].details["hands_bootstrap_to"] == "10.0.0.2"
    moves = tuple(f"update_endpoint.{ip}" for ip in W)
    assert a["delete_master.10.0.0.1"].depends_on == ("join_master.10.0.0.4", *moves)
    for ip in W:  # every worker moves its endpoint to the new bootstrap master, after the join
        assert a[f"update_endpoint.{ip}"].details == {"to": "10.0.0.2"}
        assert a[f"update_endpoint.{ip}"].depends_on == ("join_master.10.0.0.4",)


def test_removing_a_master_that_is_not_the_bootstrap_moves_no_endpoint():
    state = applied(desired(M, W))
    plan = make_plan(desired(["10.0.0.1", "10.0.0.2"], W), state)
    assert not [x for x in plan.actions if x.kind == "update_endpoint"]


def test_no_plan_removes_two_masters_at_once():
    """etcd keeps quorum only if members leave one at a time: every master removal waits
    for the one before it, whatever the change."""
    for keep in (["10.0.0.1"], ["10.0.0.2"], ["10.0.0.3", "10.0.0.9"], ["10.0.0.7", "10.0.0.2"]):
        plan = make_plan(desired(keep, W), applied(desired(M, W)))
        a = by_id(plan)
        leaving = [x.id for x in plan.actions if x.kind == "delete_master"]
        for earlier, later in itertools.pairwise(leaving):
            assert earlier in a[later].depends_on, (keep, leaving)


def test_removing_every_master_is_refused_even_with_new_ones():
    state = applied(desired(M, W))
    with pytest.raises(SealerError, match=r"removes every current master \(10.0.0.1, 10.0.0.2"):
        make_plan(desired(["10.0.0.7"], W), state)


def test_removed_workers_are_deleted_independently():
    state = applied(desired(M, W))
    plan = make_plan(desired(M, W[:1] + ["10.0.1.9"]), state)
    a = by_id(plan)
    assert a["delete_worker.10.0.1.2"].depends_on == ()
    assert a["delete_worker.10.0.1.3"].depends_on == ()
    assert a["join_worker.10.0.1.9"].depends_on == ()
    assert plan.summary == {"add": 1, "change": 0, "destroy": 2}


def test_upgrade_masters_one_at_a_time_bootstrap_first_then_worker_batches():
    workers = [f"10.0.1.{i}" for i in range(1, 8)]
    state = applied(desired(M, workers), bootstrap="10.0.0.2")
    plan = make_plan(desired(M, workers, version="v1.26.1"), state, max_unavailable="3")
    a = by_id(plan)
    masters = [x.host for x in plan.actions if x.kind == "upgrade_master"]
    assert masters == ["10.0.0.2", "10.0.0.1", "10.0.0.3"]
    assert a["upgrade_master.10.0.0.1"].depends_on == ("upgrade_master.10.0.0.2",)
    batches = {}
    for x in plan.actions:
        if x.kind == "upgrade_worker":
            batches.setdefault(x.details["batch"], []).append(x)
    assert [len(b) for b in batches.values()] == [3, 3, 1]
    assert all(x.depends_on == ("upgrade_master.10.0.0.3",) for x in batches[1])
    assert a["upgrade_batch.1"].depends_on == tuple(x.id for x in batches[1])
    assert all(x.depends_on == ("upgrade_batch.1",) for x in batches[2])
    assert all(x.depends_on == ("upgrade_batch.2",) for x in batches[3])
    assert a["upgrade_master.10.0.0.2"].details == {"from": "v1.25.3", "to": "v1.26.1"}
    assert plan.summary == {"add": 0, "change": 10, "destroy": 0}
    assert 'image.version: "v1.25.3" -> "v1.26.1"' in plan.changes


@pytest.mark.parametrize(
    "spec, workers, expected",
    [
        ("10%", 100, 10),
        ("10%", 5, 1),
        ("25%", 10, 2),
        ("3", 100, 3),
        ("0", 10, 1),
        ("100%", 4, 4),
    ],
)
def test_batch_size(spec, workers, expected):
    assert batch_size(spec, workers) == expected


@pytest.mark.parametrize("spec", ["ten", "150%", "-1", "5.5"])
def test_bad_max_unavailable(spec):
    with pytest.raises(SealerError, match="--max-unavailable"):
        batch_size(spec, 10)


def test_default_batch_is_ten_percent_of_workers():
    workers = [f"10.0.1.{i}" for i in range(1, 41)]
    state = applied(desired(M, workers))
    plan = make_plan(desired(M, workers, version="v1.26.1"), state)
    sizes = {}
    for x in plan.actions:
        if x.kind == "upgrade_worker":
            sizes[x.details["batch"]] = sizes.get(x.details["batch"], 0) + 1
    assert list(sizes.values()) == [4] * 10


def test_hosts_being_added_get_the_new_version_and_removed_hosts_are_not_upgraded():
    state = applied(desired(M, W))
    plan = make_plan(desired(M, W[:2] + ["10.0.1.9"], version="v1.26.1"), state)
    a = by_id(plan)
    assert "upgrade_worker.10.0.1.3" not in a and "delete_worker.10.0.1.3" in a
    assert a["join_worker.10.0.1.9"].details["version"] == "v1.26.1"
    assert a["join_worker.10.0.1.9"].depends_on == ("upgrade_master.10.0.0.3",)


def test_partially_upgraded_cluster_upgrades_only_the_rest():
    cluster = desired(M, W)
    state = applied(cluster)
    for ip in ["10.0.0.1", "10.0.1.1"]:
        state["hosts"][ip]["version"] = "v1.26.1"
    state["image"]["version"] = "v1.26.1"
    plan = make_plan(desired(M, W, version="v1.26.1"), state)
    assert {a.host for a in plan.actions if a.kind.startswith("upgrade_") and a.host} == {
        "10.0.0.2",
        "10.0.0.3",
        "10.0.1.2",
        "10.0.1.3",
    }


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("v1.26.1", "v1.25.3", "downgrading from v1.26.1 to v1.25.3 is not supported"),
        ("v1.25.3", "v1.27.0", "skips a minor version"),
        ("v1.25.3", "v2.0.0", "skips a minor version"),
    ],
)
def test_downgrades_and_minor_skips_are_refused(old, new, message):
    state = applied(desired(M, W, version=old))
    with pytest.raises(SealerError, match=message):
        make_plan(desired(M, W, version=new), state)


def test_changing_the_runtime_requires_destroy():
    state = applied(desired(M, W, runtime="k3s"))
    with pytest.raises(SealerError, match="from k3s to k0s requires `sealer destroy` first"):
        make_plan(desired(M, W, runtime="k0s"), state)


def test_label_taint_and_env_changes_are_update_host_with_field_reasons():
    state = applied(desired(M, W))
    changed = desired(
        M,
        W,
        **{
            W[0]: host(W[0], labels={"disk": "ssd"}),
            W[1]: host(W[1], taints=("gpu:NoSchedule",)),
            W[2]: host(W[2], env={"TOKEN": "hunter2"}),
        },
    )
    plan = make_plan(changed, state)
    a = by_id(plan)
    assert a[f"update_host.{W[0]}"].details["changes"] == ['labels.disk: + "ssd"']
    assert a[f"update_host.{W[1]}"].details["changes"] == ['taints[0]: + "gpu:NoSchedule"']
    assert a[f"update_host.{W[2]}"].details["changes"] == ["env_digest: changed (values hidden)"]
    assert "hunter2" not in repr(plan.to_json())
    assert plan.summary == {"add": 0, "change": 3, "destroy": 0}


def test_update_host_waits_for_that_hosts_upgrade():
    state = applied(desired(M, W))
    changed = desired(M, W, version="v1.26.1", **{W[0]: host(W[0], labels={"a": "b"})})
    a = by_id(make_plan(changed, state))
    assert a[f"update_host.{W[0]}"].depends_on == (f"upgrade_worker.{W[0]}",)


def test_a_worker_turned_master_is_removed_then_joined():
    state = applied(desired(M, W))
    plan = make_plan(desired(M + [W[0]], W[1:]), state)
    a = by_id(plan)
    assert a[f"join_master.{W[0]}"].depends_on == (f"delete_worker.{W[0]}",)
    state = applied(desired(M, W))
    a = by_id(make_plan(desired(M[:2], W + [M[2]]), state))
    assert f"delete_master.{M[2]}" in a[f"join_worker.{M[2]}"].depends_on


def test_destroy_resets_workers_then_masters_one_at_a_time_bootstrap_last():
    state = applied(desired(M, W), bootstrap="10.0.0.2")
    plan = make_destroy_plan(state)
    a = by_id(plan)
    assert all(a[f"reset_cluster.{ip}"].depends_on == () for ip in W)
    masters = [x.host for x in plan.actions if x.host in M]
    assert masters == ["10.0.0.1", "10.0.0.3", "10.0.0.2"]
    assert set(a["reset_cluster.10.0.0.1"].depends_on) == {f"reset_cluster.{ip}" for ip in W}
    assert a["reset_cluster.10.0.0.2"].depends_on == ("reset_cluster.10.0.0.3",)
    assert plan.summary == {"add": 0, "change": 0, "destroy": 6}


def test_the_plan_is_deterministic_and_topologically_ordered():
    state = applied(desired(M, W))
    target = desired(["10.0.0.2", "10.0.0.3", "10.0.0.4"], W[1:] + ["10.0.1.7"], version="v1.26.1")
    first = make_plan(target, state).to_json()
    assert first == make_plan(target, state).to_json()
    seen = set()
    for action in first["actions"]:
        assert set(action["depends_on"]) <= seen
        seen.add(action["id"])


def _rebuilt(cluster: Cluster, digest: str, cmd=()) -> Cluster:
    """The same cluster on an image rebuilt at the same version (new content, maybe a new CMD)."""
    import dataclasses

    new_image = dataclasses.replace(cluster.image, digest=digest, launch_cmds=tuple(cmd))
    return dataclasses.replace(cluster, image=new_image, cmd=tuple(cmd))  # as the loader sets


def test_rebuilt_image_at_the_same_version_syncs_every_kept_host():
    current = desired(M[:1], W[:2])
    plan = make_plan(_rebuilt(current, "sha256:rebuilt"), applied(current))
    assert sorted(kinds(plan)) == sorted([("sync_rootfs", ip) for ip in [M[0], *W[:2]]])
    assert plan.summary["change"] == 3
    assert by_id(plan)[f"sync_rootfs.{M[0]}"].details["to"] == "sha256:rebuilt"


def test_new_workers_and_upgrades_need_no_sync():
    current = desired(M[:1], W[:1])
    upgraded = _rebuilt(desired(M[:1], W[:2], version="v1.26.1"), "sha256:next")
    assert "sync_rootfs" not in {k for k, _ in kinds(make_plan(upgraded, applied(current)))}


def test_launch_commands_run_again_when_the_cmd_or_the_image_changes():
    first = _rebuilt(desired(M[:1]), "sha256:one", cmd=["kubectl apply -f app.yaml"])
    state = applied(first)
    launched = make_plan(first, state).actions
    assert [a.kind for a in launched] == ["launch_apps"]
    state["launch_digest"] = launched[0].details["digest"]
    assert make_plan(first, state).empty  # ran: nothing to do
    new_cmd = _rebuilt(desired(M[:1]), "sha256:one", cmd=["kubectl apply -f app-v2.yaml"])
    assert [a.kind for a in make_plan(new_cmd, state).actions] == ["launch_apps"]
    new_payload = _rebuilt(desired(M[:1]), "sha256:two", cmd=["kubectl apply -f app.yaml"])
    plan = make_plan(new_payload, state)
    assert sorted(a.kind for a in plan.actions) == ["launch_apps", "sync_rootfs"]
    launch = next(a for a in plan.actions if a.kind == "launch_apps")
    assert f"sync_rootfs.{M[0]}" in launch.depends_on  # the new manifests are there first


def test_changed_config_documents_sync_every_kept_host_and_rerun_launch():
    import dataclasses

    from cluster.digests import configs_digest
    from cluster.model import Document

    def with_config(cluster: Cluster, data: str) -> Cluster:
        config = Document("Config", "app", {"spec": {"path": "etc/app.yaml", "data": data}})
        return dataclasses.replace(cluster, configs=(config,), cmd=("kubectl apply -f x",))

    first = with_config(desired(M[:1], W[:1]), "replicas: 1")
    state = applied(first)
    state["configs_digest"] = configs_digest(first)
    state["launch_digest"] = make_plan(first, state).actions[0].details["digest"]
    assert make_plan(first, state).empty
    changed = make_plan(with_config(desired(M[:1], W[:1]), "replicas: 2"), state)
    assert sorted(kinds(changed)) == sorted(
        [("sync_rootfs", M[0]), ("sync_rootfs", W[0]), ("launch_apps", M[0])]
    )
    assert by_id(changed)[f"sync_rootfs.{W[0]}"].details["configs"] == "changed"


def test_a_change_a_running_cluster_cannot_make_is_refused_with_the_fields():
    import dataclasses

    fixed = {"endpoint": "apiserver.cluster.local:6443", "networking.podSubnet": "100.64.0.0/10"}
    state = {**applied(desired(M, W)), "control_plane": fixed}
    same = dataclasses.replace(desired(M, W), control_plane=dict(fixed))
    make_plan(same, state)  # nothing changed: plans
    moved = dataclasses.replace(
        desired(M, W), control_plane={**fixed, "networking.podSubnet": "10.244.0.0/16"}
    )
    with pytest.raises(
        SealerError, match=r"cannot change networking.podSubnet: '100.64.0.0/10' -> '10.244.0.0/16'"
    ):
        make_plan(moved, state)


def test_changed_kubeadm_documents_reconfigure_each_master_in_turn():
    fixed = {"endpoint": "apiserver.cluster.local:6443", "documents": "sha256:old"}
    state = {**applied(desired(M, W)), "control_plane": fixed}
    import dataclasses

    same = dataclasses.replace(desired(M, W), control_plane=dict(fixed))
    assert not [a for a in make_plan(same, state).actions if a.kind == "reconfigure_master"]
    changed = dataclasses.replace(desired(M, W), control_plane={**fixed, "documents": "sha256:new"})
    plan = make_plan(changed, state)
    steps = [a for a in plan.actions if a.kind == "reconfigure_master"]
    assert [a.host for a in steps] == M  # the bootstrap master first, one at a time
    for earlier, later in itertools.pairwise(steps):
        assert earlier.id in later.depends_on


def _with_apps(cluster: Cluster, *apps, source="apps:v1") -> Cluster:
    import dataclasses

    return dataclasses.replace(cluster, apps=tuple(apps), apps_from=source)


def _app(name: str, digest: str, image_name="apps:v1"):
    from cluster.applications import AppLaunch

    return AppLaunch(
        name, image_name, "/nowhere", (f"kubectl apply -f {name}.yaml",), digest=digest
    )


def test_each_app_launches_in_order_and_only_a_changed_one_again():
    cluster = _with_apps(desired(M[:1], W[:1]), _app("web", "sha256:w1"), _app("db", "sha256:d1"))
    first = make_plan(cluster, State.new("test").to_json())
    launches = [a for a in first.actions if a.kind == "launch_app"]
    assert [a.id for a in launches] == ["launch_app.web", "launch_app.db"]
    assert launches[0].id in launches[1].depends_on  # in LAUNCH order
    assert f"join_worker.{W[0]}" in launches[0].depends_on  # once the cluster is up
    assert all(a.host == M[0] and a.change == "add" for a in launches)
    assert first.summary == {"add": 4, "change": 0, "destroy": 0}

    state = applied(cluster)
    state["apps"] = {"web": {"digest": "sha256:w1", "image": "apps:v1"}}
    state["apps"]["db"] = {"digest": "sha256:d1", "image": "apps:v1"}
    assert make_plan(cluster, state).empty
    changed = _with_apps(desired(M[:1], W[:1]), _app("web", "sha256:w1"), _app("db", "sha256:d2"))
    (again,) = make_plan(changed, state).actions
    assert again.id == "launch_app.db" and again.change == "change"


def test_an_app_no_longer_launched_is_removed_only_by_the_image_that_launched_it():
    state = applied(desired(M[:1]))
    state["apps"] = {
        "web": {"digest": "sha256:w1", "image": "apps:v1"},
        "cni": {"digest": "sha256:c1", "image": "cluster:v1"},  # the cluster image's own app
    }
    only_web_gone = _with_apps(desired(M[:1]))
    (removal,) = make_plan(only_web_gone, state).actions
    assert removal.id == "remove_app.web" and removal.change == "destroy"
    assert removal.details["commands"] == []
    import dataclasses

    with_delete = dataclasses.replace(only_web_gone, app_deletes={"web": ("helm uninstall web",)})
    (removal,) = make_plan(with_delete, state).actions
    assert removal.details["commands"] == ["helm uninstall web"]


def test_a_cycle_in_the_graph_is_an_internal_error_naming_it():
    from planner.graph import ActionGraph

    graph = ActionGraph()
    a = graph.add("update_host", "10.0.0.1")
    b = graph.add("update_host", "10.0.0.2", depends_on=[a])
    graph.depend(a, b)
    with pytest.raises(SealerError, match=r"the plan has a cycle: update_host\.10\.0\.0\.[12] -> "):
        graph.ordered()


def test_ties_are_broken_by_the_order_actions_were_planned():
    from planner.graph import ActionGraph

    graph = ActionGraph()
    first = graph.add("update_host", "10.0.0.9")
    graph.add("update_host", "10.0.0.3", depends_on=[first])
    graph.add("update_host", "10.0.0.1")
    # among the actions ready at each point, the one planned first (networkx's lexicographic
    # topological order by planning index)
    assert [a.id for a in graph.ordered()] == [
        "update_host.10.0.0.9", "update_host.10.0.0.3", "update_host.10.0.0.1",
    ]  # fmt: skip
