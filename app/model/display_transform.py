"""Flip and rotate of a 2-D view's *display* (never of the data): the user's part, as a small algebra.

The transform is a signed 2×2 permutation ``M`` acting on screen vectors ``(right, up)`` of the
canonical (radiological) display: the image point drawn at canonical screen direction ``d`` is drawn at
``M @ d`` after the transform. Operations compose on the left, in the order the user applies them
(flip, then rotate, rotates the flipped image as it is seen). How a view applies it to its plane mapping
is :func:`app.rendering.display_transform.transformed`.
"""

from __future__ import annotations

from dataclasses import dataclass

Matrix = tuple[int, int, int, int]  # row-major (a, b, c, d) of [[a, b], [c, d]]

_ONE: Matrix = (1, 0, 0, 1)
_FLIP_H: Matrix = (-1, 0, 0, 1)
_FLIP_V: Matrix = (1, 0, 0, -1)
_ROT_CW: Matrix = (0, 1, -1, 0)  # screen up → screen right: the image turns clockwise
_ROT_CCW: Matrix = (0, -1, 1, 0)


def _mul(p: Matrix, q: Matrix) -> Matrix:
    a, b, c, d = p
    e, f, g, h = q
    return (a * e + b * g, a * f + b * h, c * e + d * g, c * f + d * h)


def _power(m: Matrix, k: int) -> Matrix:
    out = _ONE
    for _ in range(k):
        out = _mul(m, out)
    return out


@dataclass(frozen=True)
class DisplayTransform:
    """The user's flips and quarter turns of one view; :data:`IDENTITY` shows the canonical orientation."""

    matrix: Matrix = _ONE

    @property
    def is_identity(self) -> bool:
        return self.matrix == _ONE

    @property
    def swaps_axes(self) -> bool:
        """True after an odd number of quarter turns (screen width and height exchange)."""
        return self.matrix[0] == 0

    def flipped_horizontally(self) -> DisplayTransform:
        return DisplayTransform(_mul(_FLIP_H, self.matrix))

    def flipped_vertically(self) -> DisplayTransform:
        return DisplayTransform(_mul(_FLIP_V, self.matrix))

    def rotated(self, clockwise: bool = True) -> DisplayTransform:
        return DisplayTransform(_mul(_ROT_CW if clockwise else _ROT_CCW, self.matrix))

    def describe(self) -> str:
        """Short corner text: "" (canonical), "rotated 90°", "flipped H", "rotated 90°, flipped H", …"""
        if self.is_identity:
            return ""
        if self.matrix == _FLIP_H:
            return "flipped H"
        if self.matrix == _FLIP_V:
            return "flipped V"
        a, b, c, d = self.matrix
        if a * d - b * c == 1:  # a rotation
            turns = next(k for k in range(1, 4) if _power(_ROT_CW, k) == self.matrix)
            return f"rotated {90 * turns}°"
        # any other reflection is a flip H after one or three quarter turns clockwise
        turns = next(k for k in range(1, 4) if _mul(_FLIP_H, _power(_ROT_CW, k)) == self.matrix)
        return f"rotated {90 * turns}°, flipped H"


IDENTITY = DisplayTransform()
