from __future__ import annotations

import pytest

from tests.helpers import make_image


@pytest.fixture(autouse=True)
def sealer_home(tmp_path, monkeypatch):
    """Every test gets its own SEALER_HOME; nothing leaks into ~/.sealer."""
    home = tmp_path / "sealer-home"
    monkeypatch.setenv("SEALER_HOME", str(home))
    monkeypatch.delenv("SEALER_STATE", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    return home


@pytest.fixture
def image(tmp_path):
    return make_image(tmp_path / "image")
