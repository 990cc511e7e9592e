"""Timing helpers: the best of several runs after a warm-up (noise only ever adds time)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence


def best_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    return best_times([fn], repeats, warmup)[0]


def best_times(fns: Sequence[Callable[[], object]], repeats: int = 5, warmup: int = 1) -> list[float]:
    """Best time of each function, runs interleaved so slow spells of a shared machine hit all alike."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best
