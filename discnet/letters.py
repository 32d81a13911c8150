"""Compact letter display of pairwise comparisons (Piepho 2004, insert-and-absorb, as R's multcompView).

Groups that share a letter are not significantly different; groups that share no letter are. Start with
one letter held by every group. For each significant pair (i, j), every letter held by both is split in
two: a copy without i and a copy without j (*insert*); then a letter whose groups are a subset of another
letter's groups is dropped (*absorb*). A final *sweep* removes a group from a letter when each group it
shares that letter with also shares another letter with it (Piepho's sweeping, which keeps the display
valid and shortens it). Letters are then named a, b, c, ... in the order of the first group holding
them, so the first group always gets 'a'.

Example:
    >>> compact_letters(["A", "B", "C"], [("A", "C")])
    {'A': 'a', 'B': 'ab', 'C': 'b'}
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Sequence

#: Letter names in order: a-z, then A-Z, then a.-z. and so on (as multcompView).
ALPHABET = string.ascii_lowercase + string.ascii_uppercase


def letter_name(index: int) -> str:
    """Name of the ``index``-th letter (0 -> 'a', 52 -> 'a.').

    Example:
        >>> letter_name(0), letter_name(27), letter_name(53)
        ('a', 'B', 'b.')
    """
    return ALPHABET[index % len(ALPHABET)] + "." * (index // len(ALPHABET))


def _absorb(columns: list[frozenset]) -> list[frozenset]:
    """Drop columns that are a subset of another (the earlier of two equal ones is kept)."""
    kept: list[frozenset] = []
    for i, col in enumerate(columns):
        covered = any(col < other or (col == other and j < i) for j, other in enumerate(columns) if j != i)
        if not covered:
            kept.append(col)
    return kept


def _sweep(columns: list[set], order: dict) -> list[set]:
    """Piepho's sweep: remove a group from a letter when the letter is redundant for it."""
    locked: set[tuple] = set()
    for c, col in enumerate(columns):
        for g in sorted(col, key=order.__getitem__):
            if (g, c) in locked:
                continue
            others = [h for h in col if h != g]
            support = {}
            for h in others:
                shared = [d for d, other in enumerate(columns) if d != c and g in other and h in other]
                if not shared:
                    break
                support[h] = shared[0]
            else:
                if others:
                    col.discard(g)
                    locked.update({(g, d) for d in support.values()} | {(h, d) for h, d in support.items()})
    return [col for col in columns if col]


def compact_letters(groups: Sequence, significant: Iterable[tuple]) -> dict:
    """Letters of each group in ``groups`` (display order) given the significantly different pairs.

    Example:
        >>> compact_letters(["A", "B", "C"], [("A", "B"), ("A", "C"), ("B", "C")])
        {'A': 'a', 'B': 'b', 'C': 'c'}
        >>> compact_letters(["A", "B"], [])
        {'A': 'a', 'B': 'a'}
    """
    groups = list(dict.fromkeys(groups))
    order = {g: i for i, g in enumerate(groups)}
    columns: list[frozenset] = [frozenset(groups)] if groups else []
    for i, j in significant:
        if i not in order or j not in order:
            raise ValueError(f"pair ({i}, {j}) names a group not in {groups}")
        split = [col for col in columns if i in col and j in col]
        if not split:
            continue
        columns = [col for col in columns if col not in split]
        columns += [col - {j} for col in split] + [col - {i} for col in split]
        columns = _absorb([col for col in columns if col])
    columns = sorted(columns, key=lambda col: sorted(order[g] for g in col))
    swept = _absorb([frozenset(col) for col in _sweep([set(col) for col in columns], order)])
    swept = sorted(swept, key=lambda col: sorted(order[g] for g in col))
    return {g: "".join(letter_name(k) for k, col in enumerate(swept) if g in col) for g in groups}


def check_letters(letters: dict, significant: Iterable[tuple]) -> bool:
    """True when pairs share a letter exactly when they are not significantly different.

    Example:
        >>> check_letters({"A": "a", "B": "ab", "C": "b"}, [("A", "C")])
        True
    """
    different = {frozenset(pair) for pair in significant}
    names = list(letters)

    def split(text: str) -> set[str]:
        parts, i = [], 0
        while i < len(text):
            j = i + 1
            while j < len(text) and text[j] == ".":
                j += 1
            parts.append(text[i:j])
            i = j
        return set(parts)

    for a_index, a in enumerate(names):
        for b in names[a_index + 1 :]:
            shares = bool(split(letters[a]) & split(letters[b]))
            if shares == (frozenset((a, b)) in different):
                return False
    return True
