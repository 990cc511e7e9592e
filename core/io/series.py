"""A series: an ordered stack of slices that decode lazily into one float32 volume."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from core.errors import Cancelled, StudyReadError
from core.io.dicom_frames import FrameRef, decode_file, read_frame_into
from core.io.geometry import StackGeometry
from core.pixels import Window

Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]


def require_finite(pixels: np.ndarray, name: str) -> np.ndarray:
    """``pixels`` unchanged; raises :class:`StudyReadError` naming ``name`` if any value is NaN or infinite."""
    if not np.isfinite(pixels).all():
        raise StudyReadError(f"{name}: non-finite pixel values (NaN or infinity)")
    return pixels


class SliceReader(Protocol):
    """Writes slice ``i`` as float32 into ``out`` of shape (rows, cols)."""

    def read(self, index: int, out: np.ndarray) -> None: ...


@dataclass(frozen=True)
class SeriesInfo:
    """Descriptive fields of a series (patient, study, series), as strings."""

    uid: str
    unit: str  # "HU" for CT, "gray" for display images scaled to [0, 1], "raw" for other modalities
    fields: dict[str, str] = field(default_factory=dict)
    window: Window | None = None  # the header's own window, when it has one
    slice_names: tuple[str, ...] = ()  # file name (and frame) of each slice, in order
    sop_uids: tuple[str, ...] = ()  # SOPInstanceUID per slice ("" for non-DICOM)
    source: str = ""  # the folder (or file) the series was read from
    files: tuple[str, ...] = ()  # the DICOM file of each slice (empty for other formats)

    @property
    def description(self) -> str:
        return self.fields.get("SeriesDescription", "") or self.uid


class DicomStackReader:
    """Reads ordered DICOM frames; compressed or multi-frame files are decoded once and kept."""

    def __init__(self, frames: Sequence[FrameRef], cache_files: int = 2) -> None:
        self._frames = list(frames)
        self._decoded: OrderedDict[Path, np.ndarray] = OrderedDict()
        self._cache_files = cache_files
        self._lock = threading.Lock()

    def read(self, index: int, out: np.ndarray) -> None:
        ref = self._frames[index]
        if ref.raw is not None:
            read_frame_into(ref, out)
            return
        read_frame_into(ref, out, self._file_frames(ref.path))

    def _file_frames(self, path: Path) -> np.ndarray:
        with self._lock:
            if path in self._decoded:
                self._decoded.move_to_end(path)
                return self._decoded[path]
        frames = decode_file(path)
        with self._lock:
            self._decoded[path] = frames
            while len(self._decoded) > self._cache_files:
                self._decoded.popitem(last=False)
        return frames


class Series:
    """An ordered stack of equally sized slices; pixels are decoded on first request.

    ``slice(i)`` decodes one slice; ``volume()`` decodes the rest (in parallel threads) into
    the same float32 buffer, so memory stays at one volume.
    """

    def __init__(
        self,
        info: SeriesInfo,
        shape: tuple[int, int, int],
        geometry: StackGeometry,
        reader: SliceReader,
        warnings: Sequence[str] = (),
    ) -> None:
        self.info = info
        self.shape = shape
        self.geometry = geometry
        self.warnings = tuple(warnings)
        self._reader = reader
        self._buffer: np.ndarray | None = None
        self._loaded = np.zeros(shape[0], dtype=bool)
        self._lock = threading.Lock()

    @property
    def uid(self) -> str:
        return self.info.uid

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def loaded_count(self) -> int:
        return int(self._loaded.sum())

    def _buf(self) -> np.ndarray:
        with self._lock:
            if self._buffer is None:
                self._buffer = np.empty(self.shape, dtype=np.float32)
            return self._buffer

    def slice(self, index: int) -> np.ndarray:
        """Slice ``index`` as a read-only float32 (rows, cols) array in :attr:`SeriesInfo.unit`.

        Raises :class:`~core.errors.StudyReadError` when it cannot be read or holds NaN or infinity.
        """
        if not 0 <= index < self.shape[0]:
            raise IndexError(f"slice {index} outside 0..{self.shape[0] - 1}")
        buf = self._buf()
        if not self._loaded[index]:
            self._reader.read(index, buf[index])
            names = self.info.slice_names
            require_finite(buf[index], names[index] if index < len(names) else f"{self.info.description}[{index}]")
            self._loaded[index] = True
        view = buf[index].view()
        view.flags.writeable = False
        return view

    def volume(self, *, progress: Progress | None = None, cancel: Cancel | None = None, workers: int = 2) -> np.ndarray:
        """Decode every slice; returns the read-only (n, rows, cols) float32 volume.

        Raises :class:`~core.errors.Cancelled` when ``cancel()`` turns True (slices decoded
        so far stay decoded).
        """
        todo = [i for i in range(self.shape[0]) if not self._loaded[i]]
        total, done = self.shape[0], self.shape[0] - len(todo)
        if todo:
            with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
                for _ in pool.map(self._load_checked(cancel), todo):
                    done += 1
                    if progress is not None:
                        progress(done, total)
        buf = self._buf().view()
        buf.flags.writeable = False
        return buf

    def _load_checked(self, cancel: Cancel | None) -> Callable[[int], int]:
        def load(i: int) -> int:
            if cancel is not None and cancel():
                raise Cancelled("loading cancelled")
            self.slice(i)
            return i

        return load
