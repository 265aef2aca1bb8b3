"""MedSAM2 / SAM2 behind the :class:`SegmentationBackend` protocol, plus memory-based 3-D propagation.

Checkpoints cannot be downloaded by the app: the user puts a MedSAM2 (or SAM2) ``.pt`` file and its
Hydra YAML config somewhere and names them in Settings (``medsam2_checkpoint``, ``medsam2_config``).
Slices are treated as video frames: the seed slice's mask conditions SAM2's memory, which then carries
the object to neighbouring slices. Written against ``sam2==1.1.0`` (it reuses its predictor classes).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inference.errors import ModelLoadError
from inference.models.preprocess import PERCENTILES, PreprocessInfo, to_uint8_range
from inference.progress import CancelToken
from inference.segmentation.backend import Box, Decoded, Embedding, Point, stability_score
from inference.segmentation.hydra_guard import check_targets, check_yaml_file
from inference.settings import Settings, default_config_dir

# Same post-processing overrides as sam2.build_sam.build_sam2_video_predictor.
_OVERRIDES = [
    "++model._target_=sam2.sam2_video_predictor.SAM2VideoPredictor",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=true",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta=0.05",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh=0.98",
    "++model.binarize_mask_from_pts_for_mem_enc=true",
]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _missing_checkpoint_message() -> str:
    where = default_config_dir() / "models"
    return (
        "No MedSAM2 checkpoint is configured: put a MedSAM2/SAM2 .pt file and its .yaml config in "
        f"{where} and choose them in Settings > Segmentation (or use the LiteMedSAM backend)."
    )


def build_sam2_model(config: Any, checkpoint: Path | None, device: torch.device | str = "cpu") -> Any:
    """Instantiate a SAM2 video predictor from a YAML path or OmegaConf config; load weights strictly."""
    try:
        from hydra.utils import instantiate
        from omegaconf import OmegaConf
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ModelLoadError("The MedSAM2 backend needs the 'sam2' package (bash scripts/setup.sh).") from err
    if isinstance(config, str | Path):
        path = Path(config)
        if not path.is_file():
            raise ModelLoadError(f"MedSAM2 config file not found: {path}.")
        check_yaml_file(path)
        try:
            cfg = OmegaConf.load(path)
        except Exception as err:  # noqa: BLE001 - YAML and OmegaConf raise many error types
            raise ModelLoadError(f"The MedSAM2 config {path.name} is not a readable YAML file.") from err
    else:
        cfg = config
    try:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([o.lstrip("+") for o in _OVERRIDES]))
        plain = OmegaConf.to_container(cfg, resolve=True)
    except Exception as err:  # noqa: BLE001 - bad interpolations, wrong node types, deep nesting
        raise ModelLoadError(f"The MedSAM2 config could not be read ({type(err).__name__}).") from err
    # Hydra imports and calls every _target_: only SAM2's own model classes may be named (before anything runs)
    check_targets(plain)
    if not isinstance(plain, dict) or not isinstance(plain.get("model"), dict):
        raise ModelLoadError("The MedSAM2 config has no 'model' section.")
    try:
        model = instantiate(OmegaConf.create(plain["model"]), _recursive_=True)
    except Exception as err:  # noqa: BLE001 - a bad YAML surfaces as many error types
        raise ModelLoadError(f"The MedSAM2 config could not be instantiated ({type(err).__name__}).") from err
    if checkpoint is not None:
        try:
            state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001
            raise ModelLoadError(f"MedSAM2 checkpoint {Path(checkpoint).name} could not be read.") from err
        state = state.get("model", state) if isinstance(state, dict) else state
        try:
            model.load_state_dict(state, strict=True)
        except (RuntimeError, TypeError, AttributeError) as err:
            raise ModelLoadError(
                f"MedSAM2 checkpoint {Path(checkpoint).name} does not match its config (wrong architecture)."
            ) from err
    return model.to(device).eval()


class MedSAM2Backend:
    """SAM2 image predictor for prompts; SAM2 video predictor for :meth:`propagate_volume`."""

    def __init__(
        self, model: Any, model_id: str = "medsam2", percentiles: tuple[float, float] = PERCENTILES
    ) -> None:
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        self.model = model
        self.model_id = model_id
        self.percentiles = percentiles
        self.image_size = int(model.image_size)
        self.predictor = SAM2ImagePredictor(model)
        s = self.image_size
        self.predictor._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]
        self.encoder_calls = 0

    @classmethod
    def from_settings(cls, settings: Settings, device: torch.device | str = "cpu") -> MedSAM2Backend:
        if not settings.medsam2_checkpoint or not Path(settings.medsam2_checkpoint).is_file():
            raise ModelLoadError(_missing_checkpoint_message())
        if not settings.medsam2_config:
            raise ModelLoadError(
                "A MedSAM2 checkpoint needs its .yaml config: choose it in Settings > Segmentation."
            )
        ckpt = Path(settings.medsam2_checkpoint)
        model = build_sam2_model(settings.medsam2_config, ckpt, device)
        return cls(model, model_id=f"medsam2:{ckpt.name}:{ckpt.stat().st_size}")

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _rgb(self, slice2d: np.ndarray, window: tuple[float, float] | None) -> np.ndarray:
        gray = to_uint8_range(slice2d, window, self.percentiles).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)

    def embed(self, slice2d: np.ndarray, window: tuple[float, float] | None) -> Embedding:
        with torch.inference_mode():
            self.predictor.set_image(self._rgb(slice2d, window))
        self.encoder_calls += 1
        feats = self.predictor._features
        nbytes = sum(t.numel() * t.element_size() for t in [feats["image_embed"], *feats["high_res_feats"]])
        h, w = slice2d.shape
        info = PreprocessInfo((h, w), (self.image_size, self.image_size), self.image_size)
        return Embedding(feats, info, self.model_id, nbytes)

    def decode(
        self, embedding: Embedding, boxes: Box | None, points: Sequence[Point] = (), mask_prompt: Any = None
    ) -> Decoded:
        pred = self.predictor
        pred._features, pred._orig_hw, pred._is_image_set = (
            embedding.features,
            [embedding.info.original_size],
            True,
        )
        coords = labels = None
        if len(points):
            coords = np.asarray([(p[0], p[1]) for p in points], dtype=np.float32)
            labels = np.asarray([1 if p[2] else 0 for p in points], dtype=np.int32)
        box = None if boxes is None else np.asarray(boxes, dtype=np.float32)
        mask_in = None if mask_prompt is None else np.asarray(mask_prompt, dtype=np.float32)[None]
        with torch.inference_mode():
            logits, iou, low = pred.predict(
                coords, labels, box, mask_in, multimask_output=False, return_logits=True
            )
        return Decoded(logits[0] > 0, float(iou[0]), stability_score(low[0]), low[0])

    # ---- 3-D: SAM2 memory over slices ---------------------------------------------------------------
    def _video_state(self, slices: np.ndarray, window: tuple[float, float] | None) -> dict[str, Any]:
        """The state ``SAM2VideoPredictor.init_state`` builds from a JPEG folder, built from our slices."""
        s = self.image_size
        frames = (
            torch.from_numpy(np.stack([self._rgb(p, window) for p in slices])).permute(0, 3, 1, 2).float()
            / 255
        )
        frames = torch.nn.functional.interpolate(frames, size=(s, s), mode="bilinear", align_corners=False)
        mean = torch.tensor(IMAGENET_MEAN)[None, :, None, None]
        std = torch.tensor(IMAGENET_STD)[None, :, None, None]
        device = self.device
        h, w = slices.shape[1:]
        state: dict[str, Any] = {
            "images": ((frames - mean) / std).to(device),
            "num_frames": len(slices),
            "offload_video_to_cpu": False,
            "offload_state_to_cpu": False,
            "video_height": h,
            "video_width": w,
            "device": device,
            "storage_device": device,
            "point_inputs_per_obj": {},
            "mask_inputs_per_obj": {},
            "cached_features": {},
            "constants": {},
            "obj_id_to_idx": OrderedDict(),
            "obj_idx_to_id": OrderedDict(),
            "obj_ids": [],
            "output_dict_per_obj": {},
            "temp_output_dict_per_obj": {},
            "frames_tracked_per_obj": {},
        }
        return state

    def propagate_volume(
        self,
        volume: np.ndarray,
        seed_z: int,
        seed_mask: np.ndarray,
        z_range: tuple[int, int],
        reverse: bool,
        window: tuple[float, float] | None,
        cancel: CancelToken | None = None,
    ) -> Iterator[tuple[int, Decoded]]:
        """Yield ``(z, mask)`` for slices after (or before, ``reverse``) ``seed_z`` within ``z_range``."""
        z_lo, z_hi = z_range
        slices = volume[z_lo : z_hi + 1]
        video = self.model
        with torch.inference_mode():
            state = self._video_state(slices, window)
            video.add_new_mask(state, seed_z - z_lo, 1, torch.from_numpy(np.ascontiguousarray(seed_mask)))
            for frame, _ids, logits in video.propagate_in_video(
                state, start_frame_idx=seed_z - z_lo, reverse=reverse
            ):
                if cancel is not None:
                    cancel.raise_if_cancelled()
                z = z_lo + int(frame)
                if z == seed_z:
                    continue
                lg = logits[0, 0].float().cpu().numpy()
                out = state["output_dict_per_obj"][0]
                entry = out["non_cond_frame_outputs"].get(frame) or out["cond_frame_outputs"].get(frame) or {}
                score = entry.get("object_score_logits")
                conf = float(torch.sigmoid(score).max()) if score is not None else 1.0
                yield z, Decoded(lg > 0, conf, stability_score(lg), None)
