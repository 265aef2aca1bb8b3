"""Refuse MedSAM2 configs that would make Hydra call anything but SAM2's own model classes.

Why: ``hydra.utils.instantiate`` imports and calls whatever a ``_target_`` names, with the YAML's
values as arguments. A config from the internet with ``_target_: numpy.load`` (``allow_pickle:
true``) or ``os.system`` runs the author's code the moment the backend is built. A prefix test on the
string is not enough either: Hydra walks attributes, so ``sam2.build_sam.os.system`` starts with
``sam2.`` and still reaches ``os.system``. So every ``_target_`` anywhere in the config (after
interpolations are resolved) must name, by its canonical ``module.QualName``, a ``torch.nn.Module``
class defined in ``sam2.modeling.*`` or ``sam2.sam2_video_predictor`` — what SAM2/MedSAM2 model configs
use and nothing else. Resolution imports only that module (no attribute walk; other sam2 modules such
as ``sam2.benchmark`` run code on import and are never imported).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

from inference.errors import ModelLoadError

__all__ = ["ALLOWED_PREFIX", "MAX_CONFIG_BYTES", "check_targets", "check_yaml_file"]

ALLOWED_PREFIX = "sam2."
_DOTTED = re.compile(r"^sam2(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_MODULES = re.compile(r"^sam2\.(modeling(\.[A-Za-z_][A-Za-z0-9_]*)+|sam2_video_predictor)$")
_HYDRA_KEYS = {"_target_", "_args_", "_recursive_", "_convert_", "_partial_"}
MAX_DEPTH = 64  # SAM2 configs nest ~6 deep
MAX_CONFIG_BYTES = 1 << 20  # SAM2 configs are ~5 KB


def _refuse(target: object, why: str) -> ModelLoadError:
    shown = str(target)[:120]
    return ModelLoadError(
        f"The MedSAM2 config was refused: '_target_: {shown}' {why}; only SAM2 model classes (sam2.*) may be "
        "built from a config."
    )


def _resolve(target: str) -> type:
    """The class ``target`` names, importing only the module part (never walking into other modules)."""
    if not _DOTTED.match(target):
        raise _refuse(target, "is not a sam2.* class name")
    module_name, _, qualname = target.rpartition(".")
    if not _MODULES.match(module_name):
        raise _refuse(target, "is not in sam2.modeling or sam2.sam2_video_predictor")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise _refuse(target, "does not name a module of the installed sam2 package") from None
    obj = getattr(module, qualname, None)
    if not isinstance(obj, type):
        raise _refuse(target, "is not a class")
    if f"{obj.__module__}.{obj.__qualname__}" != target or not obj.__module__.startswith(ALLOWED_PREFIX):
        raise _refuse(target, f"refers to {obj.__module__}.{obj.__qualname__}, which is not defined in sam2")
    import torch

    if not issubclass(obj, torch.nn.Module):
        raise _refuse(target, "is not a model component")
    return obj


def check_yaml_file(path: Path) -> None:
    """Refuse oversized files and YAML aliases (a few lines of nested aliases expand to gigabytes)."""
    import yaml

    path = Path(path)
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ModelLoadError(f"The MedSAM2 config {path.name} is too large to be a SAM2 config.")
    try:
        for event in yaml.parse(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise ModelLoadError(f"The MedSAM2 config {path.name} uses YAML aliases, which SAM2 configs never do.")
    except (yaml.YAMLError, ValueError) as err:
        raise ModelLoadError(f"The MedSAM2 config {path.name} is not a readable YAML file.") from err


def check_targets(node: Any, path: str = "config", depth: int = 0) -> int:
    """Walk a plain (resolved) config tree; raise :class:`ModelLoadError` at the first forbidden target.

    The caller must instantiate exactly this tree (``OmegaConf.create`` of it), so nothing is resolved
    after the check. Returns how many ``_target_`` entries were checked.
    """
    if depth > MAX_DEPTH:
        raise ModelLoadError(f"The MedSAM2 config is nested too deeply (at {path}); it is not a SAM2 config.")
    count = 0
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "_target_":
                if not isinstance(value, str):
                    raise _refuse(value, "is not a class name")
                _resolve(value)
                count += 1
            elif isinstance(key, str) and key.startswith("_") and key.endswith("_") and key not in _HYDRA_KEYS:
                raise ModelLoadError(f"The MedSAM2 config has an unknown Hydra key '{key}' at {path}.")
            else:
                count += check_targets(value, f"{path}.{key}", depth + 1)
    elif isinstance(node, list | tuple):
        for i, value in enumerate(node):
            count += check_targets(value, f"{path}[{i}]", depth + 1)
    elif isinstance(node, str) and "${" in node:  # would be interpolated again when instantiated
        raise ModelLoadError(f"The MedSAM2 config holds an unresolvable interpolation at {path}.")
    return count
