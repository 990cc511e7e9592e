"""Options of commands that can ``--resume`` a run: ``--epochs`` and the settings a resumed run keeps.

Such commands give their settings options no parser default (``None``), so that what was typed
can be told from what was not: a fresh run fills the rest from the config's defaults, and a
resumed run, which goes on with the settings in ``RUN/config.json``, refuses typed settings that
differ from those rather than dropping them silently."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from core.errors import CTLensError
from core.run_folder import CONFIG, read_config


def planned_epochs(args: argparse.Namespace, default: int) -> int:
    """``--epochs`` as given; resuming without it, the run's own plan, so that a resumed run keeps its
    learning-rate schedule; else ``default``."""
    return run_count(args, "epochs", default)


def run_count(args: argparse.Namespace, name: str, default: int) -> int:
    """Integer option ``name`` as typed; resuming without it, the run's own value
    (``RUN/config.json``); else ``default``."""
    if getattr(args, name) is not None:
        return int(getattr(args, name))
    if args.resume:
        try:
            return int(read_config(args.out)[name])
        except (CTLensError, KeyError, TypeError, ValueError):
            pass  # the engine says why the run cannot be resumed
    return default


def given_settings(args: argparse.Namespace, options: Mapping[str, str]) -> dict[str, Any]:
    """The config fields (``options``: argument dest -> field) whose options were typed."""
    return {field: getattr(args, dest) for dest, field in options.items() if getattr(args, dest) is not None}


def refuse_changed_settings(args: argparse.Namespace, given: Mapping[str, Any], flags: Mapping[str, str]) -> None:
    """Resuming, a CTLensError naming the typed options (``flags``: field -> option) whose values
    differ from the run's stored settings; nothing when not resuming or nothing differs."""
    if not args.resume:
        return
    try:
        stored = read_config(args.out)
    except CTLensError:
        return  # the engine says why the run cannot be resumed
    changed = [field for field, value in given.items() if field in stored and stored[field] != value]
    if changed:
        options = ", ".join(flags.get(f, "--" + f.replace("_", "-")) for f in changed)
        kept = ", ".join(f"{f} {_shown(stored[f])}" for f in changed)
        raise CTLensError(f"{args.out}: --resume goes on with the run's own settings ({kept} in its {CONFIG}), "
                          f"which {options} would change: leave them out, or start a new run elsewhere")  # fmt: skip


def _shown(value: Any) -> str:
    """A stored setting in a message: nested settings (augmentation, which only --no-augment can
    contradict) as on."""
    if isinstance(value, dict):
        return "on"
    return repr(value)
