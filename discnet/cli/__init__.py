"""``discnet`` console script: one sub-command per verb, each in its own module of this package.

A verb module defines ``add_parser(subparsers)`` which registers its parser and sets
``func=run`` where ``run(args) -> int | None``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from discnet.errors import InputError

VERBS = ["synth", "split", "predict", "overlay", "evaluate", "volumes", "agreement"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="discnet", description="Intervertebral disc segmentation and measurement in spine MRI."
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb in VERBS:
        importlib.import_module(f"discnet.cli.{verb}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except InputError as err:
        if args.debug:
            raise
        print(f"discnet {args.verb}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"discnet {args.verb}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
