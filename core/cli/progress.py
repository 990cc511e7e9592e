"""A terminal progress bar for CLI commands (stderr, redrawn in place on a TTY)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """Callable ``(done, total)`` that draws ``label [#####.....] done/total eta``."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.label, self.width = label, width
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self._tty = self.stream.isatty()
        self._last_line = ""

    def __call__(self, done: int, total: int) -> None:
        frac = done / total if total else 1.0
        elapsed = time.monotonic() - self.start
        eta = elapsed / frac - elapsed if frac > 0 else 0.0
        bar = "#" * int(frac * self.width) + "." * (self.width - int(frac * self.width))
        line = f"{self.label} [{bar}] {done}/{total} {elapsed:5.1f}s eta {eta:5.1f}s"
        if self._tty:
            self.stream.write("\r" + line + ("\n" if done >= total else ""))
        elif done >= total or int(frac * 10) != int((done - 1) / max(total, 1) * 10):
            self.stream.write(line + "\n")
        self.stream.flush()
