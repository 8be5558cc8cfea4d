"""The plan's DAG: actions as nodes, "must finish before" as edges."""

from __future__ import annotations

import heapq

from cluster import actions
from cluster.actions import Details, Kind, details_of
from cluster.errors import SealerError
from cluster.model import Action


class ActionGraph:
    """Collects actions and their dependencies, then orders them (refusing cycles)."""

    def __init__(self):
        self._actions: dict[str, dict] = {}

    def add(
        self,
        kind: Kind,
        host: str | None,
        roles=(),
        depends_on=(),
        key: str = "",
        details: Details | None = None,
    ) -> str:
        """key names the action when a host has several of one kind (apps); an action of no
        host (a batch barrier) is named by its batch."""
        details = details_of(kind, details)
        identifier = actions.action_id(
            kind, key or (host if host is not None else details["batch"])
        )
        if identifier in self._actions:
            raise SealerError(f"internal planning error: action {identifier} planned twice")
        deps = [d for d in dict.fromkeys(depends_on) if d is not None]
        self._actions[identifier] = {
            "kind": Kind(kind),
            "host": host,
            "roles": tuple(roles),
            "deps": deps,
            "details": details,
        }
        return identifier

    def ids(self) -> list[str]:
        return list(self._actions)

    def depend(self, action_id: str, *on: str | None) -> None:
        deps = self._actions[action_id]["deps"]
        deps.extend(d for d in on if d is not None and d not in deps)

    def ordered(self) -> tuple[Action, ...]:
        """The actions in a topological order, ties broken by the order they were planned
        (networkx's lexicographical_topological_sort, done here with a heap: importing
        networkx costs a plan of thousands of hosts more than the sort; it is asked only to
        name a cycle)."""
        index = {action_id: i for i, action_id in enumerate(self._actions)}
        ids = list(self._actions)
        waiting = [0] * len(ids)
        dependents: list[list[int]] = [[] for _ in ids]
        for action_id, a in self._actions.items():
            for dep in a["deps"]:
                if dep not in index:
                    raise SealerError(
                        f"internal planning error: {action_id} depends on unknown action {dep}"
                    )
                dependents[index[dep]].append(index[action_id])
                waiting[index[action_id]] += 1
        ready = [i for i, count in enumerate(waiting) if count == 0]
        heapq.heapify(ready)
        order = []
        while ready:
            i = heapq.heappop(ready)
            order.append(ids[i])
            for child in dependents[i]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    heapq.heappush(ready, child)
        if len(order) < len(ids):
            raise SealerError(f"internal planning error: the plan has a cycle: {self._cycle()}")
        return tuple(
            Action(
                id=action_id,
                kind=self._actions[action_id]["kind"],
                host=self._actions[action_id]["host"],
                roles=self._actions[action_id]["roles"],
                depends_on=tuple(sorted(self._actions[action_id]["deps"], key=index.__getitem__)),
                details=self._actions[action_id]["details"],
            )
            for action_id in order
        )

    def _cycle(self) -> str:
        import networkx as nx  # imported late: only to name what went wrong

        graph = nx.DiGraph()
        for action_id, a in self._actions.items():
            graph.add_edges_from((dep, action_id) for dep in a["deps"])
        return " -> ".join(u for u, _ in nx.find_cycle(graph))
