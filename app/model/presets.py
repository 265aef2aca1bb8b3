"""Window/level presets a radiologist expects (window width, level centre)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WindowPreset:
    name: str
    window: float
    level: float
    shortcut: str = ""


PRESETS: tuple[WindowPreset, ...] = (
    WindowPreset("Lung", 1500.0, -600.0, "1"),
    WindowPreset("Mediastinum", 400.0, 40.0, "2"),
    WindowPreset("Bone", 1800.0, 400.0, "3"),
    WindowPreset("Brain", 80.0, 40.0, "4"),
    WindowPreset("Abdomen", 350.0, 50.0, "5"),
    WindowPreset("PET SUV 0-5", 5.0, 2.5, "6"),
)
