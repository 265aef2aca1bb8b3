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
    # ... and away from the user's OS keyring (Settings.save stores the PACS password there when it can);
    # tests that exercise the keyring install an in-memory backend of their own.
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    try:
        import keyring
        from keyring.backends import fail

        keyring.set_keyring(fail.Keyring())
    except ImportError:
        pass


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


@pytest.fixture(scope="session")
def foreign_liver_seg() -> tuple[Path, object, object]:
    """pydicom-data's ``liver.dcm`` (a SEG from another tool) and a 5-slice 1 mm grid whose slices 1–3 it covers.

    Returns ``(path, dataset, reference Volume)``; skips when pydicom-data is not installed.
    """
    import warnings

    import numpy as np
    import pydicom

    from inference.io.volume import Volume

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pydicom.data import get_testdata_file

        path = get_testdata_file("liver.dcm")
    if path is None:
        pytest.skip("pydicom-data's liver.dcm is not installed")
    ds = pydicom.dcmread(path)
    spacing = [float(v) for v in ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing]
    first = ds.PerFrameFunctionalGroupsSequence[0].PlanePositionSequence[0].ImagePositionPatient
    # Reference grid: 5 slices 1 mm apart starting one slice below the SEG's first frame.
    origin = (float(first[0]), float(first[1]), float(first[2]) - 1.0)
    reference = Volume(np.zeros((5, 512, 512), np.float32), spacing=(spacing[1], spacing[0], 1.0), origin=origin)
    return Path(path), ds, reference
