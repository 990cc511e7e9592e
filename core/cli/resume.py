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


def stored_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Resuming, the run's settings as stored in ``RUN/config.json`` (read once per command); else,
    or when that file cannot be read (the engine then says why the run cannot be resumed), none."""
    if not args.resume:
        return {}
    try:
        return read_config(args.out)
    except CTLensError:
        return {}


def planned_epochs(args: argparse.Namespace, stored: Mapping[str, Any], default: int) -> int:
    """``--epochs`` as given; resuming without it, the run's own plan, so that a resumed run keeps its
    learning-rate schedule; else ``default``."""
    return run_count(args, stored, "epochs", default)


def run_count(args: argparse.Namespace, stored: Mapping[str, Any], name: str, default: int) -> int:
    """Integer option ``name`` as typed; else the resumed run's own value (``stored``); else ``default``."""
    if getattr(args, name) is not None:
        return int(getattr(args, name))
    try:
        return int(stored[name])
    except (KeyError, TypeError, ValueError):
        return default


def given_settings(args: argparse.Namespace, options: Mapping[str, str]) -> dict[str, Any]:
    """The config fields (``options``: argument dest -> field) whose options were typed."""
    return {field: getattr(args, dest) for dest, field in options.items() if getattr(args, dest) is not None}


def refuse_changed_settings(args: argparse.Namespace, stored: Mapping[str, Any], given: Mapping[str, Any],
                            flags: Mapping[str, str]) -> None:  # fmt: skip
    """A CTLensError naming the typed options (``flags``: field -> option) whose values differ from
    the resumed run's ``stored`` settings; nothing when nothing differs (or nothing is resumed)."""
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
