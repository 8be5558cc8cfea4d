"""`sealer build` and `sealer image ...`: the local ClusterImage store."""

from __future__ import annotations

import json
from pathlib import Path

from cluster import image as images
from cluster.errors import SealerError


def run(args) -> int:
    return {
        "load": cmd_load,
        "ls": cmd_ls,
        "inspect": cmd_inspect,
        "save": cmd_save,
        "rm": cmd_rm,
    }[args.image_command](args)


def cmd_build(args) -> int:
    from imagebuild.builder import Builder

    build_args = {}
    for item in args.build_arg:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SealerError(f"--build-arg {item!r}: expected NAME=VALUE")
        build_args[name] = value
    context = Path(args.context)
    kubefile = Path(args.file) if args.file else context / "Kubefile"
    result = Builder(kubefile, context, args.tag, build_args, args.no_cache).build()
    print(
        f"{result.steps} step(s): {result.executed} layer(s) built, {result.cached} from the cache."
    )
    return 0


def cmd_load(args) -> int:
    image = images.load_into_store(Path(args.path), args.name)
    print(f"Loaded {image.name} ({image.runtime} {image.version}, {image.digest})")
    return 0


def cmd_ls(args) -> int:
    records = images.list_store()
    if not records:
        print(
            f"No images in {images.sealer_home() / 'images'}. Load one with: sealer image load PATH"
        )
        return 0
    print(f"{'NAME':<32} {'RUNTIME':<11} {'VERSION':<10} DIGEST")
    for r in records:
        print(f"{r['name']:<32} {r['runtime']:<11} {r['version']:<10} {r['digest'][:19]}")
    return 0


def cmd_inspect(args) -> int:
    image = images.from_store(args.name)
    record = images.store_record(args.name) or {}
    metadata = images.read_metadata(Path(image.rootfs), args.name)
    document = {
        "name": image.name,
        "digest": image.digest,
        "runtime": image.runtime,
        "version": image.version,
        "labels": metadata.get("labels") or {},
        "launch_commands": list(image.launch_cmds),
        "metadata": metadata,
        "build": {k: record[k] for k in ("base", "kubefile", "created") if k in record},
    }
    if args.json:
        print(json.dumps(document, indent=1))
        return 0
    print(f"Name:     {image.name}\nDigest:   {image.digest}")
    print(f"Runtime:  {image.runtime} {image.version}")
    if document["build"]:
        print(f"Built:    {record.get('created', '?')} from {record.get('base', '?')}")
    print("Labels:" + ("" if document["labels"] else "   (none)"))
    for key, value in sorted(document["labels"].items()):
        print(f"  {key}={value}")
    print("Launch commands:" + ("" if image.launch_cmds else " (none)"))
    for command in image.launch_cmds:
        print(f"  {command}")
    print("Metadata:")
    for line in json.dumps(metadata, indent=1, sort_keys=True).splitlines():
        print(f"  {line}")
    return 0


def cmd_save(args) -> int:
    image = images.save(args.name, Path(args.output))
    print(f"Saved {image.name} ({image.digest}) to {args.output}")
    return 0


def cmd_rm(args) -> int:
    for name in args.names:
        images.remove_from_store(name)
        print(f"Removed {name}")
    return 0
