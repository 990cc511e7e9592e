"""Pure pixel math: stored value -> Hounsfield units -> window/level display values.

All functions take and return numpy arrays, do no I/O and keep no state (after highdicom's
``pixels.apply_voi_window``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    """A VOI window: ``width`` and ``level`` (centre), both in HU."""

    width: float
    level: float
    name: str = ""

    @property
    def low(self) -> float:
        return self.level - self.width / 2.0

    @property
    def high(self) -> float:
        return self.level + self.width / 2.0


LUNG = Window(1500.0, -600.0, "lung")
MEDIASTINUM = Window(350.0, 40.0, "mediastinum")
BONE = Window(2000.0, 300.0, "bone")
PRESETS: dict[str, Window] = {w.name: w for w in (LUNG, MEDIASTINUM, BONE)}


def to_hu(
    stored: np.ndarray,
    slope: float = 1.0,
    intercept: float = 0.0,
    *,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Apply the modality LUT: ``HU = stored * slope + intercept``.

    Parameters
    ----------
    stored : integer or float array, any shape
        Stored pixel values with the pixel representation already applied
        (see :func:`reinterpret_sign`).
    slope, intercept : float
        RescaleSlope and RescaleIntercept (1 and 0 when the header has none).
    out : float32 array of the same shape, optional
        Written in place when given (no temporary of the input's size).

    Returns
    -------
    float32 array, same shape, in HU.
    """
    if out is None:
        out = np.empty(stored.shape, dtype=np.float32)
    if slope == 1.0:  # the common case: one pass
        np.add(stored, np.float32(intercept), out=out, dtype=np.float32, casting="unsafe")
        return out
    np.multiply(stored, np.float32(slope), out=out, dtype=np.float32, casting="unsafe")
    if intercept:
        out += np.float32(intercept)
    return out


def reinterpret_sign(stored: np.ndarray, bits_stored: int, signed: bool) -> np.ndarray:
    """Give raw stored integers the sign the header declares.

    Handles the known mismatch where PixelRepresentation says signed (1) but the bytes were
    decoded as unsigned, or the reverse: the value is read in ``bits_stored`` bits and
    sign-extended when ``signed``. Returns an array of a signed or unsigned integer type
    wide enough for the result; float input is returned unchanged.
    """
    if stored.dtype.kind == "f":
        return stored
    width = stored.dtype.itemsize * 8
    if signed:
        if stored.dtype.kind == "i" and bits_stored >= width:
            return stored
        unsigned = stored.view(np.dtype(f"u{stored.dtype.itemsize}"))
        mask = (1 << bits_stored) - 1
        values = (unsigned & mask).astype(np.int32)
        sign_bit = 1 << (bits_stored - 1)
        values = np.where(values & sign_bit, values - (1 << bits_stored), values)
        return values.astype(np.dtype(f"i{max(stored.dtype.itemsize, 2)}"))
    if stored.dtype.kind == "u":
        return stored
    return stored.view(np.dtype(f"u{stored.dtype.itemsize}"))


def apply_window(hu: np.ndarray, window: Window, *, out: np.ndarray | None = None) -> np.ndarray:
    """Map HU to display values in [0, 1] with a linear window (clipped outside it).

    Returns float32 of the input's shape.
    """
    if out is None:
        out = np.empty(hu.shape, dtype=np.float32)
    scale = np.float32(1.0 / max(window.width, 1e-6))
    np.subtract(hu, np.float32(window.low), out=out, casting="unsafe")
    out *= scale
    np.clip(out, 0.0, 1.0, out=out)
    return out


def to_gray(image: np.ndarray) -> np.ndarray:
    """Collapse RGB/RGBA (last axis 3 or 4) or gray-alpha (2) to one channel.

    Works on (H, W, C) and stacks (F, H, W, C). RGB uses ITU-R BT.601 luma weights; alpha
    is dropped. 2-D input is returned as float32.
    """
    img = np.asarray(image)
    if img.ndim == 2:
        return img.astype(np.float32, copy=False)
    if img.ndim not in (3, 4) or img.shape[-1] not in (2, 3, 4):
        raise ValueError(f"expected a 2-D image or (..., H, W, 2|3|4) colour image, got {img.shape}")
    if img.shape[-1] == 2:
        return img[..., 0].astype(np.float32)
    rgb = img[..., :3].astype(np.float32)
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
