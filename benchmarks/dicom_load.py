"""Loading a 300-slice 512x512 uncompressed CT series to an HU volume.

Reference: the plain loop ``pydicom.dcmread(f).pixel_array * slope + intercept`` over the same
files, in the same run (files already in the page cache for both).
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pydicom

from benchmarks.report import Result
from benchmarks.timing import best_time
from core.io.study import open_study
from core.synth.phantom import PhantomVolume
from core.synth.writer import write_series

SLICES, SIZE = 300, 512


def make_series(folder: Path) -> list[Path]:
    """Write (once) a 300-slice series of noisy HU values; returns its files."""
    files = sorted(folder.glob("*.dcm"))
    if len(files) == SLICES:
        return files
    rng = np.random.default_rng(0)
    hu = rng.normal(-300, 400, (SLICES, SIZE, SIZE)).astype(np.float32)
    vol = PhantomVolume(hu, np.zeros(hu.shape, np.uint8), 0.7, 1.0, ())
    write_series(vol, folder, "BENCH", seed=0)
    return sorted(folder.glob("*.dcm"))


def pydicom_loop(files: list[Path]) -> np.ndarray:
    out = np.empty((len(files), SIZE, SIZE), np.float32)
    for i, f in enumerate(files):
        ds = pydicom.dcmread(f)
        out[i] = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    return out


def ours(folder: Path) -> np.ndarray:
    return open_study(folder).series[0].volume()


def run(workdir: Path) -> list[Result]:
    folder = workdir / "dicom-300"
    files = make_series(folder)
    ref, mine = pydicom_loop(files), ours(folder)
    assert np.array_equal(ref, mine), "ours and the pydicom loop give different HU volumes"
    t_ref = best_time(lambda: pydicom_loop(files), 3, warmup=0)
    t_ours = best_time(lambda: ours(folder), 3, warmup=0)
    volume_bytes = SLICES * SIZE * SIZE * 4
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    vol = ours(folder)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    del vol
    return [
        Result("dicom_load_vs_pydicom", t_ours, "s", t_ref / t_ours, ">= 3",
               f"ours {t_ours:.3f}s vs pydicom loop {t_ref:.3f}s, {SLICES}x{SIZE}x{SIZE} int16"),
        Result("dicom_load_peak_memory", peak / 2**20, "MiB", peak / volume_bytes, "<= 1.5",
               f"peak traced {peak / 2**20:.0f} MiB for a {volume_bytes / 2**20:.0f} MiB float32 volume"),
    ]  # fmt: skip
