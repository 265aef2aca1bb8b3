"""The application context: registered file openers are reached from every way of opening a path, and
features install in any order with the same result (no feature relies on another being installed first)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.context import AppContext, FileOpener, OpenerRegistry
from app.main_window import MainWindow
from inference.errors import MedFusionError
from inference.settings import Settings


class _Host:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def show_error(self, error: BaseException) -> None:
        self.errors.append(str(error))

    def show_status(self, message: str) -> None:
        pass

    def choose_series(self, series: list, path: Path) -> None:
        return None

    def choose_downsample(self, check: object, path: Path) -> None:
        return None

    def dialog_parent(self) -> None:
        return None


def test_registry_finds_the_first_opener_that_accepts_and_refuses_duplicates() -> None:
    registry = OpenerRegistry()
    registry.register(FileOpener("cases", lambda p: p.suffix == ".case", lambda p: None))
    registry.register(FileOpener("all", lambda p: True, lambda p: None))
    assert registry.find(Path("a.case")).name == "cases"  # type: ignore[union-attr]
    assert registry.find(Path("b.nii")).name == "all"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="already registered"):
        registry.register(FileOpener("cases", lambda p: False, lambda p: None))
    registry.register(FileOpener("special cases", lambda p: p.name == "x.case", lambda p: None), before="cases")
    assert registry.names() == ["special cases", "cases", "all"]
    assert registry.find(Path("x.case")).name == "special cases"  # type: ignore[union-attr]


def test_open_path_goes_to_the_opener_or_the_image_loader(qtbot, tmp_path: Path) -> None:  # noqa: ANN001
    from app.workers import TaskRunner

    host = _Host()
    runner = TaskRunner()
    context = AppContext(Settings(), runner, host, tmp_path / "settings.json")
    opened: list[Path] = []

    def open_case(path: Path) -> None:
        if path.name == "broken.case":
            raise MedFusionError("The case folder is damaged.")
        opened.append(path)

    context.openers.register(FileOpener("cases", lambda p: p.suffix == ".case", open_case))
    assert context.open_path(tmp_path / "x.case") == 0 and opened == [tmp_path / "x.case"]
    context.open_path(tmp_path / "broken.case")  # an opener's error is one sentence for the user
    assert host.errors == ["The case folder is damaged."]
    request = context.open_path(tmp_path / "missing.nii")  # not a case: the image loader tries (and fails)
    assert request > 0
    qtbot.waitUntil(lambda: not runner.busy, timeout=10000)
    assert len(host.errors) == 2 and "missing.nii" in host.errors[1]


def _installed(window: MainWindow, order: tuple[str, ...], tmp_path: Path) -> tuple[list[str], set[str]]:
    from app.browser_install import install_browser
    from app.clinical_install import install_clinical
    from app.comparison_install import install_comparison
    from app.export_install import install_export
    from app.segmentation_install import install_segmentation
    from tests.app.clinical_fakes import TinyCasePredictor

    installs = {
        "segmentation": lambda: install_segmentation(window),
        "clinical": lambda: install_clinical(window, predictor_loader=TinyCasePredictor,
                                             audit_root=tmp_path / "audit"),
        "export": lambda: install_export(window, recovery_dir=tmp_path / "recovery"),
        "browser": lambda: install_browser(window),
        "comparison": lambda: install_comparison(window),
    }
    for name in order:
        installs[name]()
    context = window.context
    assert context.segmentation is not None and context.clinical is not None
    assert context.export is not None and context.session is not None
    assert context.browser is not None and context.cohort is not None and context.comparison is not None
    assert context.openers.names() == ["patient cohort", "clinical case"]  # the narrower kind of folder first
    return [a.text() for a in window.menu("File").actions() if a.text()], set(window.actions)


def test_features_install_in_any_order(qtbot, tmp_path: Path) -> None:  # noqa: ANN001
    results = []
    for order in (("segmentation", "clinical", "export", "browser", "comparison"),
                  ("comparison", "browser", "export", "clinical", "segmentation")):
        window = MainWindow(Settings(), settings_path=tmp_path / "settings.json")
        qtbot.addWidget(window)
        results.append(_installed(window, order, tmp_path / "-".join(order)))
    (menu_a, actions_a), (menu_b, actions_b) = results
    assert actions_a == actions_b
    assert sorted(menu_a) == sorted(menu_b) and menu_a.count("Open segmentation…") == 1
    assert menu_b.index("Save segmentation…") < menu_b.index("Open recent")
    assert menu_b.index("Open segmentation…") < menu_b.index("Open recent")
