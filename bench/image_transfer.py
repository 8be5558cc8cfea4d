"""Benchmark: ClusterImages through a real registry (Distribution, TLS, htpasswd on 127.0.0.1).

Measured alternately in the same run, medians of --runs:
  pull  `sealer pull REF` into a fresh store  vs  `skopeo copy docker://REF oci:DIR:TAG`
  push  `sealer push` of a freshly built image  vs  `skopeo copy oci:STORE:NAME docker://...`
        (the registry's storage emptied before each push, so every byte is sent by both)
  share a second tag sharing 9 of its 10 layers: the bytes the registry sent for it, counted
        from its access log, against the size of the one new layer
  apply (--hosts N > 0, needs root: sandbox hosts) a first `sealer apply` naming the
        reference (it pulls) against a first apply of the image already pulled, plus the pull

    .venv/bin/python bench/image_transfer.py                  # 200 MiB in 10 layers, 3 runs
    .venv/bin/python bench/image_transfer.py --hosts 3        # and the apply comparison
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.image_registry import secure_registry  # noqa: E402
from tests.sealer_go_image import folder_entries, image_extension, write_image, write_layers  # noqa: E402

SEALER = [sys.executable, "-m", "sealer_cli.main"]
BASE = ROOT / "examples" / "images" / "k3s-v1.25.3"


def sealer(home: Path, *args: str, stdin: str | None = None) -> None:
    env = {**os.environ, "SEALER_HOME": str(home)}
    done = subprocess.run([*SEALER, *args], env=env, capture_output=True, text=True, input=stdin)
    if done.returncode != 0:
        raise SystemExit(f"sealer {' '.join(args)}: {done.stderr.strip()}")


def timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def make_layout(folder: Path, size_mib: int, layers: int, seed_of_last: int) -> Path:
    """An image of `layers` layers of random bytes (the first also holds the k3s rootfs); the
    last layer's content depends on seed_of_last, the others are the same in every image."""
    rng = random.Random(7)
    each = size_mib * 2**20 // layers
    contents = [folder_entries(BASE)]
    for n in range(1, layers):
        data = (
            random.Random(seed_of_last).randbytes(each) if n == layers - 1 else rng.randbytes(each)
        )
        contents.append([(f"payload/layer-{n}.bin", data)])
    contents[0].append(("payload/layer-0.bin", rng.randbytes(each)))
    layout = folder / f"layout-{seed_of_last}"
    write_image(layout, "v1", write_layers(contents), image_extension(["true"]),
                {"cluster.alpha.sealer.io/cluster-runtime-type": "k3s"})  # fmt: skip
    return layout


def skopeo(*args: str) -> None:
    subprocess.run(["skopeo", *args], check=True, capture_output=True)


def blob_bytes_sent(log: Path, start: int) -> int:
    """Bytes of blobs the registry sent (GET .../blobs/... 200 N) since offset start."""
    with open(log, "rb") as f:
        f.seek(start)
        text = f.read().decode(errors="replace")
    return sum(
        int(n)
        for n in re.findall(r'"GET /v2/[^ ]+/blobs/sha256:[a-f0-9]+ HTTP/[0-9.]+" 200 (\d+)', text)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=200)
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--hosts", type=int, default=0, help="sandbox hosts for the apply comparison"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-image-transfer-"))
    try:
        run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args, work: Path) -> None:
    v1 = make_layout(work, args.size_mib, args.layers, seed_of_last=1)
    v2 = make_layout(work, args.size_mib, args.layers, seed_of_last=2)
    with secure_registry(work / "storage") as reg:
        creds = [
            "--dest-cert-dir",
            str(reg.cert_dir()),
            "--dest-creds",
            f"{reg.user}:{reg.password}",
        ]
        src = ["--src-cert-dir", str(reg.cert_dir()), "--src-creds", f"{reg.user}:{reg.password}"]
        ref1, ref2 = f"{reg.address}/bench/big:v1", f"{reg.address}/bench/big:v2"
        skopeo("copy", "--quiet", *creds, f"oci:{v1}:v1", f"docker://{ref1}")
        skopeo("copy", "--quiet", *creds, f"oci:{v2}:v1", f"docker://{ref2}")

        def home(name: str) -> Path:
            folder = work / name
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            reg.trust_in(folder)
            sealer(
                folder, "login", reg.address, "-u", reg.user, "--password-stdin", stdin=reg.password
            )
            return folder

        pulls, copies = [], []
        for n in range(args.runs):
            target = home(f"pull-{n}")
            pulls.append(timed(lambda t=target: sealer(t, "pull", ref1)))
            out = work / f"skopeo-{n}"
            copies.append(
                timed(
                    lambda o=out: skopeo("copy", "--quiet", *src, f"docker://{ref1}", f"oci:{o}:v1")
                )
            )
            shutil.rmtree(out, ignore_errors=True)
        report("pull", pulls, copies, "skopeo copy docker:// oci:", 1.1)

        # the second tag: only its new layer travels
        target = home("share")
        sealer(target, "pull", ref1)
        offset = reg.log.stat().st_size
        sealer(target, "pull", ref2)
        time.sleep(0.2)  # the access log line is written after the response
        sent = blob_bytes_sent(reg.log, offset)
        manifest = json.loads(
            (
                v2
                / "blobs/sha256"
                / json.loads((v2 / "index.json").read_text())["manifests"][0]["digest"][7:]
            ).read_text()
        )
        new_layer = manifest["layers"][-1]["size"]
        total = sum(layer["size"] for layer in manifest["layers"])
        print(f"share  second tag, 9 of 10 layers shared: {sent / 2**20:.1f} MiB of blobs sent "
              f"(new layer {new_layer / 2**20:.1f} MiB + config; the image is {total / 2**20:.1f} MiB)"
              f"  {'OK' if sent < new_layer + 2**20 else 'OVER'}")  # fmt: skip

        # push: a freshly built image, every byte sent (the registry emptied first)
        built = home("push")
        context = work / "ctx"
        context.mkdir()
        (context / "Kubefile").write_text(f"FROM {BASE}\nCOPY payload payload\n")
        (context / "payload").mkdir()
        rng = random.Random(11)
        for n in range(args.layers):
            (context / "payload" / f"part-{n}.bin").write_bytes(
                rng.randbytes(args.size_mib * 2**20 // args.layers)
            )
        sealer(built, "build", "-t", "bench/built:v1", str(context))
        store = built / "oci"
        pushes, skopeo_pushes = [], []
        for n in range(args.runs):
            empty_registry(reg)
            pushes.append(
                timed(
                    lambda n=n: sealer(
                        built, "push", "bench/built:v1", f"{reg.address}/push/a{n}:v1"
                    )
                )
            )
            empty_registry(reg)
            skopeo_pushes.append(timed(lambda n=n: skopeo("copy", "--quiet", *creds, f"oci:{store}:bench/built:v1",
                                                          f"docker://{reg.address}/push/b{n}:v1")))  # fmt: skip
        report("push", pushes, skopeo_pushes, "skopeo copy oci: docker://", 1.1)
        if args.hosts:
            skopeo("copy", "--quiet", *creds, f"oci:{v1}:v1", f"docker://{ref1}")
            apply_comparison(args, work, reg, ref1, home)


def empty_registry(reg) -> None:
    """Every blob gone (Distribution keeps no cache in this configuration)."""
    for child in (reg.storage / "docker").glob("*"):
        shutil.rmtree(child, ignore_errors=True)


def report(what: str, ours: list[float], theirs: list[float], baseline: str, limit: float) -> None:
    a, b = statistics.median(ours), statistics.median(theirs)
    verdict = "OK" if a <= limit * b else f"OVER {limit}x"
    print(f"{what:<5}  sealer {a:.2f} s   {baseline} {b:.2f} s   ratio {a / b:.2f}x  "
          f"(limit {limit}x)  {verdict}   runs: {[round(x, 2) for x in ours]} vs {[round(x, 2) for x in theirs]}")  # fmt: skip


def apply_comparison(args, work: Path, reg, ref: str, home) -> None:
    """A first apply naming the reference vs pull + a first apply of the pulled image."""
    from sandbox import hosts as sandbox

    os.environ.setdefault("SEALER_SANDBOX_DIR", str(work / "sandbox"))
    from_ref, from_store, pulls = [], [], []
    for n in range(args.runs):
        for mode in ("ref", "store"):
            sandbox.down()
            started = sandbox.up(args.hosts)
            target = home(f"apply-{mode}-{n}")
            clusterfile = work / f"Clusterfile-{mode}-{n}"
            clusterfile.write_text(
                sandbox.clusterfile([h.address for h in started], ref, masters=1, name="bench")
            )
            if mode == "store":
                pulls.append(timed(lambda t=target: sealer(t, "pull", ref)))
                from_store.append(
                    timed(
                        lambda t=target, c=clusterfile: sealer(
                            t, "apply", "-f", str(c), "--auto-approve"
                        )
                    )
                )
            else:
                from_ref.append(
                    timed(
                        lambda t=target, c=clusterfile: sealer(
                            t, "apply", "-f", str(c), "--auto-approve"
                        )
                    )
                )
    sandbox.down()
    a, b, p = statistics.median(from_ref), statistics.median(from_store), statistics.median(pulls)
    extra = a - b
    verdict = "OK" if extra <= p * 1.1 else "OVER"
    print(f"apply  first apply from {ref.split('/', 1)[1]} {a:.2f} s; of the pulled image {b:.2f} s; "
          f"the difference {extra:.2f} s against the pull alone {p:.2f} s  {verdict}")  # fmt: skip


if __name__ == "__main__":
    main()
