"""``python main.py predict --cohort CSV --images DIR --out PRED.csv``: outcomes for every patient.

Outcome columns in the CSV are never read (the cohort reader only parses presentation-time EHR fields).
The table is streamed patient by patient (rows written as they are predicted), so a large cohort needs
no more memory than one patient's rows and images. An image name that is absolute or climbs out of
``--images`` is refused; a patient whose image is refused, missing or unreadable gets an ``error`` and no
prediction, the others go on, and the command exits 1 with a summary. Implausible EHR values are
treated as missing with one warning per field.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
import traceback
from pathlib import Path, PurePosixPath, PureWindowsPath

from inference.errors import ImageReadError, MedFusionError

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO / "resources" / "models" / "fusion"
SEVERITY_COLUMNS = ["filename", "geographic_extent", "geographic_extent_lo", "geographic_extent_hi",
                    "opacity", "opacity_lo", "opacity_hi"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cohort", type=Path, required=True, help="CSV with the shared metadata.csv columns")
    parser.add_argument("--images", type=Path, required=True, help="folder holding the CSV's filenames")
    parser.add_argument("--masks", type=Path, default=None,
                        help="lung masks as <image stem>.png (optional; otherwise made automatically)")
    parser.add_argument("--modalities", choices=("both", "image", "ehr"), default="both")
    parser.add_argument("--alpha", type=float, default=0.1, help="conformal miscoverage (0.1 → 90 %% sets)")
    parser.add_argument("--tent", action="store_true", help=argparse.SUPPRESS)  # kept for old scripts: no effect
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--cache", type=Path, default=None, help="feature cache (default: settings cache dir)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--severity-out", type=Path, default=None)
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def safe_image_path(images: Path, name: str) -> Path:
    """``images / name`` when ``name`` is a plain relative name that stays inside ``images``; else refused."""
    if not name or "\x00" in name:
        raise ImageReadError("An empty image name was refused.")
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or PureWindowsPath(name).drive or ".." in pure.parts:
        raise ImageReadError(f"The image name '{name}' was refused: it must be a path inside --images.")
    path = images / Path(*pure.parts)
    try:
        inside = path.resolve().is_relative_to(images.resolve())
    except (OSError, RuntimeError):
        inside = False
    if not inside:
        raise ImageReadError(f"The image name '{name}' was refused: it leads outside --images (a link?).")
    return path


def _open_writer(path: Path, columns: list[str]):  # noqa: ANN202 - (handle, writer)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "w", newline="")  # noqa: SIM115 - closed in run()
    writer = csv.DictWriter(handle, fieldnames=columns)
    writer.writeheader()
    return handle, writer


def run(args: argparse.Namespace) -> int:
    from inference.fusion.cohort import stream_patients
    from inference.fusion.outcome_model import OutcomePredictor
    from inference.settings import Settings

    if not 0.0 < args.alpha < 1.0:
        raise MedFusionError("--alpha must be between 0 and 1 (e.g. 0.1 for 90 % prediction sets).")
    if not args.images.is_dir():
        raise MedFusionError(f"Image folder not found: {args.images}")
    if args.masks is not None and not args.masks.is_dir():
        raise MedFusionError(f"Mask folder not found: {args.masks}")
    if args.tent:
        print("warning: --tent has no effect: the shipped model has no normalisation layers to adapt.", file=sys.stderr)
    predictor = OutcomePredictor.load(args.model)
    total, patients = stream_patients(args.cohort)
    builder = None
    if args.modalities != "ehr":
        from inference.fusion.case import CaseBuilder
        from inference.segmentation.cxr_lungs_shared import load_shared_lung_segmenter

        builder = CaseBuilder.from_settings(Settings.load(), args.cache, lung_segmenter=load_shared_lung_segmenter)
    columns = ["patientid"] + [f"{p}_{o}" for o in predictor.outcomes for p in ("p", "set")] + ["error"]
    out_handle, out = _open_writer(args.out, columns)
    sev_handle, sev = _open_writer(args.severity_out, SEVERITY_COLUMNS) if args.severity_out else (None, None)
    failures: list[str] = []
    done = 0
    try:
        for i, patient in enumerate(patients):
            for warning in patient.warnings:
                print(f"warning: patient {patient.patient_id}: {warning}", file=sys.stderr)
            row: dict[str, str] = {"patientid": patient.patient_id, "error": ""}
            try:
                record = _record(patient, builder, args)
                result = predictor.predict(record, alpha=args.alpha, modalities=args.modalities)
            except MedFusionError as err:
                row["error"] = str(err)
                failures.append(f"{patient.patient_id}: {err}")
                result = None
            except Exception as err:  # noqa: BLE001 - one patient's bad file must not stop the cohort
                logging.getLogger("medfusion.predict").error("patient %s\n%s", i + 1, traceback.format_exc())
                row["error"] = f"unexpected {type(err).__name__} (details in the log file)"
                failures.append(f"{patient.patient_id}: {row['error']}")
                result = None
            if result is not None:
                for outcome in result.outcomes:
                    row[f"p_{outcome.name}"] = f"{outcome.probability:.4f}"
                    row[f"set_{outcome.name}"] = outcome.set_text
                if sev is not None:
                    for s in result.severity:
                        g, o = s.values["geographic_extent"], s.values["opacity"]
                        sev.writerow({"filename": s.filename, "geographic_extent": f"{g[0]:.3f}",
                                      "geographic_extent_lo": f"{g[1]:.3f}", "geographic_extent_hi": f"{g[2]:.3f}",
                                      "opacity": f"{o[0]:.3f}", "opacity_lo": f"{o[1]:.3f}", "opacity_hi": f"{o[2]:.3f}"})
                done += 1
            out.writerow(row)
            out_handle.flush()
            if not args.quiet:
                print(f"\rpatient {i + 1}/{total}", end="" if i + 1 < total else "\n", file=sys.stderr, flush=True)
    finally:
        out_handle.close()
        if sev_handle is not None:
            sev_handle.close()
    print(f"{done} of {total} patients predicted → {args.out}")
    if failures:
        print(f"error: {len(failures)} of {total} patients could not be predicted (see the 'error' column):",
              file=sys.stderr)
        for line in failures[:20]:
            print(f"  {line}", file=sys.stderr)
        if len(failures) > 20:
            print(f"  … and {len(failures) - 20} more", file=sys.stderr)
        return 1
    return 0


def _record(patient, builder, args: argparse.Namespace):  # noqa: ANN001, ANN202 - Patient, CaseBuilder → record
    """One patient's images (validated, read, masks attached) through the case builder."""
    from inference.fusion.case import ImageInput, read_mask_file
    from inference.fusion.design import PatientRecord
    from inference.io.loader import open_image

    if builder is None:
        return PatientRecord(patient.patient_id, patient.ehr)
    images = []
    for rec in patient.images:
        path = safe_image_path(args.images, rec.filename)
        if not path.is_file():
            raise ImageReadError(f"The image '{rec.filename}' was not found in --images.")
        volume = open_image(path)
        if volume.array.ndim != 3 or volume.array.shape[0] != 1:
            raise ImageReadError(f"The image '{rec.filename}' is not a single 2-D X-ray.")
        image = volume.array[0]
        mask = read_mask_file(args.masks / f"{Path(rec.filename).stem}.png", image.shape) if args.masks else None
        images.append(ImageInput(rec.filename, rec.offset, image, mask))
    return builder.build(patient.patient_id, patient.ehr, images)
