"""Open defects in other modules, found by the corpus: case-id patterns → precise description.

Cases matching a pattern are strict xfails: when the owner fixes the defect the case passes, the
test reports XPASS(strict) and the entry must be deleted here. Keep in sync with docs/robustness.md.
"""

from __future__ import annotations

from fnmatch import fnmatch

D_RESCALE_TEXT = ("io/dicom_pixels.rescale_params: a RescaleSlope/RescaleIntercept that is not a number (DS 'abc', "
                  "LO '1.0 units', binary bytes read through implicit VR) escapes as unhandled ValueError "
                  "'could not convert string to float'; expected ImageReadError naming the tag (or identity + warning)")
D_FRAMES_TEXT = ("io/dicom_reader.read_file/read_series + dicom_scan: NumberOfFrames that is not an integer "
                 "('1 units', 'n/a', binary bytes via implicit VR) escapes as unhandled ValueError 'invalid literal "
                 "for int()'; expected ImageReadError naming NumberOfFrames")
D_RESCALE_NONFINITE = ("io/dicom_pixels: RescaleSlope/RescaleIntercept of NaN or Inf are applied as is, so the Volume "
                       "holds NaN/Inf voxels (breaks windowing, models); expected ImageReadError naming the tag, or "
                       "identity + warning")
D_PALETTE = ("io/dicom_pixels._to_gray: PALETTE COLOR without a palette LUT escapes as unhandled ValueError 'No "
             "suitable Palette Color Lookup Table Module found' (apply_color_lut is outside the try); expected "
             "ImageReadError/UnsupportedInputError")
D_UNKNOWN_SYNTAX = ("io/dicom_pixels.check_decoder: a transfer syntax UID pydicom does not know (private/unknown "
                    "'1.2.840.10008.9.9.9.999', JPEG XL '1.2.840.10008.1.2.4.110') escapes as unhandled ValueError "
                    "'UID is not a transfer syntax.' from uid.is_compressed; expected MissingDecoderError naming the UID")
D_DEGENERATE_IOP = ("io/dicom_geometry.direction_from_orientation: ImageOrientationPatient all zero / row = column / "
                    "not orthogonal gives a NaN or non-orthonormal direction (single file: returned as is; series: "
                    "stacked without error); expected ImageReadError naming ImageOrientationPatient for a series, "
                    "identity + warning for a single slice")
D_HUGE_SERIES = ("io/dicom_reader.read_series: allocates np.empty((n, Rows, Columns)) from the header before any "
                 "pixel data is checked, so a series whose header claims e.g. 60000x60000 raises unhandled "
                 "MemoryError (or commits tens of GB); expected ImageReadError (pixel data length does not match "
                 "Rows/Columns) before allocating")
D_PNG_BOMB = ("io/raster.read_raster and io/loader.estimate_bytes catch only OSError/UnidentifiedImageError: a PNG whose "
              "header claims > 178 M pixels raises unhandled PIL.Image.DecompressionBombError, so neither open_image "
              "nor the memory guard's estimate can refuse it cleanly; expected ImageReadError ('too large')")
D_NIFTI_NONFINITE = ("io/sitk_io: SimpleITK's NIfTI reader turns NaN/Inf into 0 before replace_nonfinite sees them: no "
                     "warning, no meta['nonfinite_replaced'], values 0 instead of the minimum, and an all-NaN file "
                     "reads as zeros instead of 'contains no finite values' (the NRRD path is correct); documented "
                     "behaviour in docs/dev/io.md is not met for NIfTI")
D_NIFTI_SHORT = ("io/sitk_io.read_itk_image: a .nii/.nii.gz with a complete header but truncated voxel data reads "
                 "without error, the missing voxels silently 0; expected ImageReadError 'could not be read ... corrupt'")
D_TRUNC_MESSAGE = ("io/dicom_scan.looks_truncated: a file cut inside the dataset header (SOPClassUID cut short, Rows "
                   "missing) is reported as 'a non-image object (modality unknown)' instead of 'truncated or corrupt'")

D_LAZY_ELEMENT = ("io/dicom_reader, dicom_geometry, dicom_scan: pydicom converts element values lazily, so a "
                  "corrupted element (e.g. VR bytes 'UI' → 'U\\0' in explicit VR) passes dcmread and then raises on "
                  "first access (NotImplementedError 'Unknown Value Representation', ValueError, ...) from ds.get() "
                  "calls outside any try (study_info, plane_info, rescale...); expected ImageReadError 'truncated or "
                  "corrupt' (e.g. ds.decode()/touch all elements inside the read's try)")

D_PHI_IN_MESSAGE = ("io/loader._open_dicom_file (and dicom_scan's non-image count): the Modality value is put into "
                    "the error message unsanitised; when a corrupt length makes Modality swallow the following "
                    "elements, UnsupportedInputError reads \"is a non-image object (modality CT\\x08\\x00>... "
                    "Robust^Rita ... RC-778899 ...)\" — raw header bytes and the patient's NAME and ID in a user-facing "
                    "message (CLI stderr, dialogs, logs); expected 'truncated or corrupt' and never header values")

D_LABELS_GARBAGE = ("fusion/cohort.patient_labels (_yes_no): any non-empty outcome cell other than the positive "
                    "letter becomes a NEGATIVE label — 'yes', '1', 'maybe', '?', '0' in went_icu/intubated/"
                    "needed_supplemental_O2 (and 'yes'/'1' in survival, i.e. not dead) → 0.0; training labels are "
                    "silently wrong (for 'yes'/'1' inverted); expected NaN (unknown) or EHRDataError naming the column")
D_CSV_BOM = ("fusion/cohort.read_rows opens with encoding='utf-8' (not 'utf-8-sig'): a cohort CSV saved with a UTF-8 "
             "BOM (Excel 'CSV UTF-8') has header '\\ufeffpatientid' and is refused with EHRDataError \"has no "
             "'patientid' column\"; expected to read normally")

KNOWN: list[tuple[str, str]] = [
    ("tags/rescaleslope-text/*", D_RESCALE_TEXT), ("tags/rescaleintercept-text/*", D_RESCALE_TEXT),
    ("vr/RescaleSlope-as-LO/*", D_RESCALE_TEXT), ("vr/RescaleIntercept-as-LO/*", D_RESCALE_TEXT),
    ("vr/RescaleSlope-as-SH/*", D_RESCALE_TEXT), ("vr/RescaleIntercept-as-SH/*", D_RESCALE_TEXT),
    ("vr/RescaleSlope-as-US/implicit", D_RESCALE_TEXT), ("vr/RescaleSlope-as-SL/implicit", D_RESCALE_TEXT),
    ("vr/RescaleSlope-as-FD/implicit", D_RESCALE_TEXT), ("vr/RescaleIntercept-as-US/implicit", D_RESCALE_TEXT),
    ("vr/RescaleIntercept-as-SL/implicit", D_RESCALE_TEXT), ("vr/RescaleIntercept-as-FD/implicit", D_RESCALE_TEXT),
    ("vr/NumberOfFrames-as-LO/*", D_FRAMES_TEXT), ("vr/NumberOfFrames-as-SH/*", D_FRAMES_TEXT),
    ("vr/NumberOfFrames-as-US/implicit", D_FRAMES_TEXT), ("vr/NumberOfFrames-as-SL/implicit", D_FRAMES_TEXT),
    ("vr/NumberOfFrames-as-FD/implicit", D_FRAMES_TEXT),
    ("tags/rescaleslope-nan/*", D_RESCALE_NONFINITE), ("tags/rescaleslope-inf/*", D_RESCALE_NONFINITE),
    ("tags/rescaleintercept-nan/*", D_RESCALE_NONFINITE), ("tags/rescaleintercept-inf/*", D_RESCALE_NONFINITE),
    ("tags/photometric-palette-no-lut/*", D_PALETTE), ("colour/palette", D_PALETTE),
    ("compressed/no-decoder-jpegxl-*", D_UNKNOWN_SYNTAX), ("compressed/no-decoder-unknown-uid-*", D_UNKNOWN_SYNTAX),
    ("tags/orientation-all-zero/single", D_DEGENERATE_IOP), ("tags/orientation-all-zero/series-all", D_DEGENERATE_IOP),
    ("tags/orientation-colinear/single", D_DEGENERATE_IOP), ("tags/orientation-colinear/series-all", D_DEGENERATE_IOP),
    ("tags/orientation-not-orthogonal/single", D_DEGENERATE_IOP),
    ("tags/orientation-not-orthogonal/series-all", D_DEGENERATE_IOP),
    ("dims/gigantic-60000x60000-series-open", D_HUGE_SERIES), ("dims/gigantic-65535x65535-series-open", D_HUGE_SERIES),
    ("dims/gigantic-40000x50000-series-open", D_HUGE_SERIES), ("dims/gigantic-20000x30000-series-open", D_HUGE_SERIES),
    ("dims/gigantic-20000x30000-series-guarded", D_HUGE_SERIES),
    ("raster/gigantic-header-*", D_PNG_BOMB),
    # D_NIFTI_NONFINITE is attached in cases_files._nonfinite_case (only where the shown volume has NaN/Inf)
    ("nifti/truncated-348*", D_NIFTI_SHORT), ("nifti/truncated-352*", D_NIFTI_SHORT),
    ("nifti/truncated-400*", D_NIFTI_SHORT), ("nifti/truncated-600*", D_NIFTI_SHORT),
    ("truncated/ct-cut-00330", D_TRUNC_MESSAGE), ("truncated/ct-cut-00350", D_TRUNC_MESSAGE),
    ("truncated/cr-cut-00334", D_TRUNC_MESSAGE),
    ("vr/corrupt-vr-bytes-*", D_LAZY_ELEMENT),
    ("lengths/fuzz-found-*", D_PHI_IN_MESSAGE),
]


def defect_for(case_id: str) -> str:
    """The open defect a case is known to hit, or ``''``."""
    for pattern, reason in KNOWN:
        if fnmatch(case_id, pattern):
            return reason
    return ""
