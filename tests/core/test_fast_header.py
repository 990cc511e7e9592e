"""The fast header reader must agree with pydicom on every file it accepts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file, get_testdata_files

from core.errors import StudyReadError
from core.io import fast_header
from core.io.dicom_frames import read_frame_into, read_header
from core.io.sniff import leading_bytes


def _accepted_files() -> list[Path]:
    out = []
    for name in (f for f in get_testdata_files() if f.endswith(".dcm")):
        path = Path(name)
        if fast_header.parse(leading_bytes(path)) is not None:
            out.append(path)
    return out


ACCEPTED = _accepted_files()


def test_the_fast_reader_covers_a_good_part_of_the_corpus():
    assert len(ACCEPTED) >= 40
    assert Path(get_testdata_file("CT_small.dcm", download=False)) in ACCEPTED


@pytest.mark.parametrize("path", ACCEPTED, ids=lambda p: p.name)
def test_fast_and_pydicom_headers_agree(path):
    fast = read_header(path, head=leading_bytes(path))
    slow = read_header(path, force=True)
    assert fast.series_uid == slow.series_uid and fast.modality == slow.modality
    assert fast.meta == slow.meta
    assert fast.window == slow.window
    if not fast.frames:
        return
    assert len(fast.frames) == len(slow.frames)
    assert fast.frames == slow.frames  # geometry, rescale, sign, pixel offset: all equal
    outcomes = []
    for frame in (fast.frames[0], slow.frames[0]):
        out = np.empty((frame.rows, frame.cols), np.float32)
        try:
            read_frame_into(frame, out)
            outcomes.append(out)
        except StudyReadError as exc:  # e.g. truncated pixel data: both must say so
            outcomes.append(str(exc))
    if isinstance(outcomes[0], str):
        assert outcomes[0] == outcomes[1]
    else:
        np.testing.assert_array_equal(outcomes[0], outcomes[1])


def test_unsupported_inputs_return_none():
    assert fast_header.parse(b"") is None
    assert fast_header.parse(b"\x00" * 128 + b"DICM" + b"\xff" * 20) is None
    big_endian = Path(get_testdata_file("MR_small_bigendian.dcm", download=False))
    assert fast_header.parse(leading_bytes(big_endian)) is None
