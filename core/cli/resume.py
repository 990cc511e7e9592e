"""``--epochs`` for commands that can ``--resume`` a run."""

from __future__ import annotations

import argparse

from core.errors import CTLensError
from core.run_folder import read_config


def planned_epochs(args: argparse.Namespace, default: int) -> int:
    """``--epochs`` as given; resuming without it, the run's own plan (``RUN/config.json``), so that a
    resumed run keeps its learning-rate schedule; else ``default``."""
    if args.epochs is not None:
        return int(args.epochs)
    if args.resume:
        try:
            return int(read_config(args.out)["epochs"])
        except (CTLensError, KeyError, TypeError, ValueError):
            pass  # the engine says why the run cannot be resumed
    return default
