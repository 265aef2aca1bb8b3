"""Calibration, conformal prediction and evaluation metrics for outcome predictions.

Pure numpy/scipy so that training, the CLI and the app share one implementation.
"""

from __future__ import annotations
