"""Errors a newcomer meets say what to do next (issue 29): a missing image names the commands
that bring it, a host that does not answer names who and what was tried, and a command that
needs root says so before doing anything."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from cluster.model import SSH
from executors.driver import HostError, Remote, Timeouts
from tests.helpers import ROOT, sealer


def test_an_image_missing_from_the_store_names_the_commands_that_bring_it():
    result = sealer("image", "inspect", "kubernetes:v9.9.9")
    assert result.returncode == 1
    line = result.stderr.strip()
    assert "'kubernetes:v9.9.9' is not in the local store" in line
    assert "sealer image load PATH --name kubernetes:v9.9.9" in line
    assert "sealer build -t kubernetes:v9.9.9 CONTEXT" in line
    assert "\n" not in line and "Traceback" not in line


def test_a_host_that_does_not_answer_names_the_address_user_and_key_tried():
    with socket.socket() as closed:  # a port nothing listens on: connection refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    remote = Remote(
        "127.0.0.1",
        SSH(user="deploy", port=port, key_file="/keys/id_ed25519", password="s3cret-pw"),
        Timeouts(connect=2, retries=0),
    )
    with pytest.raises(HostError) as caught:
        remote.run("true")
    message = str(caught.value)
    assert message.startswith(f"127.0.0.1: cannot connect over SSH on port {port}: ")
    assert f"tried deploy@127.0.0.1:{port} with key /keys/id_ed25519 and a password" in message
    assert "s3cret-pw" not in message


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_a_build_with_run_says_it_needs_root_before_its_first_step():
    # Outside pytest's 0700 temporary folders: the user `nobody` must reach these.
    with tempfile.TemporaryDirectory(prefix="sealer-nonroot-") as folder:
        _build_as_nobody(Path(folder))


def _build_as_nobody(folder: Path) -> None:
    context, home = folder / "context", folder / "home"
    context.mkdir()
    home.mkdir()
    (context / "Kubefile").write_text("FROM scratch\nCOPY Kubefile .\nRUN echo hi\n")
    for path in (folder, context, home):
        path.chmod(0o777)
    (context / "Kubefile").chmod(0o644)
    result = subprocess.run(
        # nobody, who may still read every file (the project may sit in root's 0700 home)
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search",
         sys.executable, "-m", "sealer_cli.main", "build", "-t", "x:v1", str(context)],
        env={**os.environ, "SEALER_HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1"},
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip() == (
        f"Error: {context / 'Kubefile'}:3: RUN needs root and Linux namespaces (unshare) to "
        "isolate the command; run sealer build as root"
    )
    assert "Step 1" not in result.stdout  # nothing was done
