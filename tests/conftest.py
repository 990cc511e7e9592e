"""Shared fixtures: small synthetic studies written once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.synth.study import SynthSpec, synthesize

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two synthetic patients (the first with lesions), 12 slices of 128x128."""
    root = tmp_path_factory.mktemp("synth")
    synthesize(root, SynthSpec(patients=2, slices=12, seed=7, size=128))
    return root


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test when that data is not here."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available at {path}")
    return path


@pytest.fixture(scope="session")
def train_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four synthetic patients (two with lesions), 8 slices of 128x128: enough for a split."""
    root = tmp_path_factory.mktemp("synth-train")
    synthesize(root, SynthSpec(patients=4, slices=8, seed=11, size=128))
    return root
