"""Check of the normal-lung map's shortcut against the real counterfactual → ``docs/results.md``.

    nice -n 10 .venv/bin/python scripts/explanation_reencode_check.py --data ../shared/data/cxr \
        --embeddings /work/cache/predictor/emb --cache DIR [--cells-xrays 12] [--deletion-xrays 10]

The shipped map makes a lung cell normal in its *pixels* and keeps the X-ray's encoder vectors (P); the
variant also splices the reference's encoder vectors in (S). The real counterfactual (T) re-encodes the
changed X-ray with LiteMedSAM (one encoder pass, ~2 s on these CPUs, per change). On the first X-ray of
random dev patients (outcome ICU, shipped 'both' head):

1. cells: T vs P vs S attributions of 6 random cells per X-ray, and of the whole lungs made normal;
2. deletion under T: the top-first order of each map (earlier lung occlusion, P, S) and one random
   order, 5 steps, on X-rays of patients with a predicted risk ≥ 0.5.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from build_normal_lung_reference import cohort_builder, load_image  # noqa: E402

from inference.explain.anatomy import cells_by_attribution, deletion_curve, scored_cells  # noqa: E402
from inference.fusion.case import ImageInput  # noqa: E402
from inference.fusion.cohort import read_cohort  # noqa: E402
from inference.fusion.lung_features import compute_image_features  # noqa: E402
from inference.fusion.normal_lung import NormalisableImage, NormalLungReference  # noqa: E402
from inference.fusion.outcome_model import OutcomePredictor  # noqa: E402
from inference.fusion.service import OCCLUSION_CELL, OutcomeService, _replace_image  # noqa: E402
from inference.models.device import select_device  # noqa: E402
from inference.models.litemedsam import encode, load_litemedsam  # noqa: E402
from inference.models.preprocess import MODEL_SIDE  # noqa: E402

MODEL_DIR = REPO / "resources" / "models" / "fusion"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "cxr")
    parser.add_argument("--embeddings", type=Path)
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--cells-xrays", type=int, default=12)
    parser.add_argument("--deletion-xrays", type=int, default=10)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    predictor = OutcomePredictor.load(MODEL_DIR)
    builder = cohort_builder(args.cache, args.embeddings, args.data)
    builder._memory_items = 64  # noqa: SLF001
    reference = NormalLungReference.load(MODEL_DIR / "normal_lung.json")
    encoder = load_litemedsam(select_device("cpu"), runtime="fused")
    services = {"lung occlusion": OutcomeService(predictor, builder),
                "pixels (P)": OutcomeService(predictor, builder, reference, replace_embedding=False),
                "pixels + encoder vectors (S)": OutcomeService(predictor, builder, reference, replace_embedding=True)}
    patients = read_cohort(args.data / "metadata.csv")

    def encode_frame(frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape
        t = F.pad(torch.from_numpy(np.ascontiguousarray(frame, np.float32))[None, None], (0, MODEL_SIDE - w, 0, MODEL_SIDE - h))
        with torch.no_grad():
            return encode(encoder, t.expand(1, 3, MODEL_SIDE, MODEL_SIDE).contiguous())[0].numpy()

    def first_xray(patient, min_risk: float):  # noqa: ANN001, ANN202
        images = []
        for im in patient.images:
            pixels, mask = load_image(builder, args.data, args.embeddings, im.filename)
            images.append(ImageInput(im.filename, im.offset, pixels, mask))
        seen, mod = predictor.effective(builder.build(patient.patient_id, patient.ehr, images), "both")
        head = predictor.head("went_icu", mod)
        if "image" not in head.model.spec.blocks:
            return None
        encoders = predictor.encoders_for(mod)

        def logit(rec, head=head, encoders=encoders) -> float:  # noqa: ANN001
            return float(head.model.logits([rec], encoders)[0])

        if head.probability(np.array([logit(seen)]))[0] < min_risk:
            return None
        image = next(im for im in images if im.filename == seen.filenames[0])
        parts = builder.image_parts(image.image, image.mask)
        return None if parts.frame_lungs is None else (seen, parts, logit)

    # 1. cells and whole lungs: T vs P vs S
    rng = np.random.default_rng(1)
    cells_rows, whole_rows, t0 = [], [], time.time()
    for i in rng.permutation(len(patients)):
        if len(whole_rows) >= args.cells_xrays:
            break
        found = first_xray(patients[i], 0.0)
        if found is None:
            continue
        seen, parts, logit = found
        lungs = parts.frame_lungs
        spliced = NormalisableImage(reference, parts.frame, parts.embedding, lungs, parts.source, replace_embedding=True)

        def with_features(features, seen=seen, logit=logit) -> float:  # noqa: ANN001
            return logit(_replace_image(seen, 0, features))

        base_s = with_features(spliced.features(np.zeros_like(lungs)))
        base_t = with_features(compute_image_features(parts.frame, encode_frame(parts.frame), lungs, parts.source))
        cells = scored_cells(lungs, OCCLUSION_CELL, 0.2)
        masks = []
        for k in rng.choice(len(cells), size=min(6, len(cells)), replace=False):
            r, c = cells[k]
            m = np.zeros_like(lungs)
            m[r:r + OCCLUSION_CELL, c:c + OCCLUSION_CELL] = True
            masks.append(m & lungs)
        for k, m in enumerate([*masks, lungs.copy()]):
            frame = spliced.normal_frame(m)
            a_t = base_t - with_features(compute_image_features(frame, encode_frame(frame), lungs, parts.source))
            a_p = base_s - with_features(compute_image_features(frame, spliced.embedding, lungs, parts.source))
            a_s = base_s - with_features(spliced.features(m))
            (whole_rows if k == len(masks) else cells_rows).append((a_t, a_p, a_s))
        print(f"cells: {len(whole_rows)} X-rays, {time.time() - t0:.0f} s", flush=True)
    a, w = np.array(cells_rows), np.array(whole_rows)
    print(f"cells n={len(a)}: Spearman T~P {stats.spearmanr(a[:, 0], a[:, 1]).statistic:.2f}, "
          f"T~S {stats.spearmanr(a[:, 0], a[:, 2]).statistic:.2f}; mean |T−P| {np.abs(a[:, 0] - a[:, 1]).mean():.3f}, "
          f"|T−S| {np.abs(a[:, 0] - a[:, 2]).mean():.3f}, mean |T| {np.abs(a[:, 0]).mean():.3f}")
    print(f"whole lungs n={len(w)}: mean T {w[:, 0].mean():.2f}, P {w[:, 1].mean():.2f}, S {w[:, 2].mean():.2f}; "
          f"Pearson T~P {np.corrcoef(w[:, 0], w[:, 1])[0, 1]:.2f}, T~S {np.corrcoef(w[:, 0], w[:, 2])[0, 1]:.2f}")

    # 2. deletion under the re-encoded counterfactual
    rng = np.random.default_rng(2)
    drops: dict[str, list[float]] = {name: [] for name in [*services, "random"]}
    for i in rng.permutation(len(patients)):
        if len(drops["random"]) >= args.deletion_xrays:
            break
        found = first_xray(patients[i], 0.5)
        if found is None:
            continue
        seen, parts, logit = found
        lungs = parts.frame_lungs
        image = NormalisableImage(reference, parts.frame, parts.embedding, lungs, parts.source)

        def true_logit(changed: np.ndarray, seen=seen, parts=parts, image=image, logit=logit) -> float:  # noqa: ANN001
            frame = image.normal_frame(changed)
            return logit(_replace_image(seen, 0, compute_image_features(frame, encode_frame(frame), parts.frame_lungs,
                                                                        parts.source)))

        cells = scored_cells(lungs, OCCLUSION_CELL, 0.2)
        orders = {name: cells_by_attribution(s.image_attribution(seen, 0, parts, logit), lungs, OCCLUSION_CELL)
                  for name, s in services.items()}
        orders["random"] = [cells[j] for j in rng.permutation(len(cells))]
        for name, order in orders.items():
            curve = deletion_curve(true_logit, lungs, order, OCCLUSION_CELL, 5)
            drops[name].append(float((curve[1:] - curve[0]).mean()))
        print(f"deletion: {len(drops['random'])} X-rays, {time.time() - t0:.0f} s", flush=True)
    rand = np.array(drops["random"])
    for name, values in drops.items():
        v = np.array(values)
        print(f"deletion under re-encoding, {name}: mean logit change {v.mean():+.2f}, below random in "
              f"{np.sum(v < rand)}/{len(v)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
