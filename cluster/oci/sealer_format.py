"""sealer's image format (v0.9 and later) on top of an OCI image.

sealer keeps what it needs beside the rootfs, in the manifest's annotations:
`sealer.image.extension` (JSON: buildClient, schemaVersion, type, applications, labels, env,
launch) and `sealer.image.container.images` (JSON list of {image, appName, platform}); the
image config's labels carry `io.sealer.version`, the cluster runtime
(`cluster.alpha.sealer.io/cluster-runtime-type`), the supported Kubernetes versions and the
CNI/CSI an image brings. The rootfs may still hold the legacy `Metadata` file (version, arch,
ClusterRuntime, ...): sealer reads it for the version, and takes everything else from the
annotation and the labels. Where the two disagree, the annotation and labels win, as in sealer.
"""

from __future__ import annotations

import json

from cluster.errors import SealerError

EXTENSION = "sealer.image.extension"
CONTAINER_IMAGES = "sealer.image.container.images"
SEALER_VERSION_LABEL = "io.sealer.version"
RUNTIME_LABEL = "cluster.alpha.sealer.io/cluster-runtime-type"
SCHEMA_VERSION = "v1alpha1"
KUBE_INSTALLER = "kube-installer"
APP_INSTALLER = "app-installer"
MAX_ANNOTATION_BYTES = 1 * 2**20


class FormatError(SealerError):
    pass


def extension(annotations: dict, where: str) -> dict | None:
    """The `sealer.image.extension` annotation, checked; None when the image has none."""
    raw = (annotations or {}).get(EXTENSION)
    if raw is None:
        return None
    value = _json(raw, EXTENSION, where)
    if not isinstance(value, dict):
        raise FormatError(f"{where}: annotation {EXTENSION} must be a JSON object")
    kind = value.get("type") or ""
    # sealer 0.9's own early images said "app-image"
    if kind not in ("", KUBE_INSTALLER, APP_INSTALLER, "app-image", "kube-image"):
        raise FormatError(f"{where}: annotation {EXTENSION}: unknown type {kind!r}")
    for key in ("labels", "env"):
        field = value.get(key) or {}
        if not isinstance(field, dict) or not all(isinstance(v, str) for v in field.values()):
            raise FormatError(f"{where}: annotation {EXTENSION}: {key} must map names to strings")
    launch = value.get("launch") or {}
    if not isinstance(launch, dict):
        raise FormatError(f"{where}: annotation {EXTENSION}: launch must be an object")
    applications = value.get("applications") or []
    if not isinstance(applications, list) or not all(
        isinstance(a, dict) and isinstance(a.get("name"), str) for a in applications
    ):
        raise FormatError(
            f"{where}: annotation {EXTENSION}: applications must be objects with a name"
        )
    return value


def container_images(annotations: dict, where: str) -> list[dict]:
    raw = (annotations or {}).get(CONTAINER_IMAGES)
    if not raw:
        return []
    value = _json(raw, CONTAINER_IMAGES, where)
    if not isinstance(value, list) or not all(
        isinstance(i, dict) and isinstance(i.get("image"), str) for i in value
    ):
        raise FormatError(f"{where}: annotation {CONTAINER_IMAGES} must be a list of {{image}}")
    return value


def _json(raw, name: str, where: str):
    if not isinstance(raw, str) or len(raw) > MAX_ANNOTATION_BYTES:
        raise FormatError(f"{where}: annotation {name} is not a JSON string of at most 1 MiB")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise FormatError(f"{where}: annotation {name} is not valid JSON: {e}") from None


def merged_metadata(metadata: dict, ext: dict | None, labels: dict) -> dict:
    """What the image says, as one Metadata-shaped dict: the rootfs' Metadata file underneath,
    the extension annotation and the config labels on top (sealer's precedence)."""
    merged = dict(metadata or {})
    merged["labels"] = {**(merged.get("labels") or {}), **(labels or {})}
    if labels and labels.get(RUNTIME_LABEL):  # sealer 0.9 reads the runtime from the label
        merged["ClusterRuntime"] = labels[RUNTIME_LABEL]
    if ext is None:
        return merged
    kind = ext.get("type") or ""
    if kind in (APP_INSTALLER, "app-image"):
        merged["type"] = APP_INSTALLER
        merged.pop("version", None)
    elif kind:
        merged["type"] = KUBE_INSTALLER
    merged["applications"] = list(ext.get("applications") or [])
    launch = ext.get("launch") or {}
    merged["launch"] = {
        "cmds": list(launch.get("cmds") or []),
        "app_names": list(launch.get("app_names") or []),
    }
    merged.pop("cmd", None)  # the extension's launch is the launch: Metadata's CMD is older
    merged["env"] = {**(merged.get("env") or {}), **(ext.get("env") or {})}
    merged["labels"] = {**merged["labels"], **(ext.get("labels") or {})}
    return merged


def build_extension(metadata: dict, sealer_version: str) -> dict:
    """The extension annotation of an image built here, from its Metadata."""
    launch = metadata.get("launch") or {}
    value = {
        "buildClient": {"sealerVersion": sealer_version, "buildahVersion": ""},
        "schemaVersion": SCHEMA_VERSION,
        "type": metadata.get("type") or KUBE_INSTALLER,
        "applications": list(metadata.get("applications") or []),
        "launch": {"cmds": list(launch.get("cmds") or metadata.get("cmd") or [])},
    }
    if launch.get("app_names"):
        value["launch"]["app_names"] = list(launch["app_names"])
    if metadata.get("env"):
        value["env"] = dict(metadata["env"])
    return value


def build_labels(metadata: dict, runtime: str, sealer_version: str) -> dict:
    """The config labels of an image built here: the Kubefile's LABELs, the sealer version and
    the cluster runtime (real sealer takes the runtime from this label, kubernetes if unset)."""
    labels = {str(k): str(v) for k, v in (metadata.get("labels") or {}).items()}
    labels[SEALER_VERSION_LABEL] = sealer_version
    if runtime:
        labels[RUNTIME_LABEL] = runtime
    return labels


def build_container_images(container_images: list[dict], arch: str, variant: str) -> list[dict]:
    """sealer's list of the container images an image carries, from what the build copied."""
    listed = []
    for entry in container_images:
        platform = {"architecture": arch, "os": "linux"}
        if variant:
            platform["variant"] = variant
        item = {"image": str(entry.get("source") or entry.get("name")), "platform": platform}
        if entry.get("app"):
            item["appName"] = str(entry["app"])
        listed.append(item)
    return listed
