"""``--epochs`` for commands that can ``--resume`` a run."""

from __future__ import annotations

import argparse
import json


def planned_epochs(args: argparse.Namespace, default: int) -> int:
    """``--epochs`` as given; resuming without it, the run's own plan (``RUN/config.json``), so that a
    resumed run keeps its learning-rate schedule; else ``default``."""
    if args.epochs is not None:
        return int(args.epochs)
    if args.resume:
        try:
            return int(json.loads((args.out / "config.json").read_text())["epochs"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # the engine says why the run cannot be resumed
    return default
