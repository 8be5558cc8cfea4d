"""The plan's DAG: actions as nodes, "must finish before" as edges (networkx)."""

from __future__ import annotations

from cluster.errors import SealerError
from cluster.model import Action


class ActionGraph:
    """Collects actions and their dependencies, then orders them (refusing cycles)."""

    def __init__(self):
        self._actions: dict[str, dict] = {}

    def add(
        self, kind: str, host: str | None, roles=(), depends_on=(), key: str = "", **details
    ) -> str:
        """key names the action when a host has several of one kind (apps)."""
        name = key or (host if host is not None else details.get("batch"))
        action_id = f"{kind}.{name}"
        if action_id in self._actions:
            raise SealerError(f"internal planning error: action {action_id} planned twice")
        deps = [d for d in dict.fromkeys(depends_on) if d is not None]
        self._actions[action_id] = {
            "kind": kind,
            "host": host,
            "roles": tuple(roles),
            "deps": deps,
            "details": details,
        }
        return action_id

    def ids(self) -> list[str]:
        return list(self._actions)

    def depend(self, action_id: str, *on: str | None) -> None:
        deps = self._actions[action_id]["deps"]
        deps.extend(d for d in on if d is not None and d not in deps)

    def ordered(self) -> tuple[Action, ...]:
        import networkx as nx  # imported late: `sealer validate` never needs it

        index = {action_id: i for i, action_id in enumerate(self._actions)}
        graph = nx.DiGraph()
        graph.add_nodes_from(self._actions)
        for action_id, a in self._actions.items():
            for dep in a["deps"]:
                if dep not in index:
                    raise SealerError(
                        f"internal planning error: {action_id} depends on unknown action {dep}"
                    )
                graph.add_edge(dep, action_id)
        if not nx.is_directed_acyclic_graph(graph):
            cycle = " -> ".join(u for u, _ in nx.find_cycle(graph))
            raise SealerError(f"internal planning error: the plan has a cycle: {cycle}")
        order = nx.lexicographical_topological_sort(graph, key=index.__getitem__)
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
