"""Local binary patterns: the 59-bin uniform LBP histogram (P = 8, R = 1) of the paper's baseline.

Non-rotation-invariant uniform patterns (scikit-image ``nri_uniform``) give 58 uniform codes
plus one bin for every non-uniform pattern: 59 bins, normalised to sum to 1.
"""

from __future__ import annotations

import numpy as np
from skimage.feature import local_binary_pattern

BINS = 59


def lbp_histogram(gray: np.ndarray) -> np.ndarray:
    """(59,) float32 histogram of a 2-D uint8 image's uniform LBP codes."""
    if gray.ndim != 2:
        raise ValueError(f"LBP needs a 2-D image, got shape {gray.shape}")
    codes = local_binary_pattern(gray, P=8, R=1, method="nri_uniform")
    hist = np.bincount(codes.astype(np.int64).ravel(), minlength=BINS)[:BINS].astype(np.float32)
    return hist / max(float(hist.sum()), 1.0)
