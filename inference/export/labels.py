"""The label table row shared by the viewer, SEG export and saved sessions.

Kept apart from :mod:`inference.export.seg` so that autosave (which runs after every gesture) does not
import highdicom.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class SegmentLabel:
    """One row of the label table (what the UI shows and what goes into a SEG segment)."""

    value: int
    name: str
    colour: tuple[int, int, int] = (255, 0, 0)
    algorithm_type: str = "MANUAL"  # AI | MANUAL | AI-corrected
    algorithm_name: str = ""
    algorithm_version: str = ""
    # (code value, scheme, meaning); None: guessed from the name by the SEG writer.
    category: tuple[str, str, str] | None = None
    property_type: tuple[str, str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SegmentLabel:
        def triple(v: Any) -> tuple[str, str, str] | None:
            return (str(v[0]), str(v[1]), str(v[2])) if v else None

        return cls(value=int(raw["value"]), name=str(raw["name"]),
                   colour=tuple(int(c) for c in raw.get("colour", (255, 0, 0)))[:3],  # type: ignore[arg-type]
                   algorithm_type=str(raw.get("algorithm_type", "MANUAL")),
                   algorithm_name=str(raw.get("algorithm_name", "")),
                   algorithm_version=str(raw.get("algorithm_version", "")),
                   category=triple(raw.get("category")), property_type=triple(raw.get("property_type")))
