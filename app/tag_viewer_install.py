"""``install_tag_viewer(window)``: the DICOM tags panel (header of the slice on screen, searchable).

View > Show DICOM tags (Ctrl+I) brings the panel forward and puts the cursor in its search field.
Returns the :class:`~app.widgets.tag_viewer.TagViewer` (tests drive it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.widgets.tag_viewer import TagViewer

if TYPE_CHECKING:
    from app.main_window import MainWindow


def install_tag_viewer(window: MainWindow) -> TagViewer:
    viewer = TagViewer(window.context.document, window)
    dock = window.add_panel("DICOM tags", viewer, name="tags")

    def show() -> None:
        dock.show()
        dock.raise_()
        viewer.refresh()
        viewer.search.setFocus()
        viewer.search.selectAll()

    window.add_action("View", "Show DICOM tags", show, name="show_tags", shortcut="Ctrl+I",
                      tooltip="The header of the file behind the slice on screen, searchable (Ctrl+I)")
    return viewer
