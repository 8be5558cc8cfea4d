"""One deep merge of YAML-shaped data, for kubeadm documents, Configs and Application files."""

from __future__ import annotations

import copy


def merged(base, over):
    """`over` merged into a copy of `base`: maps merged deeply, anything else replaced by
    `over`'s value (as kubeadm's config merge and sealer's mergo.WithOverride do)."""
    if not isinstance(base, dict) or not isinstance(over, dict):
        return copy.deepcopy(over)
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
