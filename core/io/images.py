"""Plain images (PNG, JPEG, BMP, TIFF) as gray slices scaled to [0, 1]."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from core.errors import StudyReadError
from core.io.geometry import StackGeometry
from core.io.series import Series, SeriesInfo, require_finite
from core.pixels import to_gray


@contextmanager
def decoding(path: Path, what: str = "image") -> Iterator[None]:
    """Turn PIL's errors while opening or decoding ``path`` into a one-line :class:`StudyReadError`."""
    try:
        yield
    except Image.DecompressionBombError as exc:
        raise StudyReadError(f"{path.name}: {what} too large to open safely") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise StudyReadError(f"{path.name}: cannot decode {what} ({exc})") from exc


def load_gray(path: Path) -> np.ndarray:
    """Read an image file as float32 (H, W) gray in [0, 1] (RGB/RGBA/palette -> luma).

    Raises StudyReadError with a one-line reason when the file cannot be decoded, is too large
    or holds non-finite values.
    """
    with decoding(path), Image.open(path) as opened:
        opened.load()
        mode = opened.mode
        img: Image.Image = opened
        if mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "1"):
            img = opened.convert("RGBA" if "A" in mode else "RGB")
        arr = np.asarray(img)
    gray = require_finite(to_gray(arr), path.name)
    peak = 65535.0 if arr.dtype == np.uint16 or mode.startswith("I;16") else 255.0
    if arr.dtype.kind == "f" or mode == "I":
        peak = max(float(gray.max()), 1.0)
    return np.clip(gray / np.float32(peak), 0.0, 1.0, dtype=np.float32)


def image_size(path: Path) -> tuple[int, int]:
    """(rows, cols) of an image file, reading only its header."""
    with decoding(path), Image.open(path) as img:
        return img.height, img.width


class ImageFilesReader:
    """Reads one image file per slice."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self._paths = list(paths)

    def read(self, index: int, out: np.ndarray) -> None:
        gray = load_gray(self._paths[index])
        if gray.shape != out.shape:
            raise StudyReadError(f"{self._paths[index].name}: size changed since it was opened")
        out[...] = gray


def image_series(paths: Sequence[Path]) -> tuple[list[Series], list[str]]:
    """Group image files by size into series (one series per distinct size), name-ordered."""
    groups: dict[tuple[int, int], list[Path]] = defaultdict(list)
    warnings: list[str] = []
    for p in sorted(paths, key=lambda p: _natural_key(p.name)):
        try:
            groups[image_size(p)].append(p)
        except StudyReadError as exc:
            warnings.append(str(exc))
    series = []
    for (rows, cols), members in groups.items():
        uid = f"images:{members[0].parent}:{cols}x{rows}"
        info = SeriesInfo(
            uid=uid,
            unit="gray",
            fields={"SeriesDescription": f"{members[0].name} ({cols}x{rows})" if len(members) == 1
                    else f"{len(members)} images {cols}x{rows} in {members[0].parent.name}", "Modality": "OT"},
            slice_names=tuple(p.name for p in members),
            sop_uids=tuple("" for _ in members),
            source=str(members[0].parent),
        )  # fmt: skip
        geom = StackGeometry(np.eye(4), np.arange(len(members), dtype=float), (1.0, 1.0, 1.0))
        series.append(Series(info, (len(members), rows, cols), geom, ImageFilesReader(members)))
    return series, warnings


def _natural_key(name: str) -> list[object]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]
