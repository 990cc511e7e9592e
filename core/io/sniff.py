"""Decide a file's format from its bytes, never from its extension."""

from __future__ import annotations

import errno
import gzip
import os
import stat
from pathlib import Path

DICOM, NIFTI, IMAGE, UNKNOWN = "dicom", "nifti", "image", "unknown"

_IMAGE_MAGIC = (
    b"\x89PNG\r\n\x1a\n",  # PNG
    b"\xff\xd8\xff",  # JPEG
    b"BM",  # BMP
    b"II*\x00",  # TIFF little-endian
    b"MM\x00*",  # TIFF big-endian
)


def _is_nifti_header(head: bytes) -> bool:
    return len(head) >= 348 and head[344:348] in (b"n+1\x00", b"ni1\x00", b"n+2\x00")


def leading_bytes(path: Path, size: int = 65536) -> bytes:
    """The first ``size`` bytes of a file (enough for most DICOM headers). Raises OSError.

    FIFOs, sockets and devices are never opened (reading one could block forever): they raise
    OSError too.
    """
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    with open(path, "rb") as fp:
        return fp.read(size)


def sniff(path: Path, head: bytes | None = None) -> str:
    """Return ``"dicom"``, ``"nifti"``, ``"image"`` or ``"unknown"`` for a file.

    DICOM is recognised by the ``DICM`` prefix or, lacking the preamble, by a first element
    in group 0002 or 0008 (raw datasets without file meta). Raises OSError when unreadable.
    """
    if head is None:
        head = leading_bytes(path, 540)
    if head[128:132] == b"DICM":
        return DICOM
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as gz:
                return NIFTI if _is_nifti_header(gz.read(540)) else UNKNOWN
        except (OSError, EOFError):
            return UNKNOWN
    if _is_nifti_header(head) or (len(head) >= 4 and head[:4] == b"\x1c\x02\x00\x00"):
        return NIFTI
    if any(head.startswith(m) for m in _IMAGE_MAGIC):
        return IMAGE
    if len(head) >= 8 and head[:2] in (b"\x02\x00", b"\x08\x00") and head[2:4] < b"\x00\x10":
        return DICOM
    return UNKNOWN
