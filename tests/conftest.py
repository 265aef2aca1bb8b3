"""Shared fixtures: paths to the team's shared data and an isolated config dir per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MEDFUSION_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session", autouse=True)
def _isolated_config_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep tests away from the user's ~/.medfusion (settings, recent files, logs, caches)."""
    os.environ["MEDFUSION_HOME"] = str(tmp_path_factory.mktemp("medfusion_home"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ct_series_dir(shared_data: Path) -> Path:
    return shared_data / "ct" / "totalseg_example_dicom"


@pytest.fixture(scope="session")
def lung1_dir(shared_data: Path) -> Path:
    return shared_data / "ct" / "lung1"


@pytest.fixture(scope="session")
def cxr_dir(shared_data: Path) -> Path:
    return shared_data / "cxr"
