"""Fine-tune the lung head on cached LiteMedSAM embeddings (encoder frozen; 2 CPU cores are enough).

``python -m inference.segmentation.cxr_lungs_train --cache /work/cache/lungs --run NAME [--epochs N]``.
Each epoch shows every training image once, as its original (30 %) or one of its cached augmented
variants. Validation (patients in the ``val`` split, originals only) picks the best epoch; the test
split is never read here. The best state goes to ``<cache>/runs/NAME/best.pt`` (full precision), from
which ``cxr_lungs_export`` makes the shipped file.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from inference.segmentation.cxr_lungs_data import LungCase, cache_path, load_cached, lung_cases
from inference.segmentation.cxr_lungs_model import LungDecoder

ORIGINAL_SHARE = 0.3


def base_decoder() -> LungDecoder:
    """A fresh lung head on the verified LiteMedSAM checkpoint (encoder not needed here)."""
    from inference.models.litemedsam import load_litemedsam

    model = load_litemedsam("cpu", runtime="eager")
    return LungDecoder(model.prompt_encoder, model.mask_decoder)


def available_versions(cache_dir: Path, case: LungCase, most: int = 64) -> list[int]:
    return [v for v in range(most) if cache_path(cache_dir, case.stem, v).exists()]


def batch_of(cache_dir: Path, items: list[tuple[LungCase, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    feats, targets = [], []
    for case, version in items:
        f, t, _ = load_cached(cache_path(cache_dir, case.stem, version))
        feats.append(torch.from_numpy(f.astype(np.float32)))
        targets.append(torch.from_numpy(t.astype(np.float32) / 255.0))
    return torch.stack(feats), torch.stack(targets)


def lung_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE on the soft targets + soft Dice per side (Dice keeps the small left lung from being neglected)."""
    logits = logits.float()
    bce = F.binary_cross_entropy_with_logits(logits, target)
    prob = torch.sigmoid(logits)
    inter = (prob * target).sum(dim=(2, 3))
    dice = (2 * inter + 1) / (prob.sum(dim=(2, 3)) + target.sum(dim=(2, 3)) + 1)
    return bce + (1 - dice).mean()


@torch.no_grad()
def validate(model: LungDecoder, cache_dir: Path, cases: list[LungCase], pool: int = 1) -> dict[str, float]:
    """Dice of lungs (union) and mean per-side Dice in the model frame (original images, threshold 0)."""
    model.eval()
    union, sides = [], []
    for case in cases:
        f, t, _ = load_cached(cache_path(cache_dir, case.stem, 0))
        logits = model(torch.from_numpy(f.astype(np.float32))[None], pool)[0]
        target = F.avg_pool2d(torch.from_numpy(t.astype(np.float32)), pool) > 127.5
        pred = (logits > model.threshold) & (logits >= logits.flip(0))  # a pixel belongs to one side
        def dice(a: torch.Tensor, b: torch.Tensor) -> float:
            s = int(a.sum()) + int(b.sum())
            return 1.0 if s == 0 else 2.0 * int((a & b).sum()) / s
        union.append(dice(pred.any(0), target.any(0)))
        sides.append(0.5 * (dice(pred[0], target[0]) + dice(pred[1], target[1])))
    model.train()
    return {"dice": float(np.mean(union)), "dice_p5": float(np.percentile(union, 5)), "side_dice": float(np.mean(sides))}


def train(cache_dir: Path, cxr_dir: Path, run: str, *, epochs: int, lr: float, batch: int, seed: int,
          splits: tuple[str, ...] = ("train",), bf16: bool = True, pool: int = 1,
          init: Path | None = None) -> Path:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    cases = [c for c in lung_cases(cxr_dir) if cache_path(cache_dir, c.stem, 0).exists()]
    train_cases = [c for c in cases if c.split in splits]
    val_cases = [c for c in cases if c.split == "val"]
    assert not any(c.split == "test" for c in train_cases)
    print(f"{len(train_cases)} training images ({'+'.join(splits)}), {len(val_cases)} validation images", flush=True)
    model = base_decoder()
    params = model.set_trainable()
    if init is not None:  # continue from an earlier stage (e.g. the pooled, cheap one)
        named = dict(model.named_parameters())
        with torch.no_grad():
            for name, value in torch.load(init, map_location="cpu", weights_only=True).items():
                named[name].copy_(value)
    token_params = [model.prompt_tokens, model.no_mask_embed]
    other = [p for p in params if all(p is not q for q in token_params)]
    optimiser = torch.optim.AdamW([{"params": other, "lr": lr}, {"params": token_params, "lr": lr * 5}],
                                  weight_decay=1e-4)
    steps_per_epoch = math.ceil(len(train_cases) / batch)
    total, warmup = epochs * steps_per_epoch, min(50, steps_per_epoch)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s / total, 1.0))))
    out = cache_dir / "runs" / run
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps({
        "epochs": epochs, "lr": lr, "batch": batch, "seed": seed, "splits": list(splits), "bf16": bf16,
        "pool": pool, "init": str(init) if init else None, "train_images": len(train_cases)}, indent=1))
    history = [{"epoch": 0, **validate(model, cache_dir, val_cases, pool)}]
    print(json.dumps(history[-1]), flush=True)
    best = history[-1]["dice"]
    for epoch in range(1, epochs + 1):
        started, losses = time.perf_counter(), []
        order = rng.permutation(len(train_cases))
        for start in range(0, len(order), batch):
            items = []
            for i in order[start : start + batch]:
                case = train_cases[int(i)]
                versions = available_versions(cache_dir, case)
                augmented = [v for v in versions if v > 0]
                use_original = not augmented or rng.random() < ORIGINAL_SHARE
                items.append((case, 0 if use_original else int(rng.choice(augmented))))
            feats, target = batch_of(cache_dir, items)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = model(feats, pool)
            loss = lung_loss(logits, F.avg_pool2d(target, pool) if pool > 1 else target)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(float(loss.detach()))
            if len(losses) % 10 == 0:
                print(f"  step {len(losses)}/{steps_per_epoch} loss {np.mean(losses[-10:]):.4f} "
                      f"({time.perf_counter() - started:.0f} s)", flush=True)
        row = {"epoch": epoch, "loss": float(np.mean(losses)), **validate(model, cache_dir, val_cases, pool),
               "seconds": round(time.perf_counter() - started)}
        history.append(row)
        print(json.dumps(row), flush=True)
        if row["dice"] >= best or "val" in splits:
            best = max(best, row["dice"])
            torch.save({n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad},
                       out / "best.pt")
        (out / "history.json").write_text(json.dumps(history, indent=1))
    return out / "best.pt"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--cxr", type=Path, required=True, help="shared/data/cxr")
    parser.add_argument("--run", required=True)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="1 on a shared machine (no spinning)")
    parser.add_argument("--with-val", action="store_true", help="also train on the val split (last epoch is kept)")
    parser.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    parser.add_argument("--pool", type=int, default=1, help="2: train on 2×2-pooled tokens (4× cheaper stage)")
    parser.add_argument("--init", type=Path, default=None, help="start from this run's best.pt")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    splits = ("train", "val") if args.with_val else ("train",)
    path = train(args.cache, args.cxr, args.run, epochs=args.epochs, lr=args.lr, batch=args.batch,
                 seed=args.seed, splits=splits, bf16=not args.fp32, pool=args.pool, init=args.init)
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
