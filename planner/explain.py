"""Field-by-field explanations of a change, from deepdiff. Only called on records that differ."""

from __future__ import annotations


def explain(old: dict, new: dict, secret_fields: tuple[str, ...] = ("env_digest",)) -> list[str]:
    """Lines such as `labels.disk: "ssd" -> "hdd"`; secret fields say only that they changed."""
    from deepdiff import DeepDiff  # imported late: most plans never need it

    lines = []
    diff = DeepDiff(old, new, ignore_order=False, view="tree")
    for report_type in sorted(diff):
        for level in diff[report_type]:
            path = _dotted(level.path(output_format="list"))
            if path.split(".")[0] in secret_fields:
                lines.append(f"{path.split('.')[0]}: changed (values hidden)")
            elif report_type.endswith("_added"):
                lines.append(f"{path}: + {_show(level.t2)}")
            elif report_type.endswith("_removed"):
                lines.append(f"{path}: - {_show(level.t1)}")
            else:
                lines.append(f"{path}: {_show(level.t1)} -> {_show(level.t2)}")
    return sorted(set(lines))


def _dotted(parts: list) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _show(value) -> str:
    import json

    return json.dumps(value)
