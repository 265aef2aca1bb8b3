"""User-facing error types.

Every error a user can cause (bad file, missing checkpoint, wrong shape) is raised as a
:class:`MedFusionError` whose message is one clear sentence; the UI and CLI show that message
instead of a traceback.
"""

from __future__ import annotations


class MedFusionError(Exception):
    """Base class: ``str(err)`` is a complete, user-readable sentence."""


class ImageReadError(MedFusionError):
    """A file or folder could not be read as a medical image."""


class UnsupportedInputError(ImageReadError):
    """The input is readable but not an image we can show (e.g. a DICOM SR, an RT plan)."""


class SeriesSelectionRequired(MedFusionError):
    """A folder holds several series; the caller must choose one (see ``series`` attribute)."""

    def __init__(self, message: str, series: list) -> None:  # list[SeriesInfo]
        super().__init__(message)
        self.series = series


class ModelLoadError(MedFusionError):
    """A model checkpoint is missing, corrupted (sha256 mismatch) or of the wrong architecture."""


class InvalidPromptError(MedFusionError):
    """A segmentation prompt lies outside the image or is degenerate."""


class EHRDataError(MedFusionError):
    """EHR/cohort table is malformed."""


class Cancelled(MedFusionError):
    """The user cancelled a long operation."""

    def __init__(self, message: str = "Operation cancelled.") -> None:
        super().__init__(message)
