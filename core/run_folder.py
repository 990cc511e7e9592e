"""A run folder's ``config.json`` (training, cross-validation and pretraining runs), read with a
clear error when it is missing or damaged."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from core.errors import CTLensError

CONFIG = "config.json"
T = TypeVar("T")


def read_config(run: Path) -> dict[str, Any]:
    """The settings stored in ``run/config.json``; a missing or unreadable file is a CTLensError."""
    path = run / CONFIG
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise CTLensError(f"{run}: cannot resume: no {CONFIG}") from exc
    except (OSError, ValueError) as exc:
        raise CTLensError(f"{path}: cannot resume: unreadable ({exc})") from exc
    if not isinstance(data, dict):
        raise CTLensError(f"{path}: cannot resume: not a settings object")
    return data


def parse_settings(run: Path, parse: Callable[[dict[str, Any]], T], data: dict[str, Any]) -> T:
    """``parse(data)`` for settings read from ``run``; settings it cannot take are a CTLensError."""
    try:
        return parse(data)
    except CTLensError as exc:
        raise CTLensError(f"{run / CONFIG}: cannot resume: {exc}") from exc
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise CTLensError(f"{run / CONFIG}: cannot resume: settings this version cannot use ({exc})") from exc
