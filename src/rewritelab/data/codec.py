"""Alphabet codec: rectangular `uint8` arrays of alphabet indices <-> Python strings.

Rows become `str` through a UCS-4 string view of a code-point array, never a per-character join.
"""

from __future__ import annotations

import numpy as np


class Codec:
    """Maps alphabet indices (uint8) to strings and back through UCS-4 views of numpy arrays."""

    def __init__(self, alphabet: str):
        self.size = len(alphabet)
        self.points = np.array([ord(ch) for ch in alphabet], dtype=np.uint32)
        order = np.argsort(self.points)
        self._sorted, self._order = self.points[order], order.astype(np.uint8)

    def decode(self, codes: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        """Rows of `codes` (truncated to `lengths`) as an object array of `str`."""
        n, width = codes.shape
        if width == 0:
            return np.full(n, "", dtype=object)
        points = self.points[codes]
        if lengths is not None:
            points[np.arange(width) >= lengths[:, None]] = 0  # NUL padding: dropped by numpy's str view
        return points.view(f"U{width}").ravel().astype(object)

    def encode(self, strings: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Strings over the alphabet → (n, max length) indices (padding is index 0) and lengths."""
        lengths = np.fromiter(map(len, strings), dtype=np.int64, count=len(strings))
        width = max(int(lengths.max(initial=0)), 1)
        points = np.array(strings, dtype=f"U{width}").view(np.uint32).reshape(len(strings), width)
        index = np.minimum(np.searchsorted(self._sorted, points), self.size - 1)
        return self._order[index], lengths
