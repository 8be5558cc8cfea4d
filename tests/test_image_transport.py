"""ClusterImages through a real registry (Distribution with TLS and htpasswd): login, pull,
push, tag, save and load in sealer's OCI format, checked by independent tools (skopeo, umoci)."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from cluster import image as images
from tests.helpers import SANDBOX_IMAGES, kubefile, sealer
from tests.image_registry import secure_registry
from tests.sealer_go_image import folder_entries, image_extension, write_image, write_layers

pytestmark = pytest.mark.skipif(
    not (SANDBOX_IMAGES / ".vendor/registry/registry").exists(), reason="scripts/setup not run"
)  # setup always vendors it; CI runs setup first

BASE = SANDBOX_IMAGES / "k3s-v1.25.3"
LAUNCH = "echo launched-from-the-extension > /tmp/sealer-go-launch"


def skopeo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, check=True)


@pytest.fixture
def registry(tmp_path):
    with secure_registry(tmp_path / "registry-storage") as reg:
        reg.trust_in(Path(os.environ["SEALER_HOME"]))
        yield reg


def login(reg) -> None:
    result = sealer("login", reg.address, "-u", reg.user, "--password-stdin",
                    input=reg.password + "\n")  # fmt: skip
    assert result.returncode == 0, result.stderr


def push_go_image(tmp_path: Path, reg, name: str = "sealer/k3s-go:v1", extension=None) -> str:
    """An image as real sealer makes it (two layers, the second whiting out a file of the
    first, launch commands only in the extension), pushed with skopeo; its manifest digest."""
    layout = tmp_path / f"go-layout-{name.replace('/', '-').replace(':', '-')}"
    base = folder_entries(BASE) + [("etc/obsolete.conf", b"from layer 1\n")]
    top = [("etc/.wh.obsolete.conf", b""), ("etc/added-by-layer-2.conf", b"layer 2\n")]
    digest = write_image(
        layout,
        "v1",
        write_layers([base, top]),
        image_extension([LAUNCH]) if extension is None else extension,
        {"io.sealer.version": "v0.9.3", "cluster.alpha.sealer.io/cluster-runtime-type": "k3s"},
        container_images=[{"image": "docker.io/library/nginx:1.25", "platform": {"architecture": "amd64", "os": "linux"}}],
    )  # fmt: skip
    skopeo("copy", "--quiet", f"--dest-cert-dir={reg.cert_dir()}", "--dest-creds",
           f"{reg.user}:{reg.password}", f"oci:{layout}:v1", f"docker://{reg.address}/{name}")  # fmt: skip
    return digest


def build_two_platform_image(context: Path, tag: str) -> None:
    """The k3s sandbox image for amd64 and arm64 (`COPY ${ARCH} .`), each instance telling its
    platform in etc/built-for."""
    context.mkdir()
    for arch in ("amd64", "arm64"):
        folder = context / arch
        subprocess.run(["cp", "-a", str(BASE), str(folder)], check=True)
        metadata = json.loads((folder / "Metadata").read_text())
        (folder / "Metadata").write_text(json.dumps({**metadata, "arch": arch}))
        (folder / "etc/built-for").write_text(arch + "\n")
    kubefile(context, "FROM scratch\nCOPY ${ARCH} .\n")
    built = sealer("build", "--platform", "linux/amd64,linux/arm64", "-t", tag, str(context))
    assert built.returncode == 0, built.stderr


def test_an_image_real_sealer_built_pulls_and_reads_as_sealer_reads_it(tmp_path, registry):
    digest = push_go_image(tmp_path, registry)
    ref = f"{registry.address}/sealer/k3s-go:v1"
    before_login = sealer("pull", ref)
    assert before_login.returncode == 1
    assert before_login.stderr.strip() == (
        f"Error: pull {ref}: the registry asks for credentials (401): sealer login REGISTRY first"
    )
    login(registry)
    pulled = sealer("pull", ref)
    assert pulled.returncode == 0, pulled.stderr
    assert f"Pulled {ref} ({digest}; linux/amd64)" in pulled.stdout
    image = images.from_store(ref)
    assert image.digest == digest and image.runtime == "k3s" and image.version == "v1.25.3"
    assert image.launch_cmds == (LAUNCH,)  # only the extension says it
    rootfs = Path(image.rootfs)
    assert not (rootfs / "etc/obsolete.conf").exists()  # the whiteout of layer 2
    assert (rootfs / "etc/added-by-layer-2.conf").read_text() == "layer 2\n"
    assert os.access(rootfs / "scripts/init.sh", os.X_OK)
    spec = json.loads(sealer("inspect", ref).stdout)  # sealer's ImageSpec shape
    assert spec["digest"] == digest and spec["imageExtension"]["launch"]["cmds"] == [LAUNCH]
    assert spec["imageExtension"]["labels"]["io.sealer.version"] == "v0.9.3"
    assert "sealer.image.extension" not in spec["manifestv1"]["annotations"]
    assert spec["containerImageList"][0]["image"] == "docker.io/library/nginx:1.25"
    assert (
        len(spec["manifestv1"]["layers"]) == 2
        and spec["id"] == spec["manifestv1"]["config"]["digest"][7:]
    )
    # the store is an OCI layout other tools read
    store = Path(os.environ["SEALER_HOME"]) / "oci"
    assert json.loads(skopeo("inspect", f"oci:{store}:{ref}").stdout)["Digest"] == digest


def test_a_tag_that_moved_is_pulled_again_only_when_asked(tmp_path, registry):
    login(registry)
    ref = f"{registry.address}/sealer/k3s-go:v1"
    first = push_go_image(tmp_path, registry)
    assert sealer("pull", ref).returncode == 0
    moved = push_go_image(tmp_path / "2", registry, extension=image_extension([LAUNCH, "true"]))
    assert moved != first
    kept = sealer("pull", ref, "--policy", "missing")
    assert f"Already in the store: {ref} ({first};" in kept.stdout
    assert images.resolve(ref, tmp_path).digest == first  # spec.image: policy missing
    newer = sealer("pull", ref, "--policy", "ifnewer")
    assert f"Pulled {ref} ({moved};" in newer.stdout
    never = sealer("pull", f"{registry.address}/sealer/other:v1", "--policy", "never")
    assert never.returncode == 1 and never.stderr.strip() == (
        f"Error: pull {registry.address}/sealer/other:v1: not in the local store, and "
        "--policy never forbids pulling it"
    )


def test_an_image_built_here_is_pushed_in_sealers_format_and_read_by_skopeo_and_umoci(
    tmp_path, registry
):
    login(registry)
    push_go_image(tmp_path, registry)
    context = tmp_path / "ctx"
    kubefile(context, f"FROM {registry.address}/sealer/k3s-go:v1\nCOPY app.yaml manifests/\n"
             'CMDS ["kubectl apply -f manifests/app.yaml"]\n')  # fmt: skip
    (context / "app.yaml").write_text("kind: ConfigMap\n")
    built = sealer("build", "-t", "team/app:v1", str(context))  # FROM pulls the base
    assert built.returncode == 0, built.stderr
    target = f"{registry.address}/team/app:v1"
    pushed = sealer("push", "team/app:v1", target)
    assert pushed.returncode == 0, pushed.stderr
    raw = json.loads(skopeo("inspect", "--raw", f"--cert-dir={registry.cert_dir()}", "--creds",
                            f"{registry.user}:{registry.password}", f"docker://{target}").stdout)  # fmt: skip
    extension = json.loads(raw["annotations"]["sealer.image.extension"])
    assert extension["type"] == "kube-installer" and extension["schemaVersion"] == "v1alpha1"
    assert extension["launch"]["cmds"] == ["kubectl apply -f manifests/app.yaml"]
    assert len(raw["layers"]) == 3  # the base's two layers, then one of the build's changes
    back = tmp_path / "back"
    skopeo("copy", "--quiet", f"--src-cert-dir={registry.cert_dir()}", "--src-creds",
           f"{registry.user}:{registry.password}", f"docker://{target}", f"oci:{back}:v1")  # fmt: skip
    subprocess.run(["umoci", "unpack", "--rootless", "--image", f"{back}:v1", str(tmp_path / "bundle")],
                   check=True, capture_output=True)  # fmt: skip
    rootfs = tmp_path / "bundle" / "rootfs"
    assert (rootfs / "manifests/app.yaml").read_text() == "kind: ConfigMap\n"
    assert not (rootfs / "etc/obsolete.conf").exists()
    assert json.loads((rootfs / "Metadata").read_text())["version"] == "v1.25.3"


def test_save_is_an_oci_archive_skopeo_reads_and_load_gives_the_same_digest(tmp_path):
    context = tmp_path / "ctx"
    kubefile(context, f"FROM {BASE}\nCOPY a.txt etc/\n")
    (context / "a.txt").write_text("a\n")
    assert sealer("build", "-t", "team/app:v2", str(context)).returncode == 0
    digest = images.store_record("team/app:v2")["digest"]
    archive = tmp_path / "app.tar"
    saved = sealer("save", "-o", str(archive), "team/app:v2")
    assert saved.returncode == 0, saved.stderr
    assert json.loads(skopeo("inspect", f"oci-archive:{archive}").stdout)["Digest"] == digest
    other = tmp_path / "other-home"
    loaded = sealer("load", "-i", str(archive), env={"SEALER_HOME": str(other)})
    assert loaded.returncode == 0, loaded.stderr
    assert f"Loaded team/app:v2 ({digest}; linux/amd64)" in loaded.stdout
    as_dir = tmp_path / "layout"
    assert sealer("save", "--format", "oci-dir", "-o", str(as_dir), "team/app:v2").returncode == 0
    assert json.loads(skopeo("inspect", f"oci:{as_dir}:team/app:v2").stdout)["Digest"] == digest
    docker = tmp_path / "docker.tar"
    assert (
        sealer("save", "--format", "docker-archive", "-o", str(docker), "team/app:v2").returncode
        == 0
    )
    with tarfile.open(docker) as tar:
        assert "manifest.json" in tar.getnames()
    third = tmp_path / "third-home"
    back = sealer(
        "load", "-i", str(docker), "--name", "team/app:docker", env={"SEALER_HOME": str(third)}
    )
    assert back.returncode == 0, back.stderr
    assert sealer("inspect", "team/app:docker", env={"SEALER_HOME": str(third)}).returncode == 0


def test_a_two_platform_build_is_an_index_and_each_host_arch_gets_its_instance(tmp_path, registry):
    login(registry)
    build_two_platform_image(tmp_path / "ctx", "multi:v1")
    target = f"{registry.address}/team/multi:v1"
    assert sealer("push", "multi:v1", target).returncode == 0
    raw = json.loads(skopeo("inspect", "--raw", f"--cert-dir={registry.cert_dir()}", "--creds",
                            f"{registry.user}:{registry.password}", f"docker://{target}").stdout)  # fmt: skip
    assert raw["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert sorted(m["platform"]["architecture"] for m in raw["manifests"]) == ["amd64", "arm64"]
    other = {"SEALER_HOME": str(tmp_path / "puller")}
    (tmp_path / "puller").mkdir()
    registry.trust_in(tmp_path / "puller")
    assert sealer("login", registry.address, "-u", registry.user, "--password-stdin",
                  input=registry.password, env=other).returncode == 0  # fmt: skip
    assert sealer("pull", target, env=other).returncode == 0
    listing = sealer("images", env=other).stdout
    assert "linux/amd64, linux/arm64" in listing
    os.environ["SEALER_HOME"], saved = other["SEALER_HOME"], os.environ["SEALER_HOME"]
    try:
        image = images.from_store(target)
        arm = images.instance_for(image, "aarch64")
        assert (Path(arm.rootfs) / "etc/built-for").read_text() == "arm64\n"
        assert arm.digest != image.digest and arm.arch == "arm64"
        assert (
            Path(images.instance_for(image, "x86_64").rootfs) / "etc/built-for"
        ).read_text() == "amd64\n"
        assert images.platform_problem(image, "s390x") == (
            "the image has no linux/s390x instance (it has linux/amd64, linux/arm64)"
        )
    finally:
        os.environ["SEALER_HOME"] = saved
    one = sealer(
        "pull", target, "--platform", "linux/arm64", env={"SEALER_HOME": str(tmp_path / "one")}
    )
    assert one.returncode == 1  # no login in that home: the registry asks for one


def test_login_secrets_stay_in_the_auth_file(tmp_path, registry):
    wrong = sealer("login", registry.address, "-u", registry.user, "--password-stdin",
                   input="not-the-password\n")  # fmt: skip
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == (
        f"Error: login {registry.address}: the registry refused the username or password"
    )
    # A skopeo that records every process's command line while sealer runs it.
    spy = tmp_path / "spy"
    spy.mkdir()
    real = subprocess.run(
        ["sh", "-c", "command -v skopeo"], capture_output=True, text=True
    ).stdout.strip()
    (spy / "skopeo").write_text(
        "#!/bin/sh\n"
        f"for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f 2>/dev/null; echo; done >> {tmp_path}/cmdlines\n"
        f'exec {real} "$@"\n'
    )
    os.chmod(spy / "skopeo", 0o755)
    env = {"PATH": f"{spy}:{os.environ['PATH']}"}
    login_ok = sealer("login", registry.address, "-u", registry.user, "--password-stdin",
                      input=registry.password + "\n", env=env)  # fmt: skip
    assert login_ok.returncode == 0 and "Login Succeeded" in login_ok.stdout
    push_go_image(tmp_path, registry)
    assert sealer("pull", f"{registry.address}/sealer/k3s-go:v1", env=env).returncode == 0
    cmdlines = (tmp_path / "cmdlines").read_text()
    assert "skopeo login" in cmdlines.replace(real, "skopeo")  # the spy saw the login
    assert registry.password not in cmdlines
    home = Path(os.environ["SEALER_HOME"])
    auth = home / "auth.json"
    assert oct(auth.stat().st_mode & 0o777) == "0o600"
    holding = [p for p in home.rglob("*") if p.is_file() and _holds(p, registry.password)]
    assert holding == [auth]


def _holds(path: Path, password: str) -> bool:
    """The password, as is or as auth.json keeps it (base64 of user:password)."""
    import base64

    data = path.read_bytes()
    if password.encode() in data:
        return True
    try:
        for entry in json.loads(data).get("auths", {}).values():
            if password in base64.b64decode(entry.get("auth", "")).decode():
                return True
    except (ValueError, AttributeError, UnicodeDecodeError):
        pass
    return False


def test_bearer_token_auth_and_no_blob_sent_twice_within_a_registry(tmp_path):
    """Docker Hub's scheme: a 401 naming a token realm, a JWT from the token server for the
    scope. And a second repository of the same registry gets the layers by a cross-repository
    mount (or a HEAD that finds them), not by sending them again."""
    with secure_registry(tmp_path / "storage", auth="token") as reg:
        reg.trust_in(Path(os.environ["SEALER_HOME"]))
        wrong = sealer("login", reg.address, "-u", reg.user, "--password-stdin", input="nope\n")
        assert wrong.returncode == 1 and wrong.stderr.strip() == (
            f"Error: login {reg.address}: the registry refused the username or password"
        ), wrong.stderr
        login(reg)
        context = tmp_path / "ctx"
        kubefile(context, f"FROM {BASE}\n")
        assert sealer("build", "-t", "team/app:v1", str(context)).returncode == 0
        first = sealer("push", "team/app:v1", f"{reg.address}/team/app:v1")
        assert first.returncode == 0, first.stderr
        issued = reg.tokens.issued
        assert issued > 0  # the registry asked for bearer tokens, the server issued them
        offset = reg.log.stat().st_size
        second = sealer("push", "team/app:v1", f"{reg.address}/other/app:v1")
        assert second.returncode == 0, second.stderr
        log = reg.log.read_bytes()[offset:].decode(errors="replace")
        layers = json.loads(sealer("inspect", "team/app:v1").stdout)["manifestv1"]["layers"]
        for layer in layers:  # mounted from team/app, never sent again (only the config is)
            hexa = layer["digest"].split(":")[1]
            assert f'mount=sha256%3A{hexa} HTTP/1.1" 201' in log, log
        assert reg.tokens.issued > issued
        (tmp_path / "h2").mkdir()
        reg.trust_in(tmp_path / "h2")
        back = sealer(
            "pull", f"{reg.address}/other/app:v1", env={"SEALER_HOME": str(tmp_path / "h2")}
        )
        assert back.returncode == 1 and "sealer login" in back.stderr  # a new home: no token
