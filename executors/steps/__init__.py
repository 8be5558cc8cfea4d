"""One step per action kind: `run(ctx, action) -> patches`. A step does its action's work on
the hosts through the ApplyContext (executors/context.py) and returns the state patches that
record it; the Applier appends them to the journal once the step returned, so a failed step
records nothing and the next plan proposes it again.

Each module holds a family of kinds and its STEPS; adding a kind adds its step here (see
docs/architecture.md, "How to add an action kind").
"""

from __future__ import annotations

from collections.abc import Callable

from cluster.actions import Kind
from cluster.model import Action
from executors.context import ApplyContext
from executors.steps import apps, hosts, leave, nodes, registry, upgrade

Step = Callable[[ApplyContext, Action], list[dict]]

STEPS: dict[Kind, Step] = {
    **nodes.STEPS,
    **leave.STEPS,
    **upgrade.STEPS,
    **hosts.STEPS,
    **registry.STEPS,
    **apps.STEPS,
}
