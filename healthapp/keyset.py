"""A set of 64-bit keys (the first 64 bits of blind indexes) in 16 to 32 bytes per key.

An import remembers every key of its file, to find a row listed twice and, in mode full, whom the file
leaves out. Python's ``set`` of ints costs ~75 bytes per key (an int object and a table slot): 7 MB for a
100,000-row roster, the one part of a dry run that grew with the file. Here the keys sit in one
``array('Q')`` with open addressing; the keys are HMAC output, uniformly spread, so their low bits are
the slot as they are.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable

_EMPTY = 0  # a free slot; the key 0 itself is kept apart


class KeySet:
    """``add`` and ``in`` for unsigned 64-bit ints; the table doubles at half full."""

    __slots__ = ("_mask", "_size", "_slots", "_zero")

    def __init__(self, keys: Iterable[int] = ()) -> None:
        self._slots = array("Q", bytes(8 * 1024))
        self._mask = 1023
        self._size = 0
        self._zero = False
        for key in keys:
            self.add(key)

    def __len__(self) -> int:
        return self._size + self._zero

    def __contains__(self, key: int) -> bool:
        if key == _EMPTY:
            return self._zero
        return self._slots[_slot(self._slots, self._mask, key)] == key

    def add(self, key: int) -> bool:
        """Add ``key``; False if it was there already."""
        if key == _EMPTY:
            new, self._zero = not self._zero, True
            return new
        slots = self._slots
        at = _slot(slots, self._mask, key)
        if slots[at] == key:
            return False
        slots[at] = key
        self._size += 1
        if self._size * 2 > self._mask:
            self._grow()
        return True

    def _grow(self) -> None:
        old = self._slots
        self._slots = slots = array("Q", bytes(16 * len(old)))
        self._mask = mask = len(slots) - 1
        for key in old:
            if key != _EMPTY:
                slots[_slot(slots, mask, key)] = key


def _slot(slots: array, mask: int, key: int) -> int:
    """Where ``key`` is in the table, or the free slot where it would go (linear probing)."""
    at = key & mask
    while (held := slots[at]) != _EMPTY and held != key:
        at = (at + 1) & mask
    return at
