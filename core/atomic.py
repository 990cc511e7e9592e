"""Safe writing: atomic files (write beside the target, then rename over it) and never into the
user's input folders."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.errors import CTLensError


@contextmanager
def atomic_path(path: str | Path, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path``, else it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def check_output_outside(out: Path, *inputs: Path) -> None:
    """Refuse to write results into a folder the user's data came from (inputs that do not exist
    are left to the readers, which say so)."""
    resolved = out.resolve()
    for source in inputs:
        if not source.exists():
            continue
        src = source.resolve()
        src_dir = src if src.is_dir() else src.parent
        if resolved == src_dir or src_dir in resolved.parents:
            raise CTLensError(f"{out}: choose an output folder outside the input data ({source})")
