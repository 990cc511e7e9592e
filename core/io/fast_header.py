"""A minimal reader for the header of plain single-frame little-endian DICOM images.

Opening a study parses every file's header; pydicom's general parser spends most of that time
building and converting elements nobody looks at. This reader walks the raw elements of
uncompressed little-endian files (explicit or implicit VR), keeps the few dozen tags CTLens uses
and notes where the pixel data starts. Anything unusual (big endian, deflate, encapsulated or
multi-frame pixels, functional groups, segmentations, unknown character sets) returns ``None``
and the caller falls back to pydicom.
"""

from __future__ import annotations

import struct

EXPLICIT_LE, IMPLICIT_LE = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"
PIXEL_DATA = 0x7FE00010
_LONG = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_US = "US"
# tag -> (keyword, VR) of everything read; VRs matter for implicit-VR files.
TAGS: dict[int, tuple[str, str]] = {
    0x00080005: ("SpecificCharacterSet", "CS"), 0x00080008: ("ImageType", "CS"),
    0x00080016: ("SOPClassUID", "UI"), 0x00080018: ("SOPInstanceUID", "UI"),
    0x00080020: ("StudyDate", "DA"), 0x00080050: ("AccessionNumber", "SH"), 0x00080060: ("Modality", "CS"),
    0x00080070: ("Manufacturer", "LO"), 0x00080080: ("InstitutionName", "LO"),
    0x00081030: ("StudyDescription", "LO"), 0x0008103E: ("SeriesDescription", "LO"),
    0x00100010: ("PatientName", "PN"), 0x00100020: ("PatientID", "LO"), 0x00100030: ("PatientBirthDate", "DA"),
    0x00100040: ("PatientSex", "CS"), 0x00180015: ("BodyPartExamined", "CS"), 0x00180050: ("SliceThickness", "DS"),
    0x0020000D: ("StudyInstanceUID", "UI"), 0x0020000E: ("SeriesInstanceUID", "UI"),
    0x00200011: ("SeriesNumber", "IS"), 0x00200013: ("InstanceNumber", "IS"),
    0x00200032: ("ImagePositionPatient", "DS"), 0x00200037: ("ImageOrientationPatient", "DS"),
    0x00280002: ("SamplesPerPixel", _US), 0x00280008: ("NumberOfFrames", "IS"), 0x00280010: ("Rows", _US),
    0x00280011: ("Columns", _US), 0x00280030: ("PixelSpacing", "DS"), 0x00280100: ("BitsAllocated", _US),
    0x00280101: ("BitsStored", _US), 0x00280103: ("PixelRepresentation", _US),
    0x00281050: ("WindowCenter", "DS"), 0x00281051: ("WindowWidth", "DS"),
    0x00281052: ("RescaleIntercept", "DS"), 0x00281053: ("RescaleSlope", "DS"),
}  # fmt: skip
_ENCODINGS = {"": "ascii", "ISO_IR 6": "ascii", "ISO_IR 100": "latin-1", "ISO_IR 192": "utf-8"}
_FALLBACK = {0x52009229, 0x52009230}  # functional groups: Enhanced multi-frame -> pydicom


class _Unsupported(Exception):
    pass


def _explicit_element(buf: bytes, pos: int) -> tuple[str, int, int]:
    """VR, value length and value position of the explicit-VR element header at ``pos``."""
    vr = buf[pos + 4 : pos + 6]
    if vr in _LONG:
        return vr.decode("ascii", "replace"), struct.unpack_from("<I", buf, pos + 8)[0], pos + 12
    return vr.decode("ascii", "replace"), struct.unpack_from("<H", buf, pos + 6)[0], pos + 8


def _skip_undefined(buf: bytes, pos: int, explicit: bool) -> int:
    """Position after an undefined-length sequence starting at ``pos`` (its first item)."""
    while True:
        group, elem, length = struct.unpack_from("<HHI", buf, pos)
        pos += 8
        tag = (group << 16) | elem
        if tag == 0xFFFEE0DD:  # sequence delimiter
            return pos
        if tag != 0xFFFEE000:
            raise _Unsupported("malformed sequence")
        if length != 0xFFFFFFFF:
            pos += length
            continue
        pos = _walk(buf, pos, explicit, {}, stop_at_item_end=True)


def _walk(
    buf: bytes, pos: int, explicit: bool, raw: dict[int, tuple[str, bytes]], stop_at_item_end: bool = False
) -> int:
    """Read elements from ``pos``; fill ``raw`` (top level only); return the end position."""
    end = len(buf)
    while pos + 8 <= end:
        group, elem = struct.unpack_from("<HH", buf, pos)
        tag = (group << 16) | elem
        if tag == 0xFFFEE00D:  # item delimiter
            return pos + 8
        if tag == PIXEL_DATA and not stop_at_item_end:
            return pos
        if explicit and group != 0xFFFE:
            vr_text, length, pos = _explicit_element(buf, pos)
        else:
            (length,) = struct.unpack_from("<I", buf, pos + 4)
            pos += 8
            vr_text = TAGS.get(tag, ("", "UN"))[1]
        if tag in _FALLBACK:
            raise _Unsupported("functional groups")
        if length == 0xFFFFFFFF:
            pos = _skip_undefined(buf, pos, explicit)
            continue
        if not stop_at_item_end and tag in TAGS:
            raw[tag] = (vr_text, buf[pos : pos + length])
        pos += length
    raise _Unsupported("header longer than the bytes read")


def _value(vr: str, data: bytes, encoding: str) -> object:
    if vr == "US":
        return struct.unpack_from("<H", data)[0] if len(data) >= 2 else None
    text = data.decode(encoding, "replace").rstrip("\x00 ").strip()
    if vr in ("DS", "IS"):
        parts = [p.strip() for p in text.split("\\") if p.strip()]
        nums = [float(p) if vr == "DS" else int(p) for p in parts]
        return nums if len(nums) != 1 else nums[0]
    if vr == "CS" and "\\" in text:
        return [p.strip() for p in text.split("\\")]
    return text


def parse(buf: bytes) -> tuple[dict[str, object], int] | None:
    """Parse a Part 10 file's leading bytes; return (keyword -> value, pixel data offset).

    ``None`` when this reader does not handle the file (the caller then uses pydicom).
    """
    if len(buf) < 144 or buf[128:132] != b"DICM":
        return None
    try:
        meta: dict[int, tuple[str, bytes]] = {}
        pos = 132
        while pos + 8 <= len(buf) and struct.unpack_from("<H", buf, pos)[0] == 0x0002:
            _, elem = struct.unpack_from("<HH", buf, pos)
            vr_text, length, pos = _explicit_element(buf, pos)
            meta[elem] = (vr_text, buf[pos : pos + length])
            pos += length
        syntax = meta.get(0x0010, ("UI", b""))[1].decode("ascii", "replace").rstrip("\x00 ")
        if syntax not in (EXPLICIT_LE, IMPLICIT_LE):
            return None
        raw: dict[int, tuple[str, bytes]] = {}
        pixel_pos = _walk(buf, pos, syntax == EXPLICIT_LE, raw)
    except (_Unsupported, struct.error, UnicodeDecodeError):
        return None
    charset = raw.get(0x00080005, ("CS", b""))[1].decode("ascii", "replace").strip("\x00 ")
    encoding = _ENCODINGS.get(charset)
    if encoding is None:
        return None
    try:
        values = {TAGS[t][0]: _value(vr, data, encoding) for t, (vr, data) in raw.items()}
    except ValueError:
        return None
    values["TransferSyntaxUID"] = syntax
    return values, pixel_pos
