"""What the stand-in kubelet does with pods: pull their images through the host's containerd
and report each pod's status to the API server, as a kubelet does.

A pod is Running once containerd has every image it needs (its sandbox's pause image, then
each container's image); its containers are not run (the sandbox has no runc-able binaries).
A failed pull is ErrImagePull with containerd's message, then ImagePullBackOff until the next
try: 10 s later, doubling up to 300 s, as the kubelet's image back-off. Images are pulled when
not present (the IfNotPresent policy); containerd is asked what it has before each pull.
"""

import threading
import time

from . import containerd

BACKOFF_FIRST, BACKOFF_MAX = 10.0, 300.0
CREATING = "ContainerCreating"


class ImagePuller:
    """The kubelet's image manager: one pull at a time, a back-off per image."""

    def __init__(self):
        self.lock = threading.Lock()
        self.failed = {}  # ref -> (message, retry_at, delay)

    def ensure(self, image, have):
        """(digest, None, None) when containerd has the image (pulled now if needed), else
        (None, reason, message). have: ref -> digest, what containerd listed; updated."""
        ref = containerd.normalize(image)
        with self.lock:
            if ref in have:
                return have[ref], None, None
            failed = self.failed.get(ref)
            now = time.monotonic()
            if failed and now < failed[1]:
                return (
                    None,
                    "ImagePullBackOff",
                    (f'Back-off pulling image "{image}": ErrImagePull: {failed[0]}'),
                )
            digest, message = containerd.pull(image)
            if digest:
                have[ref] = digest
                self.failed.pop(ref, None)
                return digest, None, None
            delay = min(failed[2] * 2, BACKOFF_MAX) if failed else BACKOFF_FIRST
            self.failed[ref] = (message, time.monotonic() + delay, delay)
            return None, "ErrImagePull", message


def container_status(name, image, digest, reason, message):
    status = {"name": name, "image": image, "imageID": "", "ready": False}
    if digest:
        status["imageID"] = f"{containerd.normalize(image).rsplit(':', 1)[0]}@{digest}"
    if reason:
        status["state"] = {"waiting": {"reason": reason, "message": message}}
    elif digest:
        status["state"] = {"running": {}}
        status["ready"] = True
    else:
        status["state"] = {"waiting": {"reason": CREATING}}
    return status


def pod_status(containers, puller, have, running=True):
    """The status of a pod whose containers are [{name, image}]: the sandbox's (pause) image
    first, then each container's, in order; a container waits while one before it waits. A
    sandbox image that cannot be pulled holds every container, with its reason. running:
    whether the pod's process runs (a static pod's); other pods run once their images are
    there."""
    failure = None
    sandbox = containerd.sandbox_image()
    if sandbox:
        digest, reason, message = puller.ensure(sandbox, have)
        failure = None if digest else (reason, message)
    statuses, waiting = [], False
    for c in containers:
        if failure:
            statuses.append(container_status(c["name"], c["image"], None, *failure))
        elif waiting:
            statuses.append(container_status(c["name"], c["image"], None, None, None))
        else:
            digest, reason, message = puller.ensure(c["image"], have)
            statuses.append(container_status(c["name"], c["image"], digest, reason, message))
            waiting = digest is None
    if not running:
        for s in statuses:
            if s["ready"]:
                s["ready"], s["state"] = False, {"waiting": {"reason": CREATING}}
    ready = bool(statuses) and all(s["ready"] for s in statuses)
    return {"phase": "Running" if ready else "Pending", "containerStatuses": statuses}
