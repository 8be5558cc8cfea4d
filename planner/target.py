"""`--target HOST`: a plan cut down to the actions on some hosts and what they need to be safe.

Terraform's rule: a target keeps its own actions and every action they depend on (a master's
leave still waits for the joins planned before it; workers still move their endpoint before
the bootstrap master leaves). Two kinds of dependency are only ordering, not need, and are
cut: the barriers between batches of worker upgrades (another worker's upgrade never makes a
targeted one safer), and the cluster-wide steps that run on the bootstrap master (launch
commands and apps), which belong to no host and wait for an untargeted apply.
"""

from __future__ import annotations

from cluster.actions import Kind, kinds_where
from cluster.model import Action

CLUSTER_WIDE = kinds_where(lambda spec: spec.cluster_wide)


def restrict(actions: tuple[Action, ...], targets: frozenset[str]) -> tuple[tuple, tuple]:
    """(the actions kept, in order, with dependencies rewired; the ids left out)."""
    by_id = {a.id: a for a in actions}
    chosen = {a.id for a in actions if a.host in targets and a.kind not in CLUSTER_WIDE}
    needed, todo = set(chosen), list(chosen)
    while todo:  # every ancestor, through the barriers too (they lead to the control plane)
        for dep in by_id[todo.pop()].depends_on:
            if dep not in needed:
                needed.add(dep)
                todo.append(dep)
    kept = {
        action_id
        for action_id in needed
        if action_id in chosen or not _ordering_only(by_id[action_id], targets)
    }
    # In plan (topological) order: what each action stands for among the kept ones.
    through: dict[str, tuple[str, ...]] = {}
    result = []
    for a in actions:
        deps = tuple(dict.fromkeys(d for dep in a.depends_on for d in through[dep]))
        if a.id in kept:
            through[a.id] = (a.id,)
            result.append(Action(a.id, a.kind, a.host, a.roles, deps, a.details))
        else:  # a dropped barrier hands on what it waited for
            through[a.id] = deps
    left_out = tuple(a.id for a in actions if a.id not in kept)
    return tuple(result), left_out


def _ordering_only(action: Action, targets: frozenset[str]) -> bool:
    """An ancestor kept only to order things: a batch barrier, or another worker's upgrade."""
    if action.kind in CLUSTER_WIDE:
        return True
    return action.kind == Kind.UPGRADE_WORKER and action.host not in targets
