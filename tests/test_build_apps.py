"""`sealer build` with sealer's app instructions: APP, APPCMDS, APPENV, LAUNCH, CMDS, CNI, CSI,
KUBEVERSION, MAINTAINER, ADD; remote sources served by a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from cluster import image as images
from tests.helpers import SANDBOX_IMAGES, kubefile, sealer

IMAGES = SANDBOX_IMAGES


def build(context: Path, tag: str = "apps:v1"):
    return sealer("build", "-t", tag, str(context), timeout=120)


def app_context(context: Path) -> None:
    (context / "nginx").mkdir(parents=True)
    (context / "nginx" / "ns.yaml").write_text("kind: Namespace\nmetadata: {name: web}\n")
    (context / "nginx" / "deploy.yml").write_text("kind: Deployment\nmetadata: {name: web}\n")
    chart = context / "mysql"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: mysql\nversion: 1.0.0\n")
    (chart / "values.yaml").write_text("replicas: 1\n")
    (chart / "templates" / "cm.yaml").write_text("kind: ConfigMap\n")
    (context / "install.sh").write_text("echo installed\n")
    (context / "tool.bin").write_text("binary\n")


def test_an_application_image_from_scratch_with_each_app_type(tmp_path):
    context = tmp_path / "ctx"
    app_context(context)
    kubefile(
        context,
        """FROM scratch
MAINTAINER platform team
ENV globalKey=globalValue
APP nginx local://nginx
APP mysql local://mysql/
APP business local://install.sh
APP tool local://tool.bin
APPCMDS tool ["sh", "-c", "echo tool"]
APPENV mysql user=root port=3306
KUBEVERSION >=1.22 <1.30
LAUNCH ["nginx", "mysql", "business"]
""",
    )
    result = build(context)
    assert result.returncode == 0, result.stderr
    assert "MAINTAINER is deprecated" in result.stdout
    image = images.from_store("apps:v1")
    assert (
        image.is_application
        and image.version == ""
        and image.launch_apps
        == (
            "nginx",
            "mysql",
            "business",
        )
    )
    by_name = {app.name: app for app in image.apps}
    assert {n: a.type for n, a in by_name.items()} == {
        "nginx": "kube",
        "mysql": "helm",
        "business": "shell",
        "tool": "",
    }
    assert by_name["nginx"].launch_commands() == [
        "kubectl apply -f deploy.yml && kubectl apply -f ns.yaml"
    ]
    assert by_name["mysql"].launch_commands() == ["helm upgrade --install mysql ."]
    assert by_name["business"].launch_commands() == ["bash install.sh"]
    assert by_name["tool"].launch_commands() == ["sh -c echo tool"]
    assert by_name["mysql"].env == {"user": "root", "port": "3306"}
    rootfs = Path(image.rootfs)
    assert (rootfs / "application/apps/mysql/templates/cm.yaml").is_file()
    assert (rootfs / "application/apps/nginx/ns.yaml").is_file()
    assert (rootfs / "application/apps/business/install.sh").is_file()
    assert image.labels["maintainer"] == "platform team"
    assert image.labels["app.alpha.sealer.io/supported-kube-version"] == ">=1.22 <1.30"
    inspected = json.loads(sealer("image", "inspect", "apps:v1", "--json").stdout)
    assert inspected["kind"] == "application"
    assert [a["name"] for a in inspected["apps"]] == ["nginx", "mysql", "business", "tool"]
    assert inspected["apps"][1]["launch_commands"] == ["helm upgrade --install mysql ."]
    shown = sealer("image", "inspect", "apps:v1").stdout
    assert "mysql: helm (launched)" in shown and "tool: by APPCMDS" in shown


def test_cni_csi_cmds_and_apps_inherited_from_the_base(tmp_path):
    context = tmp_path / "ctx"
    app_context(context)
    kubefile(
        context,
        f"""FROM {IMAGES / "k3s-v1.25.3"}
CNI flannel local://nginx/ns.yaml
CSI storage local://install.sh
CMDS ["kubectl get nodes", "echo done"]
""",
    )
    assert build(context, "base-apps:v1").returncode == 0
    base = images.from_store("base-apps:v1")
    assert not base.is_application and base.runtime == "k3s"
    assert base.labels["cluster.alpha.sealer.io/kube-cni-flannel"] == "true"
    assert base.labels["cluster.alpha.sealer.io/kube-csi-storage"] == "true"
    assert base.launch_cmds == ("kubectl get nodes", "echo done") and base.launch_apps == ()

    child = tmp_path / "child"
    kubefile(child, "FROM base-apps:v1\nAPPENV flannel iface=eth0\nLAUNCH flannel\n")
    assert build(child, "child:v1").returncode == 0
    image = images.from_store("child:v1")
    assert [a.name for a in image.apps] == ["flannel", "storage"]  # apps are inherited
    assert image.launch_cmds == () and image.launch_apps == ("flannel",)  # CMDS is not
    assert image.apps[0].env == {"iface": "eth0"}


def test_remote_sources_are_fetched_and_cached_by_content(tmp_path, http_root):
    folder, base = http_root
    (folder / "dashboard.yaml").write_text("kind: Deployment\nmetadata: {name: dash}\n")
    context = tmp_path / "ctx"
    kubefile(context, f'FROM scratch\nAPP dashboard {base}/dashboard.yaml\nLAUNCH ["dashboard"]\n')
    first = build(context)
    assert first.returncode == 0, first.stderr
    rootfs = Path(images.from_store("apps:v1").rootfs)
    assert "dash" in (rootfs / "application/apps/dashboard/dashboard.yaml").read_text()
    again = build(context)  # same content at the URL: the layer comes from the cache
    assert again.returncode == 0 and "Using cache" in again.stdout
    (folder / "dashboard.yaml").write_text("kind: Deployment\nmetadata: {name: dash2}\n")
    changed = build(context)
    assert changed.returncode == 0 and "Using cache" not in changed.stdout
    rootfs = Path(images.from_store("apps:v1").rootfs)
    assert "dash2" in (rootfs / "application/apps/dashboard/dashboard.yaml").read_text()

    (folder / "dashboard.yaml").unlink()
    missing = build(context)
    assert missing.returncode == 1
    assert "3: APP" not in missing.stderr and ":2: APP: " in missing.stderr
    assert "the server answered 404" in missing.stderr and "Traceback" not in missing.stderr
    kubefile(context, "FROM scratch\nAPP d http://127.0.0.1:9/x.yaml\n")
    down = build(context)
    assert down.returncode == 1 and "cannot download" in down.stderr


def test_add_unpacks_local_archives_and_keeps_urls_as_files(tmp_path, http_root):
    folder, base = http_root
    (folder / "remote.tar").write_bytes(b"not unpacked")
    context = tmp_path / "ctx"
    context.mkdir()
    with tarfile.open(context / "bundle.tar.gz", "w:gz") as tar:
        data = b"inside\n"
        info = tarfile.TarInfo("etc/inside.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    (context / "plain.txt").write_text("plain\n")
    kubefile(
        context,
        f"FROM {IMAGES / 'k0s-v1.25.3'}\nADD bundle.tar.gz extra/\n"
        f"ADD {base}/remote.tar plain.txt extra/\n",
    )
    result = build(context)
    assert result.returncode == 0, result.stderr
    rootfs = Path(images.from_store("apps:v1").rootfs)
    assert (rootfs / "extra/etc/inside.txt").read_text() == "inside\n"
    assert (rootfs / "extra/remote.tar").read_bytes() == b"not unpacked"
    assert (rootfs / "extra/plain.txt").is_file()


def test_add_checksum_pins_a_downloaded_source(tmp_path, http_root):
    """Docker's ADD --checksum=sha256:HEX (issue 33): the right content builds, other content
    fails the build at its instruction, and the flag takes one http(s) source only."""
    import hashlib

    folder, base = http_root
    (folder / "tool").write_bytes(b"tool v1\n")
    pin = "sha256:" + hashlib.sha256(b"tool v1\n").hexdigest()
    context = tmp_path / "ctx"
    kubefile(context, f"FROM {IMAGES / 'k3s-v1.25.3'}\nADD --checksum={pin} {base}/tool bin/\n")
    assert build(context).returncode == 0
    assert (Path(images.from_store("apps:v1").rootfs) / "bin/tool").read_bytes() == b"tool v1\n"
    (folder / "tool").write_bytes(b"tool v2, swapped on the server\n")
    swapped = build(context)
    assert swapped.returncode == 1 and ":2: ADD: " in swapped.stderr
    assert "checksum mismatch" in swapped.stderr and "Traceback" not in swapped.stderr
    kubefile(context, f"FROM {IMAGES / 'k3s-v1.25.3'}\nADD --checksum={pin} local.txt bin/\n")
    local = build(context)
    assert local.returncode == 1 and "--checksum takes one http(s) source" in local.stderr


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "FROM scratch\nAPP web nginx.yaml\n",
            "2: APP: source 'nginx.yaml' must start with local://",
        ),
        ("FROM scratch\nAPP Web! local://a\n", "2: APP: 'Web!' is not a valid app name"),
        ("FROM scratch\nAPP web\n", "2: APP: needs a name and its sources"),
        ('FROM scratch\nLAUNCH ["web"]\nENV A=1\n', "2: LAUNCH must be the last instruction"),
        ('FROM scratch\nCMDS ["echo", 1]\n', "2: CMDS: expected a non-empty JSON list of strings"),
        ("FROM scratch\nAPPCMDS web echo\n", "2: APPCMDS: expected a JSON list of strings"),
        ('FROM scratch\nCMD echo\nLAUNCH ["a"]\n', "2: CMD and LAUNCH (line 3) exclude each other"),
        ("FROM scratch\nKUBEVERSION banana\n", "2: KUBEVERSION: 'banana' is not a SemVer range"),
        ('FROM scratch\nLAUNCH ["web"]\n', "2: LAUNCH: no app named 'web'"),
        ('FROM scratch\nAPPCMDS web ["x"]\n', "2: APPCMDS: no app named 'web'"),
        ("FROM scratch\nAPP tool local://tool.bin\n", "app 'tool': its files are neither"),
    ],
)
def test_app_instruction_errors_name_the_line(tmp_path, text, message):
    context = tmp_path / "ctx"
    app_context(context)
    path = kubefile(context, text)
    result = build(context)
    assert result.returncode == 1
    assert result.stderr.startswith(str(path)) and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_copy_knows_arch_and_type_is_checked_on_an_unchanged_build(tmp_path):
    import platform

    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    context = tmp_path / "ctx"
    (context / arch).mkdir(parents=True)
    (context / arch / "tool").write_text("bin\n")
    kubefile(context, f"FROM {IMAGES / 'k3s-v1.25.3'}\nCOPY ${{ARCH}}/tool bin/\n")
    assert build(context).returncode == 0
    assert (Path(images.from_store("apps:v1").rootfs) / "bin" / "tool").read_text() == "bin\n"
    again = sealer("build", "-t", "apps:v1", "--type", "app-installer", str(context))
    assert again.returncode == 1 and "--type app-installer, but FROM" in again.stderr
