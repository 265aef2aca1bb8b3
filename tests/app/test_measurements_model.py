"""The Qt-free measurements model: ids, undo/redo (drags are one step), per-image measurements, saved JSON
validated like any untrusted file, and the values/units the views and the report show."""

from __future__ import annotations

import numpy as np
import pytest

from app.model.measurement_values import ValueCache, measure
from app.model.measurements import Measurement, MeasurementsModel
from inference.io.volume import Volume

SHAPE = (40, 30, 10)  # x, y, z


def _ruler(x1: float = 10.0) -> Measurement:
    return Measurement("ruler", "axial", 2, 4, ()).with_points([(1, 2, 9), (x1, 2, 0)])


def test_points_stay_on_their_slice_and_ids_are_given() -> None:
    model = MeasurementsModel()
    m = model.add(_ruler())
    assert m.id == 1 and m.points == ((1.0, 2.0, 4.0), (10.0, 2.0, 4.0)) and model.selected == 1
    assert model.add(_ruler()).id == 2
    assert [x.id for x in model.on_slice(2, 4)] == [1, 2] and model.on_slice(2, 5) == []
    with pytest.raises(ValueError):
        model.add(Measurement("angle", "axial", 2, 4, ((0, 0, 4),)))


def test_undo_redo_and_a_drag_is_one_step() -> None:
    model = MeasurementsModel()
    committed: list[int] = []
    model.committed.connect(lambda: committed.append(1))
    m = model.add(_ruler())
    model.begin_edit()
    for x in (11, 12, 13):
        model.update(m.with_points([(1, 2, 4), (x, 2, 4)]))
    model.end_edit()
    assert len(committed) == 2  # add + the whole drag
    assert model.undo() and model.get(m.id).points[1][0] == 10.0  # type: ignore[union-attr]
    assert model.undo() and len(model) == 0
    assert not model.undo()
    assert model.redo() and model.redo() and model.get(m.id).points[1][0] == 13.0  # type: ignore[union-attr]
    model.remove(m.id)
    model.undo()
    assert len(model) == 1 and model.selected == 0
    model.clear()
    assert len(model) == 0 and model.undo() and len(model) == 1
    model.begin_edit()
    model.end_edit()  # a click without a move is no undo step and keeps what can be redone
    assert model.can_redo


def test_each_image_keeps_its_own_measurements() -> None:
    model = MeasurementsModel()
    model.switch_image("ct")
    model.add(_ruler())
    model.switch_image("xray")
    assert len(model) == 0 and not model.can_undo
    model.switch_image("ct")
    assert len(model) == 1


def test_saved_json_is_validated() -> None:
    model = MeasurementsModel()
    model.add(_ruler())
    model.add(Measurement("text", "axial", 2, 4, (), "note").with_points([(3, 3, 4)]))
    rows = model.to_json()
    bad = [
        {"kind": "laser", "normal_axis": 2, "slice": 4, "points": [[0, 0, 4]]},
        {**rows[0], "slice": 99},
        {**rows[0], "points": [[0, 0, 4]]},
        {**rows[0], "points": [[0, float("nan"), 4], [1, 1, 4]]},
        {**rows[0], "points": [[0, 1e9, 4], [1, 1, 4]]},
        {**rows[1], "text": "x" * 5000},
        {**rows[0], "normal_axis": True},
        "not a record",
    ]
    other = MeasurementsModel()
    skipped = other.load_json(rows + bad + [rows[0]], SHAPE)
    assert skipped == len(bad)
    assert [m.kind for m in other.items()] == ["ruler", "text", "ruler"]
    assert len({m.id for m in other.items()}) == 3  # a repeated id is renumbered
    assert other.items()[1].text == "note" and other.add(_ruler()).id == 4
    with pytest.raises(ValueError):
        other.load_json({"items": rows}, SHAPE)


def test_values_follow_units_and_spacing() -> None:
    array = np.arange(10 * 30 * 40, dtype=np.float32).reshape(10, 30, 40)
    ct = Volume(array, (0.5, 0.5, 2.0), units="HU")
    xray = Volume(array[:1], meta={"spacing_known": False})
    ruler = _ruler(x1=21.0)  # 20 pixels
    assert measure(ruler, ct).label == "10.0 mm"
    flat = Measurement("ruler", "image", 2, 0, ()).with_points([(1, 2, 0), (21, 2, 0)])
    assert measure(flat, xray).label == "20.0 px"
    ellipse = Measurement("ellipse", "axial", 2, 4, ()).with_points([(5, 5, 4), (25, 15, 4)])
    value = measure(ellipse, ct)
    assert "HU" in value.label and value.numbers["area"] == pytest.approx(np.pi * 10 * 5 * 0.25)
    on_xray = measure(Measurement("ellipse", "image", 2, 0, ((5, 5, 0), (25, 15, 0))), xray)
    assert "intensity" in on_xray.label and "pixels" in on_xray.label
    pet = Volume(np.ones_like(array) * 2.5, units="SUVbw")
    assert "SUVbw max 2.50" in measure(ellipse, ct, pet).label
    axes = Measurement("bidimensional", "axial", 2, 4, ()).with_points([(0, 0, 4), (20, 0, 4), (10, -4, 4), (10, 6, 4)])
    assert measure(axes, ct).numbers == {"long": pytest.approx(10.0), "short": pytest.approx(5.0)}
    cache = ValueCache(size=2)
    assert cache.get(ruler, ct) is cache.get(ruler, ct)
    cache.clear()
