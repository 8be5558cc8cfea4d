"""What a Clusterfile launches on the cluster: raw commands, or apps in order, each with its
final commands, env and file overrides — sealer's rules (pkg/application/appdriver.go):

- commands: spec.cmd, else the Application's spec.cmds, else the image's CMDS. When there are
  commands, they run and no app is launched.
- apps: spec.appNames, else the Application's spec.launchApps, else the image's LAUNCH.
- an app's env: the image's ENV, under its APPENV, under the Application config's env.
- an app's commands: the Application config's launch.cmds, else APPCMDS, else by its type.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from cluster.apps import App
from cluster.digests import rootfs_digest


@dataclass(frozen=True)
class AppLaunch:
    name: str
    image: str  # the image that carries the app (spec.image)
    folder: str  # the app's files on this machine, in the image's rootfs
    commands: tuple[str, ...]  # run in the app's folder on the bootstrap master
    env: dict[str, str] = field(default_factory=dict, repr=False)  # may hold secrets
    files: tuple[dict, ...] = field(
        default=(), repr=False
    )  # Application files: path, strategy, data
    digest: str = ""  # what was launched: files, commands, env, overrides

    def with_digest(self) -> AppLaunch:
        content = json.dumps(
            {
                "files": rootfs_digest(Path(self.folder)),
                "commands": list(self.commands),
                "env": self.env,
                "overrides": list(self.files),
            },
            sort_keys=True,
        )
        digest = "sha256:" + hashlib.sha256(content.encode()).hexdigest()
        return AppLaunch(
            self.name, self.image, self.folder, self.commands, self.env, self.files, digest
        )


def parse_env(entries) -> dict[str, str]:
    return dict(e.split("=", 1) for e in entries or () if "=" in e)


def app_launch(image, app: App, config: dict | None) -> AppLaunch:
    config = config or {}
    commands = tuple((config.get("launch") or {}).get("cmds") or ()) or tuple(app.launch_commands())
    env = {**image.env, **app.env, **parse_env(config.get("env"))}
    files = tuple(
        {
            "path": f["path"],
            "strategy": f.get("strategy") or "overwrite",
            "data": f["data"],
        }
        for f in config.get("files") or ()
    )
    folder = str(Path(image.rootfs) / app.folder)
    return AppLaunch(app.name, image.name, folder, commands, env, files).with_digest()
