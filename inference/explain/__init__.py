"""Attributions for any multimodal model ``f(*inputs) -> logits[B, K]`` (Captum-based).

Explainers are configured once (model, baselines, steps) and then called with a tuple of modality
tensors, e.g. ``explainer((image, ehr_values), target=0, additional_forward_args=(ehr_missing,))``.
"""

from __future__ import annotations

from inference.explain.anatomy import LungAttribution, lung_occlusion, reference_occlusion, restrict_to_lungs
from inference.explain.base import Attribution, BaseExplainer, Explainer
from inference.explain.cache import ExplainerCache, heatmap
from inference.explain.captum_explainers import GradientShapExplainer, OcclusionExplainer
from inference.explain.integrated_gradients import IntegratedGradientsExplainer
from inference.explain.visual import attribution_to_heatmap, rank_features

__all__ = [
    "Attribution", "BaseExplainer", "Explainer", "ExplainerCache", "GradientShapExplainer",
    "IntegratedGradientsExplainer", "LungAttribution", "OcclusionExplainer", "attribution_to_heatmap", "heatmap",
    "lung_occlusion", "rank_features", "reference_occlusion", "restrict_to_lungs",
]
