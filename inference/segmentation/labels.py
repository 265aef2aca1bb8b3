"""The label table: named objects with a colour and their value in the uint8 label map."""

from __future__ import annotations

from dataclasses import dataclass

from inference.errors import InvalidPromptError

PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
)  # fmt: skip


@dataclass(frozen=True)
class Label:
    name: str
    colour: tuple[int, int, int]
    value: int  # 1..255 in the label map; 0 is background


class LabelTable:
    """Ordered labels; names and values are unique."""

    def __init__(self) -> None:
        self._by_value: dict[int, Label] = {}

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(sorted(self._by_value.values(), key=lambda lab: lab.value))

    def __len__(self) -> int:
        return len(self._by_value)

    def add(self, name: str, colour: tuple[int, int, int] | None = None, value: int | None = None) -> Label:
        if any(lab.name == name for lab in self._by_value.values()):
            raise InvalidPromptError(f"A label named '{name}' already exists.")
        if value is None:
            value = next(v for v in range(1, 256) if v not in self._by_value) if len(self) < 255 else 0
        if not 1 <= value <= 255 or value in self._by_value:
            raise InvalidPromptError(f"Label value {value} is taken or outside 1..255.")
        colour = colour or PALETTE[(value - 1) % len(PALETTE)]
        label = Label(name, tuple(int(c) for c in colour), int(value))  # type: ignore[arg-type]
        self._by_value[label.value] = label
        return label

    def remove(self, label: Label) -> None:
        self._by_value.pop(label.value, None)

    def find(self, key: str | int | Label) -> Label | None:
        if isinstance(key, Label):
            return self._by_value.get(key.value)
        if isinstance(key, int):
            return self._by_value.get(key)
        return next((lab for lab in self._by_value.values() if lab.name == key), None)

    def clear(self) -> None:
        self._by_value.clear()
