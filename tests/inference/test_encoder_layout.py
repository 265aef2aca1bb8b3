"""The encoder's export layout (issue 17): stage 0 and the MLPs over channel groups are the same function,
and the exported graph keeps less resident in ONNX Runtime (measured in a fresh process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from inference.models.encoder_layout import EXPORT_GROUPS, GroupedConvBlock, GroupedMlp, export_layout
from inference.models.encoder_runtime import fold_conv_bn
from inference.models.onnx_encoder import export_onnx, relative_error
from inference.models.tinyvit import TinyViT

REPO = Path(__file__).resolve().parents[2]


def _random_encoder(seed: int = 0) -> TinyViT:
    """A TinyViT with random weights and BatchNorm statistics (eval mode), as a checkpoint would give."""
    torch.manual_seed(seed)
    encoder = TinyViT().eval()
    with torch.no_grad():
        for module in encoder.modules():
            if isinstance(module, nn.BatchNorm2d):
                assert module.running_mean is not None and module.running_var is not None
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.normal_(1, 0.2)
                module.bias.normal_(0, 0.1)
    return encoder


@pytest.fixture(scope="module")
def encoder() -> TinyViT:
    return _random_encoder()


def test_grouped_layout_computes_the_same_embeddings(encoder: TinyViT) -> None:
    x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = encoder(x)
        unfolded = export_layout(encoder)(x)  # BatchNorm folded by the layout itself
        fused = _random_encoder()
        fold_conv_bn(fused)
        folded = export_layout(fused)(x)
    assert relative_error(unfolded, want) < 1e-5
    assert relative_error(folded, want) < 1e-5
    # the caller's encoder is untouched; the copy's stage 0 has no 256-channel activation left
    assert not any(isinstance(m, GroupedConvBlock) for m in encoder.modules())
    grouped = export_layout(encoder)
    blocks = [m for m in grouped.modules() if isinstance(m, GroupedConvBlock)]
    assert len(blocks) == 3  # two MBConv blocks and the merge
    widths = [conv.out_channels for b in blocks for conv in b.expand]  # type: ignore[union-attr]
    assert max(widths) == 256 // EXPORT_GROUPS
    mlps = [m for m in grouped.modules() if isinstance(m, GroupedMlp)]
    assert len(mlps) == 2 + 6 + 2 and all(len(m.fc1) == EXPORT_GROUPS for m in mlps)


def test_other_encoders_are_exported_as_they_are() -> None:
    toy = nn.Sequential(nn.Conv2d(3, 4, 1))
    copy = export_layout(toy)
    assert copy is not toy and isinstance(copy, nn.Sequential) and len(copy) == 1


def test_a_block_that_cannot_be_split_is_refused(encoder: TinyViT) -> None:
    block = encoder.layers[0].blocks[0]  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="channel groups"):
        GroupedConvBlock(block.conv1, block.conv2, block.conv3, groups=3, residual=True)  # type: ignore[arg-type]


_PROBE = """
import json, sys
from pathlib import Path
import numpy as np
from inference.models.verified_files import onnx_session
from tests.resident_memory import resident_mib as rss
session = onnx_session(Path(sys.argv[1]).read_bytes(), 2)
image = np.random.default_rng(0).random((1, 3, 256, 256), dtype=np.float32)
before = rss()
session.run(None, {session.get_inputs()[0].name: image})
print(json.dumps({"kept_mib": rss() - before}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="resident memory is read from /proc/self/status")
def test_the_exported_encoder_keeps_less_resident_after_an_encode(encoder: TinyViT, tmp_path: Path) -> None:
    """One encode leaves ONNX Runtime's CPU arena at the graph's working-memory peak. Measured (ONNX Runtime
    1.32, 2 threads): 185 MiB for the checkpoint's layout, 129 MiB with stage 0 grouped, 91 MiB with the
    MLPs grouped too."""
    pytest.importorskip("onnxruntime")
    path = export_onnx(encoder, tmp_path / "encoder.onnx")
    done = subprocess.run([sys.executable, "-c", _PROBE, str(path)], cwd=REPO, capture_output=True, text=True,
                          timeout=300, check=True)
    kept = json.loads(done.stdout.strip().splitlines()[-1])["kept_mib"]
    assert kept < 120, f"ONNX Runtime keeps {kept:.0f} MiB after one encode"
