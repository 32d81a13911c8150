"""Compact letter display of pairwise comparisons (Piepho 2004), as R computes it.

Groups that share a letter are not significantly different; groups that share no letter are. Two
algorithms, each following its R function step by step (so the letters are R's, not only valid):

- ``"multcompView"`` (default; R's ``multcompView::multcompLetters``): *insert-absorb* without Piepho's
  sweep. Start with one letter held by every group. For each significant pair (i, j), i before j in
  display order, taken in that order (i with each later j, then the next i), every letter held by both
  loses j and a copy of it that loses i is appended (*insert*); then a letter whose groups are a subset
  of another letter's groups is dropped (*absorb*). The letters are sorted by the first group holding
  them (ties by the next group, as ``multcompLetters``' ``sortCols``) and named a, b, c, ...
- ``"cld"`` (R's ``multcomp::cld``, its ``insert_absorb``): the same insert-absorb on the groups ordered
  by mean (ascending; display order when no means are given), then Piepho's *sweep* (a group is removed
  from a letter when every group it shares that letter with also shares another letter with it), twice,
  each time after ordering the letters by how many groups hold them and then by their first group.

Letters past the 52nd (a-z, A-Z) get leading dots, as in both R packages: ``.a``, ``.b``, ...

Example:
    >>> compact_letters(["A", "B", "C"], [("A", "C")])
    {'A': 'a', 'B': 'ab', 'C': 'b'}
    >>> compact_letters(list("ABCDE"), [("A", "B"), ("C", "D")])["E"]
    'abcd'
    >>> compact_letters(list("ABCDE"), [("A", "B"), ("C", "D")], method="cld")["E"]
    'bd'
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Sequence

import numpy as np

#: Letter names in order: a-z, then A-Z, then .a-.Z, ..a and so on (as multcompView and multcomp).
ALPHABET = string.ascii_lowercase + string.ascii_uppercase
METHODS = ("multcompView", "cld")


def letter_name(index: int) -> str:
    """Name of the ``index``-th letter (0 -> 'a', 52 -> '.a').

    Example:
        >>> letter_name(0), letter_name(27), letter_name(53)
        ('a', 'B', '.b')
    """
    return "." * (index // len(ALPHABET)) + ALPHABET[index % len(ALPHABET)]


def _first_rows(mat: np.ndarray) -> np.ndarray:
    """Index of each column's first True row (rows + 1 for an empty column, sorting it last)."""
    return np.where(mat.any(axis=0), mat.argmax(axis=0), mat.shape[0] + 1)


def _absorb(columns: list[np.ndarray]) -> list[np.ndarray]:
    """Drop columns contained in another (the earlier of two equal ones is kept); order kept."""
    kept = []
    for i, col in enumerate(columns):
        covered = any(
            not (col & ~other).any() and ((other & ~col).any() or j < i) for j, other in enumerate(columns) if j != i
        )
        if not covered:
            kept.append(col)
    return kept


def _insert_absorb(n: int, pairs: list[tuple[int, int]]) -> np.ndarray:
    """Letter matrix (rows: groups, columns: letters) after inserting each pair (i, j) in turn."""
    columns = [np.ones(n, bool)]
    for i, j in pairs:
        split = [col[i] and col[j] for col in columns]
        if not any(split):
            continue
        copies = []
        for k, col in enumerate(columns):
            if split[k]:
                copy = col.copy()
                copy[i] = False
                copies.append(copy)
                columns[k] = col.copy()
                columns[k][j] = False
        columns = _absorb(columns + copies)
    return np.stack(columns, axis=1)


def _sort_columns(mat: np.ndarray) -> np.ndarray:
    """multcompLetters' ``sortCols``: by first True row; each tied neighbour pair by the rows below."""
    mat = mat[:, np.argsort(_first_rows(mat), kind="stable")]
    first = _first_rows(mat)
    for i in range(mat.shape[1] - 1):
        if first[i] == first[i + 1] and first[i] < mat.shape[0] - 1:
            below = slice(first[i] + 1, mat.shape[0])
            mat[below, i : i + 2] = _sort_columns(mat[below, i : i + 2].copy())
    return mat


def _sweep(mat: np.ndarray) -> np.ndarray:
    """multcomp's ``sweepLetters``: remove redundant entries column by column; restart when a column empties."""
    mat = mat.copy()
    locked = np.zeros(mat.shape, bool)
    for i in range(mat.shape[1]):
        tmp = np.where(mat[:, [i]], mat, False)
        one = np.flatnonzero(tmp[:, i])
        if np.delete(tmp, i, axis=1).any(axis=1).all():
            continue
        for j in one:
            if locked[j, i]:
                continue
            locks = []
            for k in one:
                if k == j:
                    continue
                shared = np.flatnonzero(tmp[j] & tmp[k])
                shared = shared[shared != i]
                if shared.size:
                    locks += [(j, shared[-1]), (k, shared[-1])]
            if len(one) > 1 and len(locks) == 2 * (len(one) - 1):
                for row, col in locks:
                    locked[row, col] = True
                mat[j, i] = False
        if not mat[:, i].any():
            return _sweep(np.delete(mat, i, axis=1))
    return mat[:, mat.any(axis=0)]


def _by_size_then_first(mat: np.ndarray) -> np.ndarray:
    """Sweep the letters ordered by group count, then order them by their first group."""
    mat = _sweep(mat[:, np.argsort(mat.sum(axis=0), kind="stable")])
    return mat[:, np.argsort(_first_rows(mat), kind="stable")]


def compact_letters(
    groups: Sequence, significant: Iterable[tuple], method: str = "multcompView", means: Sequence | None = None
) -> dict:
    """Letters of each group in ``groups`` (display order) given the significantly different pairs.

    ``method``: ``"multcompView"`` (default) or ``"cld"``; ``means`` (one per group) orders the groups
    for ``"cld"``, as ``multcomp::cld`` orders them by their mean response.

    Example:
        >>> compact_letters(["A", "B", "C"], [("A", "B"), ("A", "C"), ("B", "C")])
        {'A': 'a', 'B': 'b', 'C': 'c'}
        >>> compact_letters(["A", "B"], [])
        {'A': 'a', 'B': 'a'}
    """
    if method not in METHODS:
        raise ValueError(f"letters method {method!r} is not one of {', '.join(METHODS)}")
    groups = list(dict.fromkeys(groups))
    order = {g: i for i, g in enumerate(groups)}
    if not groups:
        return {}
    pairs = set()
    for a, b in significant:
        if a not in order or b not in order:
            raise ValueError(f"pair ({a}, {b}) names a group not in {groups}")
        if a != b:
            pairs.add(tuple(sorted((order[a], order[b]))))
    rows = list(range(len(groups)))
    if method == "cld" and means is not None:
        rows = [int(r) for r in np.argsort(np.asarray(means, float), kind="stable")]
    position = {g: p for p, g in enumerate(rows)}
    mat = _insert_absorb(len(rows), [(position[i], position[j]) for i, j in sorted(pairs)])
    if method == "multcompView":
        mat = _sort_columns(mat)
    elif pairs:
        mat = _by_size_then_first(_by_size_then_first(mat))
    names = [letter_name(k) for k in range(mat.shape[1])]
    return {g: "".join(n for n, held in zip(names, mat[position[order[g]]], strict=True) if held) for g in groups}


def split_letters(text: str) -> set[str]:
    """The letters of one group's display (``"ab.c"`` -> {'a', 'b', '.c'}).

    Example:
        >>> sorted(split_letters("ab.c"))
        ['.c', 'a', 'b']
    """
    return set(re.findall(r"\.*[A-Za-z]", text))


def check_letters(letters: dict, significant: Iterable[tuple]) -> bool:
    """True when pairs share a letter exactly when they are not significantly different.

    Example:
        >>> check_letters({"A": "a", "B": "ab", "C": "b"}, [("A", "C")])
        True
    """
    different = {frozenset(pair) for pair in significant}
    names = list(letters)
    for a_index, a in enumerate(names):
        for b in names[a_index + 1 :]:
            shares = bool(split_letters(letters[a]) & split_letters(letters[b]))
            if shares == (frozenset((a, b)) in different):
                return False
    return True
