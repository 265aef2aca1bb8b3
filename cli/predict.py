"""``python main.py predict --cohort CSV --images DIR --out PRED.csv``: outcomes for every patient.

Outcome columns in the CSV are never read (the cohort reader only parses presentation-time EHR fields).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from inference.errors import MedFusionError

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO / "resources" / "models" / "fusion"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cohort", type=Path, required=True, help="CSV with the shared metadata.csv columns")
    parser.add_argument("--images", type=Path, required=True, help="folder holding the CSV's filenames")
    parser.add_argument("--masks", type=Path, default=None, help="ROI masks as <image stem>.png (optional)")
    parser.add_argument("--modalities", choices=("both", "image", "ehr"), default="both")
    parser.add_argument("--alpha", type=float, default=0.1, help="conformal miscoverage (0.1 → 90 %% sets)")
    parser.add_argument("--tent", action="store_true", help="test-time adaptation per patient (TENT)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--cache", type=Path, default=None, help="feature cache (default: settings cache dir)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--severity-out", type=Path, default=None)


def run(args: argparse.Namespace) -> int:
    import torch

    from inference.fusion.cohort import OUTCOMES, read_cohort
    from inference.fusion.features import FeatureExtractor, load_image_and_mask
    from inference.fusion.predictor import FusionPredictor, PatientInput
    from inference.models.litemedsam import load_litemedsam
    from inference.settings import Settings

    if not 0.0 < args.alpha < 1.0:
        raise MedFusionError("--alpha must be between 0 and 1 (e.g. 0.1 for 90 % prediction sets).")
    if not args.images.is_dir():
        raise MedFusionError(f"Image folder not found: {args.images}")
    torch.set_num_threads(2)
    predictor = FusionPredictor.load(args.model)
    patients = read_cohort(args.cohort)
    extractor = None
    if args.modalities != "ehr":
        extractor = FeatureExtractor(load_litemedsam("cpu"), args.cache or Settings.load().resolved_cache_dir() / "features")
    pred_rows, sev_rows = [], []
    for i, patient in enumerate(patients):
        images = []
        if extractor is not None:
            for rec in patient.images:
                path = args.images / rec.filename
                if not path.is_file():
                    print(f"warning: {rec.filename} not found; patient {i + 1} predicted without it", file=sys.stderr)
                    continue
                mask_path = args.masks / f"{path.stem}.png" if args.masks else None
                image, mask = load_image_and_mask(path, mask_path)
                images.append((rec.filename, rec.offset, extractor(image, mask)))
        result = predictor.predict(PatientInput(patient.patient_id, patient.ehr, images), alpha=args.alpha,
                                   tent=args.tent, modalities=args.modalities)
        row = {"patientid": patient.patient_id}
        for outcome in result.outcomes:
            row[f"p_{outcome.name}"] = f"{outcome.probability:.4f}"
            row[f"set_{outcome.name}"] = outcome.set_text
        pred_rows.append(row)
        for sev in result.severity:
            g, o = sev.values["geographic_extent"], sev.values["opacity"]
            sev_rows.append({"filename": sev.filename, "geographic_extent": f"{g[0]:.3f}",
                             "geographic_extent_lo": f"{g[1]:.3f}", "geographic_extent_hi": f"{g[2]:.3f}",
                             "opacity": f"{o[0]:.3f}", "opacity_lo": f"{o[1]:.3f}", "opacity_hi": f"{o[2]:.3f}"})
    columns = ["patientid"] + [f"{p}_{o}" for o in OUTCOMES for p in ("p", "set")]
    _write(args.out, columns, pred_rows)
    if args.severity_out:
        _write(args.severity_out, ["filename", "geographic_extent", "geographic_extent_lo", "geographic_extent_hi",
                                   "opacity", "opacity_lo", "opacity_hi"], sev_rows)
    print(f"{len(pred_rows)} patients → {args.out}")
    return 0


def _write(path: Path, columns: list[str], rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
