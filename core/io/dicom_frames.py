"""Read DICOM headers into per-frame references and decode their pixels on demand.

A :class:`FrameRef` is everything needed to place one 2-D frame in space and turn it into HU:
geometry, rescale and, for uncompressed little-endian files, the byte offset of the pixels so
they can be read with one ``numpy.fromfile`` instead of a full pydicom parse.
"""

from __future__ import annotations

import contextlib
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from core.errors import StudyReadError
from core.io import fast_header
from core.pixels import Window, reinterpret_sign, to_gray, to_hu

_PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"
_PIXEL_DATA_TAG_BE = b"\x7f\xe0\x00\x10"
_LONG_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN", b"SQ", b"UT", b"UC", b"UR"}
SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
Header = Dataset | Mapping[str, Any]  # a pydicom header, or the fast reader's keyword -> value


@dataclass(frozen=True)
class RawLayout:
    """Where an uncompressed frame's pixels lie in its file."""

    offset: int
    dtype: str  # numpy dtype string, little-endian


@dataclass(frozen=True)
class FrameRef:
    """One 2-D image frame of a DICOM file, with what is needed to place and rescale it."""

    path: Path
    frame: int  # index within the file (0 for single-frame files)
    n_frames_in_file: int
    series_uid: str
    sop_uid: str
    instance_number: int | None
    position: tuple[float, float, float] | None  # ImagePositionPatient (mm, LPS)
    orientation: tuple[float, ...] | None  # ImageOrientationPatient (row dir, col dir)
    rows: int
    cols: int
    pixel_spacing: tuple[float, float] | None  # (between rows, between columns) mm
    slice_thickness: float | None
    slope: float
    intercept: float
    bits_stored: int
    signed: bool
    image_type: tuple[str, ...]
    raw: RawLayout | None  # fast path; None means decode with pydicom


@dataclass(frozen=True)
class FileHeader:
    """Series-level descriptive fields of one DICOM file."""

    path: Path
    sop_class: str
    modality: str
    series_uid: str
    meta: dict[str, str]
    window: Window | None
    frames: tuple[FrameRef, ...]
    dataset: Header  # header only (no pixels); used for SEG and DICOMDIR files


def _floats(value: Any, n: int) -> tuple[float, ...] | None:
    try:
        vals = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return vals if len(vals) == n else None


def _first(value: Any) -> Any:
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return value[0] if len(value) else None
    return value


def _strings(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    return (str(value).strip().upper(),) if isinstance(value, str) else tuple(str(v).strip().upper() for v in value)


def _functional(ds: Header, frame: int, sequence: str, attr: str) -> Any:
    """An attribute from an Enhanced multi-frame functional group (per-frame, then shared)."""
    for groups in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
        seq = ds.get(groups)
        if not seq:
            continue
        item = seq[frame] if groups.startswith("PerFrame") and frame < len(seq) else seq[0]
        inner = item.get(sequence)
        if inner and attr in inner[0]:
            return inner[0].get(attr)
    return None


def _raw_layout(head: bytes, start: int, tsyntax: str | None, ds: Header, n_frames: int) -> RawLayout | None:
    """Byte offset and dtype of uncompressed single-frame pixels whose element starts at ``start``.

    ``head`` holds the element's first 12 bytes.
    """
    if tsyntax not in (ExplicitVRLittleEndian, ImplicitVRLittleEndian) or n_frames != 1:
        return None
    bits = int(ds.get("BitsAllocated", 0) or 0)
    if bits not in (8, 16, 32) or int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        return None
    if len(head) < 8 or head[:4] != _PIXEL_DATA_TAG:
        return None
    if tsyntax == ExplicitVRLittleEndian and head[4:6] in _LONG_VRS:
        length, offset = struct.unpack("<I", head[8:12])[0], start + 12
    elif tsyntax == ExplicitVRLittleEndian:
        length, offset = struct.unpack("<H", head[6:8])[0], start + 8
    else:
        length, offset = struct.unpack("<I", head[4:8])[0], start + 8
    nbytes = int(ds.get("Rows", 0) or 0) * int(ds.get("Columns", 0) or 0) * bits // 8
    if length == 0xFFFFFFFF or length < nbytes:
        return None
    kind = "i" if int(ds.get("PixelRepresentation", 0) or 0) == 1 else "u"
    return RawLayout(offset=offset, dtype=f"<{kind}{bits // 8}")


def _descriptive(ds: Header) -> dict[str, str]:
    keys = (
        "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate",
        "StudyDescription", "SeriesDescription", "SeriesNumber", "Modality",
        "Manufacturer", "InstitutionName", "AccessionNumber", "BodyPartExamined",
    )  # fmt: skip
    out = {k: str(ds.get(k, "") or "") for k in keys}
    with contextlib.suppress(ValueError):  # "04" and 4 are the same series number
        out["SeriesNumber"] = str(int(float(out["SeriesNumber"]))) if out["SeriesNumber"] else ""
    return out


def _header_window(ds: Header) -> Window | None:
    centre, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    if centre is None or width is None:
        centre = _functional(ds, 0, "FrameVOILUTSequence", "WindowCenter")
        width = _functional(ds, 0, "FrameVOILUTSequence", "WindowWidth")
        centre, width = _first(centre), _first(width)
    try:
        w = float(width)
        return Window(w, float(centre), "header") if w > 0 else None
    except (TypeError, ValueError):
        return None


def _rescale(path: Path, ds: Header, frame: int, per_frame: bool) -> tuple[float, float]:
    """(RescaleSlope, RescaleIntercept) of one frame; (1, 0) when absent."""
    slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    if per_frame:
        seq = "PixelValueTransformationSequence"
        slope = slope if slope is not None else _functional(ds, frame, seq, "RescaleSlope")
        intercept = intercept if intercept is not None else _functional(ds, frame, seq, "RescaleIntercept")
    scale = float(slope) if slope not in (None, "") else 1.0
    offset = float(intercept) if intercept not in (None, "") else 0.0
    if not (math.isfinite(scale) and math.isfinite(offset)):
        raise StudyReadError(f"{path.name}: rescale slope or intercept is not a finite number")
    return scale, offset


def _frame_refs(path: Path, ds: Header, raw: RawLayout | None) -> tuple[FrameRef, ...]:
    """The file's frames; raises StudyReadError when the header describes no usable pixels."""
    if "Rows" not in ds or "Columns" not in ds:
        return ()
    rows, cols = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    if rows <= 0 or cols <= 0:
        raise StudyReadError(f"{path.name}: image size {cols}x{rows} has no pixels")
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    per_frame = n_frames > 1 or "SharedFunctionalGroupsSequence" in ds
    base_pos = _floats(ds.get("ImagePositionPatient"), 3)
    base_ori = _floats(ds.get("ImageOrientationPatient"), 6)
    base_spacing = _floats(ds.get("PixelSpacing"), 2)
    refs = []
    for f in range(n_frames):
        pos, ori, spacing = base_pos, base_ori, base_spacing
        if per_frame:
            pos = _floats(_functional(ds, f, "PlanePositionSequence", "ImagePositionPatient"), 3) or pos
            ori = _floats(_functional(ds, f, "PlaneOrientationSequence", "ImageOrientationPatient"), 6) or ori
            spacing = _floats(_functional(ds, f, "PixelMeasuresSequence", "PixelSpacing"), 2) or spacing
        slope, intercept = _rescale(path, ds, f, per_frame)
        number = ds.get("InstanceNumber")
        refs.append(
            FrameRef(
                path=path,
                frame=f,
                n_frames_in_file=n_frames,
                series_uid=str(ds.get("SeriesInstanceUID", "") or f"file:{path}"),
                sop_uid=str(ds.get("SOPInstanceUID", "") or ""),
                instance_number=int(_first(number)) if number not in (None, "") else None,
                position=pos,  # type: ignore[arg-type]
                orientation=ori,
                rows=rows,
                cols=cols,
                pixel_spacing=spacing,  # type: ignore[arg-type]
                slice_thickness=float(ds.get("SliceThickness") or 0) if ds.get("SliceThickness") else None,
                slope=slope,
                intercept=intercept,
                bits_stored=int(ds.get("BitsStored", ds.get("BitsAllocated", 16)) or 16),
                signed=int(ds.get("PixelRepresentation", 0) or 0) == 1,
                image_type=_strings(ds.get("ImageType")),
                raw=raw if n_frames == 1 else None,
            )
        )
    return tuple(refs)


def _file_header(path: Path, ds: Header, refs: tuple[FrameRef, ...]) -> FileHeader:
    return FileHeader(
        path=path,
        sop_class=str(ds.get("SOPClassUID", "") or ""),
        modality=str(ds.get("Modality", "") or ""),
        series_uid=str(ds.get("SeriesInstanceUID", "") or f"file:{path}"),
        meta=_descriptive(ds),
        window=_header_window(ds),
        frames=refs,
        dataset=ds,
    )


def _fast_header(path: Path, head: bytes) -> FileHeader | None:
    """The header of a plain single-frame image via :mod:`core.io.fast_header`, else None."""
    parsed = fast_header.parse(head)
    if parsed is None:
        return None
    values, pixel_pos = parsed
    if values.get("SOPClassUID") == SEG_SOP_CLASS or "Rows" not in values or "Columns" not in values:
        return None
    n_frames = int(values.get("NumberOfFrames", 1) or 1)  # type: ignore[call-overload]
    try:
        raw = _raw_layout(
            head[pixel_pos : pixel_pos + 12], pixel_pos, str(values["TransferSyntaxUID"]), values, n_frames
        )
        return None if raw is None else _file_header(path, values, _frame_refs(path, values, raw))
    except (TypeError, ValueError):  # odd values (e.g. multi-valued where one is expected)
        return None


def read_header(path: Path, *, head: bytes | None = None, force: bool = False) -> FileHeader:
    """Parse one DICOM file's header (pixels are not read).

    ``head`` is the file's leading bytes when the caller already read them; plain
    uncompressed images are then parsed from those bytes without pydicom.

    Raises
    ------
    StudyReadError
        With a one-line reason when the file is not readable DICOM.
    """
    if head is not None:
        fast = _fast_header(path, head)
        if fast is not None:
            return fast
    try:
        with open(path, "rb") as fp:
            ds = pydicom.dcmread(fp, stop_before_pixels=True, force=force)
            start = fp.tell()
            element = fp.read(12)
            has_pixels = element[:4] in (_PIXEL_DATA_TAG, _PIXEL_DATA_TAG_BE)
            n_frames = int(ds.get("NumberOfFrames", 1) or 1)
            tsyntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
            raw = _raw_layout(element, start, tsyntax, ds, n_frames) if has_pixels else None
            refs = _frame_refs(path, ds, raw) if has_pixels else ()
    except StudyReadError:
        raise
    except InvalidDicomError as exc:
        raise StudyReadError(f"{path.name}: not a DICOM file ({exc})") from exc
    except PermissionError as exc:
        raise StudyReadError(f"{path.name}: permission denied") from exc
    except OSError as exc:
        raise StudyReadError(f"{path.name}: cannot read ({exc.strerror or exc})") from exc
    except Exception as exc:  # pydicom raises many types on malformed input
        raise StudyReadError(f"{path.name}: malformed DICOM header ({_short(exc)})") from exc
    return _file_header(path, ds, refs)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def decode_file(path: Path) -> np.ndarray:
    """Decode every frame of a file with pydicom: stored values, sign applied, (F, R, C).

    Colour images (secondary captures) are reduced to luma so they can still be viewed.
    """
    try:
        ds = pydicom.dcmread(path, force=True)
        arr = np.asarray(ds.pixel_array)
    except Exception as exc:
        raise StudyReadError(f"{path.name}: cannot decode pixel data ({_short(exc)})") from exc
    colour = int(ds.get("SamplesPerPixel", 1) or 1) > 1
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    if n_frames == 1:
        arr = arr[np.newaxis]
    return to_gray(arr) if colour else arr


def read_frame_into(ref: FrameRef, out: np.ndarray, decoded: np.ndarray | None = None) -> None:
    """Write frame ``ref`` as float32 HU into ``out`` (shape (rows, cols)).

    ``decoded`` is the file's already-decoded frames (from :func:`decode_file`) when the
    caller caches them; otherwise the raw fast path or pydicom is used.
    """
    if decoded is None and ref.raw is not None:
        try:
            stored = np.fromfile(ref.path, dtype=ref.raw.dtype, count=ref.rows * ref.cols, offset=ref.raw.offset)
        except OSError as exc:
            raise StudyReadError(f"{ref.path.name}: cannot read pixels ({exc})") from exc
        if stored.size != ref.rows * ref.cols:
            raise StudyReadError(f"{ref.path.name}: pixel data is truncated")
        stored = stored.reshape(ref.rows, ref.cols)
    else:
        frames = decoded if decoded is not None else decode_file(ref.path)
        stored = frames[ref.frame]
        if stored.shape != (ref.rows, ref.cols):
            raise StudyReadError(f"{ref.path.name}: frame shape {stored.shape} != header")
    if stored.dtype.itemsize * 8 > ref.bits_stored or stored.dtype.kind != ("i" if ref.signed else "u"):
        stored = reinterpret_sign(stored, ref.bits_stored, ref.signed)
    to_hu(stored, ref.slope, ref.intercept, out=out)
