"""Build the normal-lung reference of the explanation maps (``resources/models/fusion/normal_lung.json``).

    .venv/bin/python scripts/build_normal_lung_reference.py --data ../shared/data/cxr \
        [--embeddings DIR] [--cache DIR] [--out resources/models/fusion/normal_lung.json]

Reads the shared cohort's clear X-rays (``inference.fusion.normal_lung.select_normal_images``: finding
"No Finding" or mean geographic-extent score ≤ 1), their supplied lung mask or else the automatic lung
segmenter's, and writes the per-zone pixel quantiles and mean embeddings with their provenance.
``--embeddings``: a folder of precomputed LiteMedSAM embeddings (``<image stem>.npz`` holding ``emb``,
as in ``/work/cache/predictor/emb``), so no encoder runs; without it the encoder runs once per image.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inference.fusion.case import CaseBuilder, read_mask_file  # noqa: E402
from inference.fusion.cohort import read_rows, read_severity  # noqa: E402
from inference.fusion.normal_lung import NORMAL_EXTENT, REFERENCE_FILE, build_reference, select_normal_images  # noqa: E402
from inference.io.loader import open_image  # noqa: E402
from inference.segmentation.cxr_lungs_shared import load_shared_lung_segmenter  # noqa: E402


def cohort_builder(cache: Path | None, embeddings: Path | None, data: Path) -> CaseBuilder:
    """A case builder for the shared cohort; with ``embeddings`` every image's embedding is seeded from
    disk on first use (no encoder pass), and the automatic segmenter reads it."""
    builder = CaseBuilder(cache, lung_segmenter=load_shared_lung_segmenter)
    if embeddings is not None:
        builder._load_encoder = _no_encoder  # noqa: SLF001 - the seeded embeddings must be the only ones used
        builder._load_segmenter = lambda: load_shared_lung_segmenter("cpu", None)  # noqa: SLF001
    return builder


def _no_encoder() -> object:
    raise RuntimeError("an embedding was not precomputed")


def load_image(builder: CaseBuilder, data: Path, embeddings: Path | None, filename: str
               ) -> tuple[np.ndarray, np.ndarray | None]:
    """Pixels and supplied lung mask (or None) of one cohort image, its embedding seeded when given."""
    pixels = open_image(data / "images" / filename).array[0]
    if embeddings is not None:
        builder.remember_embedding(pixels, np.load(embeddings / f"{Path(filename).stem}.npz")["emb"].astype(np.float32))
    return pixels, read_mask_file(data / "lung_masks" / f"{Path(filename).stem}.png", pixels.shape)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "cxr")
    parser.add_argument("--embeddings", type=Path)
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--out", type=Path, default=REPO / "resources" / "models" / "fusion" / REFERENCE_FILE)
    args = parser.parse_args(argv)
    rows = read_rows(args.data / "metadata.csv")
    names = select_normal_images(rows, read_severity(args.data / "severity_scores.csv"))
    builder = cohort_builder(args.cache, args.embeddings, args.data)
    items, sources = [], {"supplied": 0, "auto": 0, "none": 0}
    for name in names:
        pixels, mask = load_image(builder, args.data, args.embeddings, name)
        parts = builder.image_parts(pixels, mask)
        sources[parts.source] += 1
        if parts.frame_lungs is not None:
            items.append((parts.frame, parts.embedding, parts.frame_lungs))
    patients = sorted({r["patientid"] for r in rows if r.get("filename") in set(names)})
    metadata_sha = hashlib.sha256((args.data / "metadata.csv").read_bytes()).hexdigest()
    provenance = {
        "built_by": "scripts/build_normal_lung_reference.py",
        "built_on": datetime.date.today().isoformat(),
        "data": "shared cohort cxr/ (split 'dev'; the held-out patients are never read)",
        "metadata_sha256": metadata_sha,
        "selection": f"finding 'No Finding' or mean geographic-extent score <= {NORMAL_EXTENT} of 8 "
                     "(severity_scores.csv)",
        "images_selected": len(names), "patients": len(patients), "lung_masks": sources,
        "encoder": builder.encoder_id, "pixel_unit": "lung pixel / soft-tissue level (lung_features.soft_tissue_level)",
        "filenames": names,
    }
    reference = build_reference(items, provenance)
    reference.save(args.out)
    print(f"wrote {args.out}: {len(items)} images of {len(patients)} patients; masks {sources}")
    print("median ratio per zone:", dict(zip(reference.provenance["images_per_zone"],
                                              reference.pixel_quantiles[:, 10].round(3), strict=True)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
