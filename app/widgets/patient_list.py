"""The patient list of a cohort folder: searchable, sortable, outcomes hidden; double-click opens a patient."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QSortFilterProxyModel, Qt
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.model.cohort import Cohort, CohortModel, PatientSummary

COLUMNS = ("Patient", "Sex", "Age", "X-rays", "Follow-up", "Dates")
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
ID_ROLE = Qt.ItemDataRole.UserRole + 2


def _item(text: str, sort: object, tooltip: str = "") -> QStandardItem:
    item = QStandardItem(text)
    item.setEditable(False)
    item.setData(sort, SORT_ROLE)
    if tooltip:
        item.setToolTip(tooltip)
    return item


def _row(patient: PatientSummary) -> list[QStandardItem]:
    pid = patient.patient_id
    numeric_id = float(pid) if pid.replace(".", "", 1).isdigit() else None
    images = f"{patient.n_images}" + (f" ({patient.n_missing} missing)" if patient.n_missing else "")
    first = patient.offsets[0] if patient.offsets else float("inf")
    row = [
        _item(pid, (0, numeric_id, "") if numeric_id is not None else (1, 0.0, pid)),
        _item(patient.sex or "—", patient.sex or "~"),
        _item(f"{patient.age:g}" if patient.age is not None else "—", patient.age if patient.age is not None else 1e9),
        _item(images, patient.n_images, "X-rays listed in metadata.csv"),
        _item(patient.span_text or "—", (first, patient.offsets[1] if patient.offsets else 0.0),
              "days since symptom onset / admission (offset)"),
        _item(patient.dates_text or "—", patient.dates_text or "~"),
    ]
    row[0].setData(pid, ID_ROLE)
    for item in row[1:4]:
        item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
    return row


class _SortProxy(QSortFilterProxyModel):
    """Sorts on :data:`SORT_ROLE` (numbers as numbers, ids numerically), filters on every column's text."""

    def lessThan(self, left, right) -> bool:  # noqa: N802, ANN001 - Qt API
        a, b = left.data(SORT_ROLE), right.data(SORT_ROLE)
        try:
            return bool(a < b)
        except TypeError:
            return str(a) < str(b)


class PatientListPanel(QWidget):
    """Lists :attr:`CohortModel.cohort`; ``open_patient(patient_id)`` is called on double-click / Open."""

    def __init__(self, model: CohortModel, open_patient: Callable[[str], object], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("patient_list")
        self.model, self._open = model, open_patient
        self.items = QStandardItemModel(0, len(COLUMNS), self)
        self.items.setHorizontalHeaderLabels(list(COLUMNS))
        self.proxy = _SortProxy(self)
        self.proxy.setSourceModel(self.items)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setFilterKeyColumn(-1)
        self.search = QLineEdit(self)
        self.search.setObjectName("patient_search")
        self.search.setPlaceholderText("Search patient id, sex, age, dates…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._filter)
        self.table = QTableView(self)
        self.table.setObjectName("patient_table")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.doubleClicked.connect(lambda index: self.open_row(index.row()))
        self.summary = QLabel(self)
        self.summary.setObjectName("patient_summary")
        self.summary.setWordWrap(True)
        self.open_button = QPushButton("Open patient", self)
        self.open_button.clicked.connect(self.open_selected)
        self.open_button.setEnabled(False)
        self.table.selectionModel().selectionChanged.connect(
            lambda *_a: self.open_button.setEnabled(bool(self.table.selectionModel().selectedRows())))
        row = QHBoxLayout()
        row.addWidget(self.search, 1)
        row.addWidget(self.open_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(row)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.summary)
        model.cohort_changed.connect(self._fill)
        model.patient_opened.connect(self._on_opened)
        self._fill(model.cohort)

    # ---- content -----------------------------------------------------------------------------
    def _fill(self, cohort: Cohort | None) -> None:
        self.items.removeRows(0, self.items.rowCount())
        for patient in cohort.patients if cohort is not None else []:
            self.items.appendRow(_row(patient))
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self._update_summary()

    def _on_opened(self, patient_id: str) -> None:
        self._update_summary()
        self.select(patient_id)  # the open patient stays highlighted (also when the list is searched again)

    def _filter(self, text: str) -> None:
        self.proxy.setFilterFixedString(text.strip())
        self._update_summary()

    def _update_summary(self) -> None:
        cohort = self.model.cohort
        if cohort is None:
            self.summary.setText("Open a cohort folder (metadata.csv with several patients + images/) to list it.")
            return
        shown, total = self.proxy.rowCount(), len(cohort.patients)
        count = f"{total} patients" if shown == total else f"{shown} of {total} patients"
        opened = f" · open: patient {self.model.open_patient}" if self.model.open_patient else ""
        self.summary.setText(f"<b>{cohort.folder.name}</b>: {count} · {cohort.n_rows} X-rays{opened}<br>"
                             "<small>Outcomes (ICU, intubation, survival, O₂), notes and the diagnosis are "
                             "hidden: they are what the model predicts.</small>")

    # ---- opening -----------------------------------------------------------------------------
    def patient_at(self, row: int) -> str | None:
        index = self.proxy.index(row, 0)
        return str(index.data(ID_ROLE)) if index.isValid() else None

    def visible_ids(self) -> list[str]:
        return [pid for r in range(self.proxy.rowCount()) if (pid := self.patient_at(r)) is not None]

    def select(self, patient_id: str) -> bool:
        for r in range(self.proxy.rowCount()):
            if self.patient_at(r) == patient_id:
                self.table.selectRow(r)
                self.table.scrollTo(self.proxy.index(r, 0))
                return True
        return False

    def open_row(self, row: int) -> None:
        pid = self.patient_at(row)
        if pid is not None:
            self._open(pid)

    def open_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self.open_row(rows[0].row())
