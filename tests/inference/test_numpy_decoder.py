"""The torch-free numpy decoder gives upstream's results on real slices; bad weight arrays are refused.

Reference: segment_anything's prompt encoder + ``get_dense_pe()`` + mask decoder, fp32 (``reference_decode``,
MedSAM's re-prompt on a cached embedding), on the real LiteMedSAM weights and real embeddings (lung1 CT
nodule, two CXR lungs, one of them 951 × 729, and a 2:1 X-ray). Speed: ``benchmarks/segmentation.py``.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inference.errors import ModelLoadError
from inference.io.loader import open_image
from inference.models.litemedsam import LiteMedSAM, encode, load_litemedsam, reference_decode
from inference.models.numpy_decoder import PADDING_LOGIT, NumpyPromptDecoder, decode
from inference.models.numpy_decoder_export import decoder_arrays
from inference.models.numpy_weights import array_shapes
from inference.models.preprocess import LUNG_LESION_WINDOW, PreprocessInfo, preprocess_slice
from inference.segmentation.evaluation import component_boxes, padded_box

REPO = Path(__file__).resolve().parents[2]
Case = tuple[str, np.ndarray, torch.Tensor, PreprocessInfo, np.ndarray]


@pytest.fixture(scope="module")
def model() -> LiteMedSAM:
    return load_litemedsam("cpu", runtime="fused")


@pytest.fixture(scope="module")
def arrays(model: LiteMedSAM) -> dict[str, np.ndarray]:
    return decoder_arrays(model)


@pytest.fixture(scope="module")
def decoder(arrays: dict[str, np.ndarray]) -> NumpyPromptDecoder:
    return NumpyPromptDecoder(arrays)


@pytest.fixture(scope="module")
def cases(model: LiteMedSAM, lung1_dir: Path, cxr_dir: Path) -> list[Case]:
    """(name, numpy embedding, torch embedding, geometry, box in the 256 frame) per real slice."""
    ct = open_image(lung1_dir / "image.nrrd").array
    label = open_image(lung1_dir / "label.nrrd").array > 0
    planes: list[tuple[str, np.ndarray, tuple[float, float] | None, tuple]] = [
        ("ct z33 nodule", ct[33], LUNG_LESION_WINDOW, padded_box(label[33], 5))]
    for stem in ("00870a9c", "1-s2.0-S0196070920301691-gr3_lrg"):  # square-ish, and 951 × 729
        mask = np.asarray(Image.open(cxr_dir / "lung_masks" / f"{stem}.png").convert("L")) > 127
        image = open_image(cxr_dir / "images" / f"{stem}.jpg").array[0]
        planes.append((f"cxr {stem}", image, None, component_boxes(mask)[0]))
        if stem == "00870a9c":  # the same X-ray twice side by side: a 2:1 image (half the grid is padding)
            wide = np.concatenate([image, image], axis=1)
            planes.append(("cxr 2:1", wide, None, component_boxes(np.concatenate([mask, mask], axis=1))[0]))
    out = []
    for name, plane, window, box in planes:
        tensor, info = preprocess_slice(plane, window)
        emb = encode(model, tensor)
        out.append((name, emb.numpy().copy(), emb, info, info.box_to_model(np.asarray(box, dtype=np.float32))))
    assert any(info.new_size[0] <= 128 for *_, info, _ in out)  # the padding path is exercised
    return out


def _check(got: tuple[np.ndarray, np.ndarray], want: tuple[torch.Tensor, torch.Tensor], info: PreprocessInfo,
           what: str) -> None:
    """Logits within 1e-4 of the largest |logit| over the image, IoU within 1e-4, full-size masks equal."""
    logits, iou = got
    want_logits, want_iou = want[0].numpy(), want[1].numpy()
    h, w = info.new_size
    assert logits.dtype == np.float32 and iou.dtype == np.float32, what
    assert logits.shape == want_logits.shape and iou.shape == want_iou.shape, what
    scale = float(np.abs(want_logits[..., :h, :w]).max())
    assert float(np.abs(logits[..., :h, :w] - want_logits[..., :h, :w]).max()) <= 1e-4 * scale, what
    np.testing.assert_allclose(iou, want_iou, rtol=0, atol=1e-4, err_msg=what)
    for k in range(logits.shape[0]):
        a, b = info.logits_to_original_array(logits[k]) > 0, info.logits_to_original_array(want_logits[k]) > 0
        dice = 2.0 * float((a & b).sum()) / max(1.0, float(a.sum() + b.sum()))
        assert np.array_equal(a, b) or dice >= 0.9999, (what, k, dice)


def test_box_prompt_equals_upstream_first_second_and_third_prompt(decoder: NumpyPromptDecoder, model: LiteMedSAM,
                                                                  cases: list[Case]) -> None:
    """First prompt (folded), second (projects block 0 once), third (reuses the projections)."""
    decoder.clear()
    for name, emb, emb_t, info, box in cases:
        want = reference_decode(model, emb_t, box, multimask="all")
        assert (info.logits_to_original_array(want[0][0].numpy()) > 0).sum() > 50, name  # a real object
        for i in range(3):
            _check(decode(decoder, emb, box, multimask="all"), want, info, f"{name} prompt {i + 1}")


def test_points_box_points_and_mask_prompts_equal_upstream(decoder: NumpyPromptDecoder, model: LiteMedSAM,
                                                           cases: list[Case]) -> None:
    for name, emb, emb_t, info, box in cases[:2]:
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        points = np.array([[cx, cy], [box[0] - 6, box[1] - 6]], dtype=np.float32)
        labels = np.array([1, 0])
        low = reference_decode(model, emb_t, box)[0][0].numpy()
        prompts = {
            "points only, multimask": dict(points_256=points[:1], point_labels=labels[:1], multimask=True),
            "two points (SAM's padding point)": dict(points_256=points, point_labels=labels),
            "box + points": dict(box_256=box, points_256=points, point_labels=labels, multimask="all"),
            "box + mask prompt": dict(box_256=box, mask_logits_256=low),
            "mask prompt only": dict(mask_logits_256=low, multimask=True),
        }
        for what, kwargs in prompts.items():
            for _ in range(2):  # the second time on a cached context (the mask prompt never uses one)
                _check(decode(decoder, emb, **kwargs), reference_decode(model, emb_t, **kwargs),  # type: ignore[arg-type]
                       info, f"{name}: {what}")


def test_best_token_and_padding_skip(decoder: NumpyPromptDecoder, model: LiteMedSAM, cases: list[Case]) -> None:
    """``best`` returns upstream's highest-IoU mask; ``valid_size`` leaves the padding uncomputed."""
    for name, emb, emb_t, info, box in cases:
        want, want_iou = reference_decode(model, emb_t, box, multimask=True)
        top = int(torch.argmax(want_iou))
        got = decode(decoder, emb, box, multimask=True, best=True, valid_size=info.new_size)
        assert got[0].shape == (1, 256, 256), name
        _check(got, (want[top : top + 1], want_iou[top : top + 1]), info, name)
        h, w = info.new_size
        if h <= 252:
            assert np.all(got[0][0, -(256 - h) // 4 * 4 :] == PADDING_LOGIT), name
        single = decode(decoder, emb, box, best=True)  # best of one token = the single-mask output
        _check(single, reference_decode(model, emb_t, box), info, name)


def test_alternating_embeddings_and_a_copy_at_a_new_address(decoder: NumpyPromptDecoder, model: LiteMedSAM,
                                                            cases: list[Case]) -> None:
    """Two slices prompted in turn keep their own cached image side; a third evicts the oldest."""
    decoder.clear()
    (na, a, a_t, info_a, box_a), (nb, b, b_t, info_b, box_b), (nc, c, c_t, info_c, box_c) = cases[:3]
    wants = {na: reference_decode(model, a_t, box_a), nb: reference_decode(model, b_t, box_b)}
    for _ in range(3):
        _check(decode(decoder, a, box_a), wants[na], info_a, na)
        _check(decode(decoder, b, box_b), wants[nb], info_b, nb)
    assert len(decoder._contexts) == 2
    assert all(ctx.src_pe is None and ctx.projected is not None for ctx in decoder._contexts.values())  # issue 17
    _check(decode(decoder, c, box_c), reference_decode(model, c_t, box_c), info_c, nc)
    assert len(decoder._contexts) == 2
    copy = b.copy()  # equal values, another object: decoded from its own context
    _check(decode(decoder, copy, box_b), wants[nb], info_b, f"{nb} copy")


def test_two_threads_decode_at_once(arrays: dict[str, np.ndarray], cases: list[Case]) -> None:
    """Two worker threads sharing one decoder get the results of a single-threaded decoder (threads=1)."""
    shared, serial = NumpyPromptDecoder(arrays, threads=2), NumpyPromptDecoder(arrays, threads=1)
    work = [(emb, box) for _, emb, _, _, box in cases[:2]]
    # per embedding: a first prompt (folded), then prompts on block 0's cached projections
    want = [[decode(serial, emb, box, multimask="all") for _ in range(4)] for emb, box in work]
    results: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {0: [], 1: []}
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            for _ in range(4):
                results[i].append(decode(shared, work[i][0], work[i][1], multimask="all"))
        except BaseException as err:  # noqa: BLE001 - reported by the main thread
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    for i in (0, 1):
        assert len(results[i]) == 4
        for (logits, iou), (want_logits, want_iou) in zip(results[i], want[i], strict=True):
            np.testing.assert_allclose(logits, want_logits, rtol=0, atol=1e-5)  # same tiles, same reduction order
            np.testing.assert_allclose(iou, want_iou, rtol=0, atol=1e-6)
    shared.close()
    serial.close()


def test_exported_arrays_match_the_declared_names_and_shapes(arrays: dict[str, np.ndarray]) -> None:
    expected = array_shapes()
    assert set(arrays) == set(expected)
    for name, shape in expected.items():
        assert arrays[name].shape == shape and arrays[name].dtype == np.float32, name


@pytest.mark.parametrize("damage", ["missing", "unexpected", "shape", "dtype", "nan", "inf", "not array",
                                    "dense_pe of another model"])
def test_bad_arrays_raise_model_load_error(arrays: dict[str, np.ndarray], damage: str) -> None:
    bad = dict(arrays)
    name = "mask_decoder.transformer.layers.1.cross_attn_image_to_token.q_proj.weight"
    if damage == "missing":
        del bad[name]
    elif damage == "unexpected":
        bad["mask_decoder.extra.weight"] = np.zeros(3, np.float32)
    elif damage == "shape":
        bad[name] = bad[name][:, :-1]
    elif damage == "dtype":
        bad[name] = bad[name].astype(np.float64)
    elif damage in ("nan", "inf"):
        bad[name] = bad[name].copy()
        bad[name][3, 7] = np.nan if damage == "nan" else np.inf
    elif damage == "not array":
        bad[name] = bad[name].tolist()  # type: ignore[assignment]
    else:
        gaussian = "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"
        bad[gaussian] = (bad[gaussian] * 1.5).astype(np.float32)
    with pytest.raises(ModelLoadError) as err:
        NumpyPromptDecoder(bad)
    message = str(err.value)
    assert message.endswith(".") and "\n" not in message and len(message) < 200


def test_bad_calls_raise_value_error(decoder: NumpyPromptDecoder, cases: list[Case]) -> None:
    _, emb, _, _, box = cases[0]
    with pytest.raises(ValueError, match="at least one prompt"):
        decode(decoder, emb)
    with pytest.raises(ValueError, match="embedding"):
        decode(decoder, emb[0], box)


def test_weights_are_copied_not_shared(arrays: dict[str, np.ndarray], decoder: NumpyPromptDecoder,
                                       cases: list[Case]) -> None:
    """Editing the caller's arrays afterwards changes nothing (the decoder validated its own copies)."""
    _, emb, _, _, box = cases[0]
    before = decode(decoder, emb, box)[0]
    edited = {k: v.copy() for k, v in arrays.items()}
    fresh = NumpyPromptDecoder(edited)
    for name in ("mask_decoder.output_upscaling.0.weight", "mask_decoder.transformer.layers.0.self_attn.q_proj.weight",
                 "mask_decoder.transformer.layers.1.cross_attn_image_to_token.k_proj.weight",
                 "mask_decoder.transformer.layers.0.mlp.lin1.weight", "prompt_encoder.point_embeddings.2.weight",
                 "mask_decoder.mask_tokens.weight", "dense_pe"):
        edited[name] *= 3.0
    np.testing.assert_array_equal(decode(fresh, emb, box)[0], before)


_SECOND_THREAD = """
import sys, threading, numpy as np
from threadpoolctl import threadpool_info
from inference.models.numpy_decoder import NumpyPromptDecoder, decode
def blas(): return [int(i['num_threads']) for i in threadpool_info() if i['user_api'] == 'blas']
with np.load(sys.argv[1], allow_pickle=False) as f:
    dec = NumpyPromptDecoder(dict(f))
emb, box = np.load(sys.argv[2]), np.array([float(v) for v in sys.argv[3:7]])
before, during = blas(), []
assert before and max(before) > 1, before  # the test machine has 2 cores: otherwise nothing to check
transformer = dec._transformer
def watched(*args):
    during.append((threading.current_thread().name, blas()))
    return transformer(*args)
dec._transformer = watched
first_done, stop = threading.Event(), threading.Event()
def pool_thread():  # decodes, then stays alive idle, as a QThreadPool worker does
    decode(dec, emb, box)
    first_done.set()
    stop.wait(60)
first = threading.Thread(target=pool_thread, name="first")
first.start()
first_done.wait(60)
second = threading.Thread(target=decode, args=(dec, emb, box), name="second")
second.start()
second.join()
stop.set()
first.join()
assert [name for name, _ in during] == ["first", "second"], during
assert all(n == 1 for _, counts in during for n in counts), during
assert blas() == before, (blas(), before)
"""


def test_blas_is_single_threaded_in_a_decode_on_a_second_worker_thread(tmp_path: Path, arrays: dict[str, np.ndarray],
                                                                         cases: list[Case]) -> None:
    """threadpoolctl lets only the first thread that set OpenBLAS's count change it while that thread lives: a
    decode on the viewer's second pool thread ran with BLAS threads under the decoder's tiles (issue 17)."""
    np.savez(tmp_path / "decoder.npz", **arrays)
    _, emb, _, _, box = cases[0]
    np.save(tmp_path / "emb.npy", emb)
    subprocess.run([sys.executable, "-c", _SECOND_THREAD, str(tmp_path / "decoder.npz"), str(tmp_path / "emb.npy"),
                    *[str(float(v)) for v in box]], cwd=REPO, check=True, timeout=300)


def test_importing_the_numpy_decoder_does_not_import_torch(tmp_path: Path, arrays: dict[str, np.ndarray],
                                                           cases: list[Case]) -> None:
    """Built from an .npz and run in a fresh process: no torch anywhere."""
    np.savez(tmp_path / "decoder.npz", **arrays)
    _, emb, _, _, box = cases[0]
    np.save(tmp_path / "emb.npy", emb)
    code = (
        "import sys, numpy as np\n"
        "from inference.models.numpy_decoder import NumpyPromptDecoder, decode\n"
        f"with np.load({str(tmp_path / 'decoder.npz')!r}, allow_pickle=False) as f:\n"
        "    dec = NumpyPromptDecoder(dict(f))\n"
        f"logits, iou = decode(dec, np.load({str(tmp_path / 'emb.npy')!r}), np.array({box.tolist()!r}))\n"
        "assert logits.shape == (1, 256, 256) and (logits > 0).sum() > 10\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=300)


class _LazyBlas:
    """A BLAS controller that, like OpenBLAS 0.3.30/0.3.31 once in the viewer's process, re-derives its count
    from the CPU count at the first read after a set."""

    def __init__(self, cpus: int, lazy: bool) -> None:
        self.cpus, self.lazy, self._threads, self.reset_pending = cpus, lazy, cpus, False

    def set_num_threads(self, n: int) -> None:
        self._threads = n
        self.reset_pending, self.lazy = self.lazy, False  # only once, as seen

    @property
    def num_threads(self) -> int:
        if self.reset_pending:
            self._threads, self.reset_pending = self.cpus, False
        return self._threads


def test_blas_setting_is_shared_by_concurrent_decodes_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nested and concurrent users keep one thread until the last leaves; a set that did not hold is redone."""
    from inference.models import numpy_ops
    from inference.models.numpy_ops import single_threaded_blas

    libs = [_LazyBlas(2, lazy=True), _LazyBlas(4, lazy=False)]
    monkeypatch.setattr(numpy_ops, "_blas_libs", libs)
    monkeypatch.setattr(numpy_ops, "_blas_users", 0)
    counts = lambda: [lib.num_threads for lib in libs]  # noqa: E731
    entered, leave = threading.Barrier(3), threading.Event()
    seen: list[list[int]] = []

    def decode_in_thread() -> None:
        with single_threaded_blas():
            entered.wait(timeout=30)
            leave.wait(timeout=30)
            seen.append(counts())

    threads = [threading.Thread(target=decode_in_thread) for _ in range(2)]
    for t in threads:
        t.start()
    entered.wait(timeout=30)
    assert counts() == [1, 1]  # the lazy library's re-derived count was caught and set again
    with single_threaded_blas():  # a third, nested in time with the two
        leave.set()
        for t in threads:
            t.join(timeout=30)
        assert counts() == [1, 1]
    assert seen == [[1, 1], [1, 1]]
    assert counts() == [2, 4] and numpy_ops._blas_users == 0
