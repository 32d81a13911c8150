"""What a verb writes, named alike across verbs: ``-o/--output`` is a file, ``--out-dir`` a folder.

Verbs that write one file (a CSV, a picture, a checkpoint) take ``-o/--output FILE``; verbs that write a
folder of files take ``--out-dir DIR``. The folder verbs took ``-o/--output`` before; those still work,
with a note on stderr, until a later release drops them.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="discnet predict")
    >>> add_out_dir(parser, "output folder")
    >>> parser.parse_args(["--out-dir", "masks"]).output
    PosixPath('masks')
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


class _DeprecatedOutput(argparse.Action):
    """``-o/--output`` on a verb that writes a folder: sets ``--out-dir`` and says so once."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(
            f"note: {parser.prog} {option_string} is a folder here and is now named --out-dir "
            f"(-o/--output will name a file on every verb; {option_string} still works for now)",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, values)


def add_out_dir(parser: argparse.ArgumentParser, help: str, required: bool = True) -> None:
    """``--out-dir DIR`` (``args.output``), with ``-o/--output`` as its deprecated alias."""
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--out-dir", dest="output", type=Path, metavar="DIR", help=help)
    group.add_argument(
        "-o", "--output", dest="output", type=Path, action=_DeprecatedOutput, metavar="DIR", help=argparse.SUPPRESS
    )
