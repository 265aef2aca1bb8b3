"""``python main.py segment IMAGE --box X0 Y0 X1 Y1 [--slice Z] [--z-range Z0 Z1] ... --out MASK``.

Headless box/point segmentation (also used to check quality on held-out data). Coordinates are pixels
``(x = column, y = row)`` of slice ``Z``; ``Z`` indexes the image's slice axis in the order the reader
returns it (NRRD/NIfTI: the file's third axis; DICOM: slices sorted along the scan direction), i.e.
axis 0 of ``Volume.array``. ``Z``, ``--z-range`` and the pixel coordinates are 0-based array indices
(what numpy, ITK and scripts use); the viewer numbers slices and voxels from 1 for people, so the
viewer's "Axial 34/48" is ``--slice 33``. With ``--z-range`` the mask is propagated slice by slice through that range;
otherwise only slice ``Z`` is segmented. The mask is written in the input's geometry (NRRD/NIfTI for
volumes, PNG 0/255 for 2-D images).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from inference.errors import InvalidPromptError, UnsupportedInputError
from inference.io.loader import open_image
from inference.io.memory_budget import MemoryBudgetExceeded, check_memory
from inference.io.writers import save_mask
from inference.segmentation.cache import EmbeddingCache
from inference.segmentation.factory import BACKENDS, create_backend
from inference.segmentation.session import SegmentationSession
from inference.settings import Settings

_MASK_SUFFIXES = (".nrrd", ".nii", ".nii.gz", ".png", ".mha")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", type=Path, help="DICOM folder/file, NIfTI, NRRD, PNG or JPEG")
    parser.add_argument("--box", type=float, nargs=4, metavar=("X0", "Y0", "X1", "Y1"), help="box in pixels")
    parser.add_argument(
        "--slice", type=int, default=None, metavar="Z",
        help="0-based slice index: the viewer's slice Z+1 (default: 0 for 2-D)"
    )
    parser.add_argument("--z-range", type=int, nargs=2, metavar=("Z0", "Z1"), help="propagate through Z0..Z1")
    parser.add_argument(
        "--point", type=float, nargs=3, action="append", default=[], metavar=("X", "Y", "L"),
        help="click at (X, Y); L = 1 include, 0 exclude (repeatable)",
    )  # fmt: skip
    parser.add_argument("--backend", choices=BACKENDS, default=None, help="default: from settings")
    parser.add_argument(
        "--window", type=float, nargs=2, metavar=("LEVEL", "WIDTH"), help="CT window for the model"
    )
    parser.add_argument("--series-uid", default=None, help="series to use when a DICOM folder holds several")
    parser.add_argument("--device", default=None, help="auto | cpu | cuda (default: from settings)")
    parser.add_argument("--label", default="object", help="label name")
    parser.add_argument("--out", type=Path, required=True, help="mask file: .nrrd, .nii(.gz) or .png")
    parser.add_argument("--auto-lungs", action="store_true",
                        help="chest X-ray: both lungs without a prompt (1 = right lung, 2 = left lung)")
    parser.add_argument("--binary", action="store_true", help="with --auto-lungs: one lung mask (0/255 in PNG)")


def _mask_suffix_ok(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in _MASK_SUFFIXES)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "auto_lungs", False):
        if not _mask_suffix_ok(args.out):
            raise UnsupportedInputError(f"Masks can be saved as .nrrd, .nii, .nii.gz or .png, not '{args.out.name}'.")
        from cli.segment_lungs import run_auto_lungs

        return run_auto_lungs(args)
    if args.box is None and not args.point:
        raise InvalidPromptError("Give a prompt: --box X0 Y0 X1 Y1 and/or --point X Y 1|0.")
    if not _mask_suffix_ok(args.out):
        raise UnsupportedInputError(
            f"Masks can be saved as .nrrd, .nii, .nii.gz or .png, not '{args.out.name}'."
        )
    for _, _, lab in args.point:
        if lab not in (0.0, 1.0):
            raise InvalidPromptError("A point's label must be 1 (include) or 0 (exclude).")
    numbers = [*(args.box or []), *(v for x, y, _ in args.point for v in (x, y))]
    if not all(math.isfinite(v) for v in numbers):  # refused before the model loads ("nan" parses as a float)
        raise InvalidPromptError("Box and point coordinates must be finite pixel positions (not nan or inf).")
    if args.window is not None and not (all(math.isfinite(v) for v in args.window) and args.window[1] > 0):
        raise InvalidPromptError("--window needs a finite level and a positive width (e.g. --window 40 400).")
    settings = Settings.load()
    if settings.memory_budget_mb > 0:  # refuse before decoding (the mask must keep the full geometry: no downsampling)
        check = check_memory(args.image, settings, series_uid=args.series_uid)
        if not check.fits:
            raise MemoryBudgetExceeded(check.message(offer_downsample=False), check)
    volume = open_image(args.image, series_uid=args.series_uid)
    for warning in volume.meta.get("warnings", []):  # e.g. "4-D image with 3 volumes: only the first is shown"
        print(f"warning: {warning}", file=sys.stderr)
    nz = volume.shape[0]
    if args.slice is None and nz > 1:
        raise InvalidPromptError(
            f"'{args.image.name}' has {nz} slices: choose one with --slice Z (0..{nz - 1}, "
            f"the viewer's slices 1..{nz})."
        )
    z = 0 if args.slice is None else args.slice
    if args.out.name.lower().endswith(".png") and nz > 1:
        raise UnsupportedInputError(
            "A PNG mask can only hold a 2-D image; save 3-D masks as .nrrd or .nii.gz."
        )
    if args.z_range is not None and not min(args.z_range) <= z <= max(args.z_range):
        raise InvalidPromptError(f"Slice {z} is not inside --z-range {args.z_range[0]} {args.z_range[1]}.")

    if args.device:
        settings.device = args.device
    backend = create_backend(settings, args.backend)
    if hasattr(backend, "on_message"):  # GPU out of memory → CPU: say why it is slow
        backend.on_message = lambda message: print(message, file=sys.stderr)
    cache = EmbeddingCache.from_megabytes(settings.embedding_cache_mb)
    session = SegmentationSession(backend, cache, window=tuple(args.window) if args.window else "auto")
    session.set_image(volume)
    if args.box is not None:
        result = session.add_box(z, args.box, args.label)
    for x, y, lab in args.point:
        result = session.add_point(z, x, y, lab == 1.0, args.label)
    choice = f", {session.last_choice.name} window (automatic)" if session.last_choice is not None else ""
    print(f"slice {z}: {result.area_px} px, confidence {result.confidence:.2f}{choice}", file=sys.stderr)
    if args.z_range is not None:
        prop = session.propagate(args.label, (args.z_range[0], args.z_range[1]))
        for name, reason in prop.stop_reason.items():
            print(f"propagation {name}: stopped ({reason})", file=sys.stderr)
    mask = session.mask_for(args.label).astype("uint8")
    save_mask(mask, volume, args.out)
    ml = session.volume_ml(args.label)
    print(f"wrote {args.out} ({int(mask.sum())} voxels, {ml:.3f} ml)")
    return 0
