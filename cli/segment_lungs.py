"""``python main.py segment IMAGE --auto-lungs --out MASK``: both lungs of a frontal chest X-ray, no prompt.

The mask holds 1 = the patient's right lung (image left on a PA/AP film), 2 = the left lung
(``--binary``: one lung mask, PNG 0/255). Kept apart from ``cli/segment.py`` (box/point prompts).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from inference.errors import InvalidPromptError, UnsupportedInputError


def run_auto_lungs(args: argparse.Namespace) -> int:
    from inference.io.loader import open_image
    from inference.io.memory_budget import MemoryBudgetExceeded, check_memory
    from inference.io.writers import save_mask
    from inference.segmentation.cxr_lungs import LABEL_NAMES, load_lung_segmenter
    from inference.settings import Settings

    if args.box is not None or args.point or args.z_range is not None:
        raise InvalidPromptError("--auto-lungs takes no prompt: drop --box, --point and --z-range.")
    settings = Settings.load()
    if settings.memory_budget_mb > 0:
        check = check_memory(args.image, settings, series_uid=args.series_uid)
        if not check.fits:
            raise MemoryBudgetExceeded(check.message(offer_downsample=False), check)
    volume = open_image(args.image, series_uid=args.series_uid)
    if volume.shape[0] != 1:
        raise UnsupportedInputError(
            f"'{args.image.name}' has {volume.shape[0]} slices: --auto-lungs needs one 2-D chest X-ray."
        )
    segmenter = load_lung_segmenter(args.device or "auto", settings)
    labels = segmenter.segment(volume.array[0])
    mask = (labels > 0).astype(np.uint8) if args.binary else labels
    save_mask(mask[np.newaxis], volume, args.out)
    counts = ", ".join(f"{name} {int((labels == value).sum())} px" for value, name in LABEL_NAMES.items())
    print(f"{counts}", file=sys.stderr)
    print(f"wrote {args.out} ({'lungs 0/255' if args.binary else '1 = right lung, 2 = left lung'})")
    return 0
