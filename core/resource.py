"""The one way to find files shipped in ``resources/`` (installed, editable or frozen)."""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path


def resource_path(name: str) -> Path:
    """Return a filesystem path to the shipped resource ``name`` (e.g. ``"ctlens.svg"``).

    Raises FileNotFoundError when the resource is not part of the installation.
    """
    ref = files("core.resources").joinpath(name)
    if not ref.is_file():
        raise FileNotFoundError(f"resource not found in this installation: {name}")
    with as_file(ref) as path:
        return Path(path)
