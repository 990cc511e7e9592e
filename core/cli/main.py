"""The headless ``ctlens`` commands (``python -m core.cli``); the desktop adds ``view``."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Callable, Sequence

from core import __version__
from core.cli import (
    diagnose_cmd,
    embed_cmd,
    evaluate_cmd,
    explain_cmd,
    inspect_cmd,
    pretrain_cmd,
    probe_cmd,
    synth_cmd,
    train_cmd,
)
from core.errors import CTLensError

AddParser = Callable[[argparse._SubParsersAction], None]  # type: ignore[type-arg]
HEADLESS: tuple[AddParser, ...] = (
    inspect_cmd.add_parser,
    synth_cmd.add_parser,
    train_cmd.add_parser,
    diagnose_cmd.add_parser,
    explain_cmd.add_parser,
    evaluate_cmd.add_parser,
    embed_cmd.add_parser,
    pretrain_cmd.add_parser,
    probe_cmd.add_parser,
)


def build_parser(extra: Sequence[AddParser] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ctlens", description="Inspectable deep-learning CT diagnosis.")
    parser.add_argument("--version", action="version", version=f"ctlens {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (*HEADLESS, *extra):
        add(sub)
    return parser


def run(argv: Sequence[str] | None, parser: argparse.ArgumentParser, default: str | None = None) -> int:
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not args.verbose:  # bad input is reported in one line per path; libraries stay quiet
        logging.getLogger("pydicom").setLevel(logging.CRITICAL)
        warnings.filterwarnings("ignore", module=r"(pydicom|highdicom|nibabel)(\.|$)")
    if getattr(args, "run", None) is None:
        if default is None:
            parser.print_help()
            return 2
        args = parser.parse_args([default, *(argv or [])])
    try:
        return int(args.run(args))
    except CTLensError as exc:
        print(f"ctlens {args.command}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # an output path that is a file, a folder that cannot be written, a full disk
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"ctlens {args.command}: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ctlens {args.command}: interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    return run(argv, build_parser())
