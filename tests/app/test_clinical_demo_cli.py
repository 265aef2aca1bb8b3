"""``main.py demo --headless``: CT screenshots (unchanged) plus the clinical demo case panels."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.clinical_install import DEMO_CASE
from app.launch import DEMO_CT
from cli.main import main

pytestmark = pytest.mark.skipif(not (DEMO_CASE.is_dir() and DEMO_CT.exists()), reason="demo data not bundled")


def test_headless_demo_writes_ct_and_clinical_screenshots(tmp_path: Path) -> None:
    # own process: the demo builds (and leaves) its own QApplication + main window, as from the shell
    out = tmp_path / "shots"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "MEDFUSION_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, str(root / "main.py"), "demo", "--headless", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=root, env=env)
    assert done.returncode == 0, done.stderr
    printed = done.stdout
    for name in ("demo_axial", "demo_coronal", "demo_sagittal", "demo_3d", "demo_window",
                 "clinical_prediction", "clinical_explanation", "clinical_ehr", "clinical_timeline",
                 "clinical_audit", "clinical_overlay", "clinical_window", "clinical_tour"):
        path = out / f"{name}.png"
        assert path.is_file() and str(path) in printed, name
        pixels = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
        assert pixels.std() > 3.0, f"{name} is blank"


def test_view_refuses_missing_path(capsys) -> None:  # noqa: ANN001
    assert main(["/no/such/image.nii"]) == 2
    assert "does not exist" in capsys.readouterr().err
