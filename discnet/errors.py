"""The one exception type for bad user input.

Every entry point (CLI verbs, ``train.py``) turns a :class:`InputError` into one line on stderr and
exit code 2, without a traceback.
"""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad input from the user: which file, what is wrong, what to do.

    Example:
        >>> raise InputError("scan.nii.gz", "is not a NIfTI file", "export it again from the scanner")
        Traceback (most recent call last):
        discnet.errors.InputError: scan.nii.gz: is not a NIfTI file; export it again from the scanner
    """

    def __init__(self, where: str | Path | None, problem: str, fix: str | None = None):
        self.where, self.problem, self.fix = where, problem, fix
        text = f"{where}: {problem}" if where is not None else problem
        if fix:
            text += f"; {fix}"
        super().__init__(text)
