"""A plan's DAG as Graphviz DOT text (`sealer graph`)."""

from __future__ import annotations

from cluster.model import Action


def to_dot(actions: tuple[Action, ...], name: str = "plan") -> str:
    """Graphviz DOT text of a plan's DAG."""
    colours = {
        "init": "palegreen",
        "join": "palegreen",
        "upgrade": "khaki",
        "update": "khaki",
        "delete": "lightpink",
        "reset": "lightpink",
    }
    lines = [f'digraph "{name}" {{', "  rankdir=LR;", '  node [shape=box, style="rounded,filled"];']
    for a in actions:
        colour = colours.get(a.kind.split("_")[0], "lightgrey")
        label = a.kind if a.host is None else f"{a.kind}\\n{a.host}"
        lines.append(f'  "{a.id}" [label="{label}", fillcolor={colour}];')
    for a in actions:
        for dep in a.depends_on:
            lines.append(f'  "{dep}" -> "{a.id}";')
    lines.append("}")
    return "\n".join(lines) + "\n"
