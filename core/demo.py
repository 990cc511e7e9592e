"""The embedded demo study: a synthetic patient generated once into the user cache dir."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from platformdirs import user_cache_dir

from core.synth.study import SynthSpec, patient_id, synthesize

DEMO_SPEC = SynthSpec(patients=1, slices=40, seed=2021)
DEMO_VERSION = "v2"  # bump when the phantom changes so caches regenerate


def cache_dir() -> Path:
    """CTLens' cache folder (``$CTLENS_CACHE`` overrides the platform default)."""
    return Path(os.environ.get("CTLENS_CACHE") or user_cache_dir("ctlens", appauthor=False))


def demo_study_dir() -> Path:
    """Folder of the demo patient (exists after :func:`ensure_demo_study`)."""
    return cache_dir() / f"demo-study-{DEMO_VERSION}" / patient_id(0)


def ensure_demo_study(progress: Callable[[int, int], None] | None = None) -> Path:
    """Generate the demo study unless it is already cached; returns its patient folder.

    Written to a temporary sibling folder and renamed into place, so an interrupted run
    never leaves a half-written study behind.
    """
    target = demo_study_dir().parent
    if (target / "labels.csv").is_file():
        return demo_study_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".demo-"))
    try:
        synthesize(tmp, DEMO_SPEC, progress=progress)
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return demo_study_dir()
