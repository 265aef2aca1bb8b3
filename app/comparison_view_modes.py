"""The view-mode toolbar while the prior comparison is shown: what applies reaches both sides, the rest is off.

Why: the comparison replaces the view grid, so the view modes (which act on the grid's views) did nothing
visible — pressing I on an X-ray comparison changed the hidden grid. Now invert (one grey-scale state for
the whole window) is drawn on both comparison sides too, and a window preset (View > Window preset, keys
1–6) sets the prior's window/level as well as the current's. Layout, flip/rotate, slab, cine and "save view
image" act on the grid only, so they are off while comparing (tooltips and a status line say so) and come
back as the image allows when the comparison closes.
"""

from __future__ import annotations

from app.comparison_install import ComparisonWorkspace
from app.model.presets import PRESETS
from app.view_display import inverted_grey_lut, show_inverted
from app.view_modes_install import ViewModesWorkspace

COMPARING_STATUS = ("Comparing: invert and window presets apply to both sides; layout, flip/rotate, slab and "
                    "cine are not available while comparing.")


def link_comparison_view_modes(view_modes: ViewModesWorkspace, comparison: ComparisonWorkspace) -> None:
    """Connect the two features (installed independently; ``build_viewer`` calls this after both)."""
    window = view_modes.window
    modes, model = view_modes.modes, comparison.model
    lut = inverted_grey_lut()

    def draw_inverted() -> None:
        if not model.active:
            return  # the view is built on first use; it is redrawn when shown
        view = comparison.view()
        for side in (view.current, view.prior):
            show_inverted(side.view, modes.inverted, lut)
            side.view.set_mode_text("inverted" if modes.inverted else "")

    def on_active(active: bool) -> None:
        view_modes.set_comparing(active)
        if active:
            draw_inverted()
            window.context.show_status(COMPARING_STATUS)

    def preset_to_prior(window_width: float, level: float) -> None:
        if model.active and model.prior.volume is not None:
            model.prior.set_window_level(window_width, level)

    model.active_changed.connect(on_active)
    modes.inverted_changed.connect(lambda _on: draw_inverted())
    for preset in PRESETS:
        action = window.actions.get(f"preset_{preset.name.lower()}")
        if action is not None:
            action.triggered.connect(lambda *_a, p=preset: preset_to_prior(p.window, p.level))
    if model.active:
        on_active(True)
