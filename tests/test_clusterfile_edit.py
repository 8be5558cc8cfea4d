"""sealer's verbs edit the Clusterfile's text: comments, order and style stay."""

from __future__ import annotations

import pytest

from cluster.clusterfile_edit import add_hosts, remove_hosts, set_image
from cluster.errors import SealerError
from cluster.model import MASTER, WORKER

TEXT = """\
# prod
apiVersion: sealer.io/v2
kind: Cluster
metadata:
  name: prod   # the state's name
spec:
  image: kubernetes:v1.25.3  # pinned
  hosts:
    - ips: [10.0.0.1]
      roles: [master]
    # workers
    - ips:
        - 10.0.1.1-10.0.1.5
      roles: [node]
---
apiVersion: sealer.io/v1
kind: Config
metadata: {name: extra}
"""


def test_scale_up_appends_to_the_group_of_the_role_and_keeps_everything_else():
    out = add_hosts(TEXT, "Clusterfile", ["10.0.0.2"], ["10.0.1.9"])
    assert "    - ips: [10.0.0.1, 10.0.0.2]\n" in out
    assert "        - 10.0.1.1-10.0.1.5\n        - 10.0.1.9\n" in out
    for kept in ("# prod", "# the state's name", "# pinned", "# workers", "kind: Config"):
        assert kept in out
    assert out.replace("10.0.0.1, 10.0.0.2", "10.0.0.1").replace("        - 10.0.1.9\n", "") == TEXT


def test_scale_up_makes_a_group_when_the_role_has_none_and_refuses_known_hosts():
    only_masters = TEXT.split("    # workers")[0] + "---\n" + TEXT.split("---\n")[1]
    out = add_hosts(only_masters, "C", [], ["10.0.2.1"])
    assert "    - ips:\n        - 10.0.2.1\n      roles:\n        - node\n" in out
    with pytest.raises(SealerError, match=r"--nodes 10\.0\.1\.3: already a host of C"):
        add_hosts(TEXT, "C", [], ["10.0.1.3"])
    with pytest.raises(SealerError, match="not an IP address"):
        add_hosts(TEXT, "C", ["nope"], [])


def test_delete_splits_a_range_and_drops_an_emptied_group():
    out = remove_hosts(TEXT, "C", ["10.0.1.1", "10.0.1.3"], "--nodes", WORKER)
    assert "        - 10.0.1.2\n        - 10.0.1.4-10.0.1.5\n" in out
    gone = remove_hosts(TEXT, "C", [f"10.0.1.{n}" for n in range(1, 6)], "--nodes", WORKER)
    assert "roles: [node]" not in gone and "10.0.1" not in gone
    assert "# prod" in gone


def test_delete_checks_the_role_and_that_the_host_is_listed():
    with pytest.raises(SealerError, match=r"--nodes 10\.0\.0\.1: not a node in C"):
        remove_hosts(TEXT, "C", ["10.0.0.1"], "--nodes", WORKER)
    with pytest.raises(SealerError, match=r"--masters 10\.0\.1\.1: not a master in C"):
        remove_hosts(TEXT, "C", ["10.0.1.1"], "--masters", MASTER)
    with pytest.raises(SealerError, match=r"10\.9\.9\.9: not a host of C"):
        remove_hosts(TEXT, "C", ["10.9.9.9"], "--nodes", None)


def test_upgrade_changes_only_the_image_and_keeps_its_comment():
    out = set_image(TEXT, "C", "kubernetes:v1.26.1")
    assert out == TEXT.replace("kubernetes:v1.25.3", "kubernetes:v1.26.1")


def test_a_file_that_is_not_yaml_or_has_no_cluster_is_refused_with_its_name():
    with pytest.raises(SealerError, match="^C: not valid YAML"):
        set_image("a: [", "C", "x")
    with pytest.raises(SealerError, match="^C: needs exactly one kind: Cluster"):
        set_image("kind: Config\n", "C", "x")
