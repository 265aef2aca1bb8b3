"""The decoder's upsampling stage as a small ONNX graph, run by ONNX Runtime in the torch-free path.

Why: on the image side of a re-prompt, the two transposed convolutions, the LayerNorm2d and the two exact
GELUs over ~3 M values cost ~17 ms in numpy (GELU alone needs ~15 ufunc passes) against ~8 ms in ONNX
Runtime's fused kernels; that difference decides whether the torch-free re-prompt meets ≤ 0.5× upstream.
The graph holds exactly the numpy decoder's re-laid-out weights (``up1_w``, ``up1_b``, ``up_norm``,
``up2_w``, ``up2_b``), so both paths compute the same function; the export check compares the whole
decoder with PyTorch when the record is written. It is built where the ``onnx`` package is loaded anyway
(the PyTorch process that writes the record): the torch-free process only reads its verified bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from inference.models.numpy_decoder import NumpyPromptDecoder

LN2D_EPS = 1e-6  # segment_anything's LayerNorm2d


def upsample_graph(decoder: NumpyPromptDecoder) -> bytes:
    """(cells, 256) image rows → (cells·4, 128): up1 + LayerNorm2d + GELU + up2 + GELU, as ONNX bytes."""
    from onnx import TensorProto, helper, numpy_helper

    norm_w, norm_b = decoder.up_norm
    weights = {"w1": decoder.up1_w, "b1": decoder.up1_b, "nw": norm_w, "nb": norm_b, "w2": decoder.up2_w,
               "b2": decoder.up2_b, "shape": np.array([-1, norm_w.shape[0]], dtype=np.int64)}
    nodes = [
        helper.make_node("MatMul", ["rows", "w1"], ["m1"]), helper.make_node("Add", ["m1", "b1"], ["a1"]),
        helper.make_node("Reshape", ["a1", "shape"], ["pixels"]),  # (cells·4, 64): one row per 2×2 pixel
        helper.make_node("LayerNormalization", ["pixels", "nw", "nb"], ["n1"], axis=-1, epsilon=LN2D_EPS),
        helper.make_node("Gelu", ["n1"], ["g1"]),  # opset 20: exact (erf) GELU, as torch's default
        helper.make_node("MatMul", ["g1", "w2"], ["m2"]), helper.make_node("Add", ["m2", "b2"], ["a2"]),
        helper.make_node("Gelu", ["a2"], ["upsampled"]),
    ]
    graph = helper.make_graph(
        nodes, "litemedsam_upsampling",
        [helper.make_tensor_value_info("rows", TensorProto.FLOAT, ["cells", int(decoder.up1_w.shape[0])])],
        [helper.make_tensor_value_info("upsampled", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.ascontiguousarray(a), name) for name, a in weights.items()],
    )
    return bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]).SerializeToString())


class OnnxUpsampler:
    """Runs :func:`upsample_graph`'s bytes (already verified by the caller) on ONNX Runtime's CPU threads."""

    def __init__(self, data: bytes, threads: int) -> None:
        from inference.models.verified_files import onnx_session

        self.session = onnx_session(data, threads)

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        (out,) = self.session.run(None, {"rows": np.ascontiguousarray(rows, dtype=np.float32)})  # type: ignore[attr-defined]
        return np.asarray(out, dtype=np.float32)
