"""EHR cohort CSV corpus: text in numeric columns, impossible values, unknown categories, empty rows,
broken structure. Columns follow the shared CXR cohort (`/work/shared/data/cxr/metadata.csv`); values
are synthetic.

The reader lives in ``inference/fusion/`` (owned by the fusion helper); :func:`find_reader` resolves it
at run time. When no reader exists the category contributes no cases (the report says so).
"""

from __future__ import annotations

import csv
import importlib
import io
import math
from collections.abc import Callable
from pathlib import Path

from tests.robustness.corpus import Case, Expect, either, read

COLUMNS = ["patientid", "offset", "sex", "age", "finding", "survival", "intubated", "went_icu",
           "needed_supplemental_O2", "temperature", "pO2_saturation", "leukocyte_count", "neutrophil_count",
           "lymphocyte_count", "view", "filename"]
NUMERIC = ["offset", "age", "temperature", "pO2_saturation", "leukocyte_count", "neutrophil_count", "lymphocyte_count"]
CANDIDATES = [  # (module, function names) the fusion helper may use
    ("inference.fusion.ehr", ("read_cohort_csv", "read_cohort", "load_cohort", "read_ehr_csv", "load_ehr")),
    ("inference.fusion.cohort", ("read_cohort_csv", "read_cohort", "load_cohort")),
    ("inference.fusion.data", ("read_cohort_csv", "read_cohort", "load_cohort")),
    ("inference.fusion.tabular", ("read_cohort_csv", "read_cohort", "load_cohort", "read_ehr")),
]


def find_reader() -> Callable[[Path], object] | None:
    """The fusion package's cohort CSV reader, if it has landed."""
    for module_name, names in CANDIDATES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name in names:
            fn = getattr(module, name, None)
            if callable(fn):
                return fn
    return None


def read_ehr(path: Path) -> object:
    reader = find_reader()
    if reader is None:
        raise RuntimeError("no EHR reader in inference.fusion")
    return reader(path)


def read_labels(path: Path) -> object:
    from inference.fusion.cohort import patient_labels

    return patient_labels(path)


def _rows(n: int = 6) -> list[dict[str, str]]:
    rows = []
    for i in range(n):
        rows.append({"patientid": str(100 + i // 2), "offset": str(i % 2 * 3), "sex": "MF"[i % 2],
                     "age": str(40 + 7 * i), "finding": "Pneumonia/Viral/COVID-19", "survival": "YN"[i % 2],
                     "intubated": "N", "went_icu": "YN"[(i + 1) % 2], "needed_supplemental_O2": "",
                     "temperature": f"{37 + 0.3 * i:.1f}", "pO2_saturation": str(90 + i), "leukocyte_count": "6.1",
                     "neutrophil_count": "", "lymphocyte_count": "1.2", "view": "PA", "filename": f"img{i}.jpg"})
    return rows


def _csv(rows: list[dict[str, str]], columns: list[str] | None = None, delimiter: str = ",") -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns or COLUMNS, delimiter=delimiter, extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _patients(result: object) -> list:
    return list(result) if isinstance(result, list | tuple) else []


def ehr_invariants(result: object) -> str | None:
    """Every EHR value the reader hands on is a finite number, a known category string, or None."""
    for p in _patients(result):
        for key, value in getattr(p, "ehr", {}).items():
            if isinstance(value, float) and not math.isfinite(value):
                return f"patient {p.patient_id}: {key} = {value} (non-finite value passed on)"
    return None


def flagged_or_dropped(column: str, value: str, row: int) -> Callable[[object], str | None]:
    """A bad value in a patient's presentation row must not be used as is, and must be flagged."""
    pid = str(100 + row // 2)
    presentation = row % 2 == 0  # offsets 0 / 3: the even row is the patient's earliest

    def run(result: object) -> str | None:
        if problem := ehr_invariants(result):
            return problem
        for p in _patients(result):
            if p.patient_id != pid or column not in p.ehr:
                continue
            used = p.ehr[column]
            try:
                bad = float(value)
            except ValueError:
                bad = None
            if bad is not None and used == bad and presentation:
                return f"impossible {column}={value} used as is"
            if presentation and not any(column in w for w in p.warnings):
                return f"{column}={value!r} changed silently (no warning names the column)"
        return None

    return run


def unknown_label(column: str) -> Callable[[object], str | None]:
    """An outcome cell that is neither Y nor N is unknown (NaN), never a negative label."""
    index = {"went_icu": 0, "intubated": 1, "survival": 2, "needed_supplemental_O2": 3}[column]

    def run(result: object) -> str | None:
        labels = result if isinstance(result, dict) else {}
        wrong = {pid: v[index] for pid, v in labels.items() if not math.isnan(v[index])}
        return f"garbage {column} became labels {wrong}" if wrong else None

    return run


def _case(cid: str, text: str | bytes, exp: Expect, action: str = "ehr") -> Case:
    def make(d: Path, text=text) -> Path:
        d.mkdir(parents=True, exist_ok=True)
        path = d / "cohort.csv"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return path

    return Case(f"ehr/{cid}", "ehr_csv", make, exp, action=action)


def cases() -> list[Case]:
    if find_reader() is None:
        return []
    out = []
    for col in NUMERIC:
        for k, bad in enumerate(("abc", "12,5", "N/A?", "1e999", "--", "38.5°C", "nan", "inf")):
            rows = _rows()
            rows[2][col] = bad
            check = flagged_or_dropped(col, bad, 2) if col != "offset" else ehr_invariants
            out.append(_case(f"text-in-{col}-{k}", _csv(rows), either(check, note="missing + warning, or EHRDataError")))
    impossible = [("age", "-5"), ("age", "200"), ("age", "1000"), ("pO2_saturation", "180"), ("pO2_saturation", "-1"),
                  ("pO2_saturation", "101"), ("temperature", "10"), ("temperature", "60"), ("temperature", "-273"),
                  ("leukocyte_count", "-3"), ("leukocyte_count", "1000000"), ("lymphocyte_count", "-0.5"),
                  ("neutrophil_count", "-1"), ("offset", "-1000000")]
    for col, value in impossible:
        for where in (0, 3, 5):
            rows = _rows()
            rows[where][col] = value
            out.append(_case(f"impossible-{col}-{value}-row{where}", _csv(rows),
                             either(flagged_or_dropped(col, value, where) if col != "offset" else ehr_invariants,
                                    note="refused or flagged, never silently used")))
    unknown = [("sex", "X"), ("sex", "unknown"), ("sex", "3"), ("sex", "männlich"), ("view", "LATERAL"),
               ("view", "XYZ"), ("finding", "Alien"), ("survival", "maybe"), ("survival", "1"), ("went_icu", "yes"),
               ("intubated", "Y?"), ("needed_supplemental_O2", "0.5")]
    for col, value in unknown:
        for where in (0, 4):
            rows = _rows()
            rows[where][col] = value
            check = flagged_or_dropped(col, value, where) if col in ("sex", "view") else ehr_invariants
            out.append(_case(f"unknown-{col}-{value}-row{where}", _csv(rows), either(check, note="'unknown' + warning")))
    for col in ("went_icu", "intubated", "survival", "needed_supplemental_O2"):
        for value in ("maybe", "1", "yes", "0", "?"):
            rows = _rows()
            for r in rows:
                r[col] = value
            out.append(_case(f"labels-unknown-{col}-{value}", _csv(rows),
                             either(unknown_label(col), note="unknown outcome → NaN, not negative"), action="ehr_labels"))
    base = _csv(_rows())
    lines = base.splitlines()
    empties = {"blank-line-middle": "\n".join(lines[:3] + [""] + lines[3:]) + "\n",
               "blank-line-end": base + "\n\n\n", "commas-row": "\n".join(lines[:3] + ["," * 15] + lines[3:]) + "\n",
               "whitespace-row": "\n".join(lines[:2] + ["   "] + lines[2:]) + "\n", "header-only": lines[0] + "\n",
               "all-empty-rows": lines[0] + "\n" + ("," * 15 + "\n") * 4, "empty-file": "", "only-newlines": "\n\n\n"}
    for name, text in empties.items():
        out.append(_case(f"empty-{name}", text, either(note="empty rows skipped or a clear error")))
    for col in ("patientid", "age", "sex", "survival", "went_icu", "filename"):
        out.append(_case(f"missing-column-{col}", _csv(_rows(), [c for c in COLUMNS if c != col]), either()))
    structural = {
        "duplicate-column": _csv(_rows(), COLUMNS + ["age"]), "extra-columns": _csv(_rows(), COLUMNS + ["x1", "x2"]),
        "bom": "\ufeff" + base, "semicolons": _csv(_rows(), delimiter=";"), "tabs": _csv(_rows(), delimiter="\t"),
        "ragged-short-row": "\n".join(lines[:2] + [lines[2].rsplit(",", 5)[0]] + lines[3:]) + "\n",
        "ragged-long-row": "\n".join(lines[:2] + [lines[2] + ",x,y,z"] + lines[3:]) + "\n",
        "quoted-newline": base.replace("Pneumonia/Viral/COVID-19", '"Pneumonia\nViral"', 1),
        "unterminated-quote": base.replace("Pneumonia/Viral/COVID-19", '"Pneumonia', 1),
        "crlf": base.replace("\n", "\r\n"), "huge-cell": base.replace("img0.jpg", "x" * 200_000, 1),
        "no-header": "\n".join(lines[1:]) + "\n", "duplicate-rows": base + "\n".join(lines[1:]) + "\n",
    }
    for name, text in structural.items():
        exp = (read(lambda r: None if len(_patients(r)) == 3 else f"{len(_patients(r))} patients, expected 3",
                    note="read normally") if name in ("bom", "crlf", "extra-columns") else either(ehr_invariants))
        out.append(_case(f"structure-{name}", text, exp))
    out.append(_case("structure-latin1", base.replace("PA", "PÄ").encode("latin-1"), either()))
    out.append(_case("structure-binary", bytes(range(256)) * 8, either()))
    out.append(_case("structure-utf16", base.encode("utf-16"), either()))
    return out
