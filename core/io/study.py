"""Open what a user points at (folder, files, DICOMDIR, NIfTI, images) as a study.

Only headers are parsed here; pixels decode when a slice is first asked for (see
:class:`core.io.series.Series`).
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.errors import Cancelled, StudyReadError
from core.io import sniff as fmt
from core.io.annotations import LesionAnnotation, masks_for_images, nifti_annotation, seg_annotation
from core.io.dicom_frames import SEG_SOP_CLASS, FileHeader, FrameRef, read_header
from core.io.geometry import order_stack, select_stack
from core.io.images import image_series
from core.io.nifti import is_label_volume, load_nifti, nifti_series
from core.io.series import DicomStackReader, Series, SeriesInfo

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Study:
    """The series found at a location, their lesion annotations and the loader's warnings."""

    source: str
    series: tuple[Series, ...]
    annotations: tuple[LesionAnnotation, ...]
    warnings: tuple[str, ...]

    def annotation_for(self, series: Series) -> LesionAnnotation | None:
        return next((a for a in self.annotations if a.series_uid == series.uid), None)


@dataclass
class _Found:
    dicom: list[FileHeader]
    segs: list[Path]
    images: list[Path]
    niftis: list[Path]
    warnings: list[str]


def _walk(paths: Sequence[Path], warnings: list[str]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if not path.exists():
            raise StudyReadError(f"{path}: no such file or folder")
        if not path.is_dir():  # a file, or a FIFO or device that classifying reports
            files.append(path)
            continue
        if not os.access(path, os.R_OK | os.X_OK):
            raise StudyReadError(f"{path}: permission denied")

        def onerror(exc: OSError) -> None:
            warnings.append(f"{exc.filename}: cannot list folder ({exc.strerror})")

        for root, dirs, names in os.walk(path, onerror=onerror):
            dirs.sort()
            files.extend(Path(root) / n for n in sorted(names) if not n.startswith("."))
    return files


def _dicomdir_files(header: FileHeader) -> list[Path]:
    base = header.path.parent
    out = []
    for record in header.dataset.get("DirectoryRecordSequence", []):
        ref = record.get("ReferencedFileID")
        if ref:
            parts = [ref] if isinstance(ref, str) else list(ref)
            out.append(base.joinpath(*parts))
    return out


def _classify(files: Iterable[Path], cancel: Callable[[], bool] | None) -> _Found:
    found = _Found([], [], [], [], [])
    skipped: list[str] = []
    queue = deque(files)
    seen: set[Path] = set()
    while queue:
        if cancel is not None and cancel():
            raise Cancelled("opening cancelled")
        path = queue.popleft()
        if path in seen:
            continue
        seen.add(path)
        try:
            head = fmt.leading_bytes(path)
            kind = fmt.sniff(path, head)
        except OSError as exc:
            found.warnings.append(f"{path.name}: cannot read ({exc.strerror or exc})")
            continue
        if kind == fmt.IMAGE:
            found.images.append(path)
        elif kind == fmt.NIFTI:
            found.niftis.append(path)
        elif kind == fmt.DICOM:
            try:
                header = read_header(path, head=head, force=True)
            except StudyReadError as exc:
                found.warnings.append(str(exc))
                continue
            if "DirectoryRecordSequence" in header.dataset:
                queue.extend(_dicomdir_files(header))
            elif header.sop_class == SEG_SOP_CLASS or header.modality == "SEG":
                found.segs.append(path)
            elif header.frames:
                found.dicom.append(header)
            else:
                skipped.append(path.name)
        else:
            skipped.append(path.name)
    if skipped:
        sample = ", ".join(skipped[:3]) + (", ..." if len(skipped) > 3 else "")
        found.warnings.append(f"skipped {len(skipped)} file(s) without image data ({sample})")
    return found


def _dicom_series(headers: Sequence[FileHeader]) -> tuple[list[Series], list[str]]:
    groups: dict[str, list[FrameRef]] = defaultdict(list)
    first: dict[str, FileHeader] = {}
    for h in headers:
        groups[h.series_uid].extend(h.frames)
        first.setdefault(h.series_uid, h)
    series, warnings = [], []
    for uid, frames in groups.items():
        kept, notes = select_stack(frames)
        if not kept:
            warnings.append(f"series {uid}: no usable slices ({'; '.join(notes)})")
            continue
        ordered, geometry, order_notes = order_stack(kept)
        head = first[uid]
        info = SeriesInfo(
            uid=uid,
            unit="HU" if head.modality in ("CT", "") else "raw",  # raw: rescaled values of MR, CR, ...
            fields=head.meta,
            window=head.window,
            slice_names=tuple(f.path.name + (f"[{f.frame}]" if f.n_frames_in_file > 1 else "") for f in ordered),
            sop_uids=tuple(f.sop_uid for f in ordered),
            source=str(ordered[0].path.parent),
            files=tuple(str(f.path) for f in ordered),
        )
        shape = (len(ordered), ordered[0].rows, ordered[0].cols)
        series.append(Series(info, shape, geometry, DicomStackReader(ordered), notes + order_notes))
    return series, warnings


def _annotations(found: _Found, series: Sequence[Series]) -> tuple[list[LesionAnnotation], list[str]]:
    notes: list[str] = []
    out: list[LesionAnnotation] = []
    for path in found.segs:
        try:
            ann = seg_annotation(path, series)
        except StudyReadError as exc:
            notes.append(str(exc))
            continue
        if ann is None:
            notes.append(f"{path.name}: segmentation references none of the loaded series")
        else:
            out.append(ann)
    for s in series:
        if s.info.unit == "gray" and not any(a.series_uid == s.uid for a in out):
            folder = Path(s.info.source)
            for name in ("GT", "gt", "masks", "Masks"):
                ann = masks_for_images(s, folder.parent / name)
                if ann is not None:
                    out.append(ann)
                    break
    return out, notes


def open_study(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    cancel: Callable[[], bool] | None = None,
) -> Study:
    """Find every series under ``paths`` and their annotations; parse headers only.

    Raises
    ------
    StudyReadError
        One-line reason when nothing readable is there (missing path, no images, all corrupt).
    """
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    sources = [Path(p) for p in items]
    if not sources:
        raise StudyReadError("no input given")
    warnings: list[str] = []
    found = _classify(_walk(sources, warnings), cancel)
    warnings += found.warnings
    series, notes = _dicom_series(found.dicom)
    warnings += notes
    img_series, notes = image_series(found.images)
    series += img_series
    warnings += notes
    masks: list[Path] = []
    for path in found.niftis:
        try:
            img = load_nifti(path)
            if is_label_volume(img, path):
                masks.append(path)
            else:
                series.append(nifti_series(path, img))
        except StudyReadError as exc:
            warnings.append(str(exc))
    if not series:
        reason = warnings[0] if len(warnings) == 1 else "no readable images found"
        raise StudyReadError(f"{', '.join(map(str, sources))}: {reason}")
    annotations, notes = _annotations(found, series)
    warnings += notes
    for path in masks:
        target = next((s for s in series if s.info.unit == "HU" or len(series) == 1), series[0])
        try:
            annotations.append(nifti_annotation(path, target))
        except StudyReadError as exc:
            warnings.append(str(exc))
    for s in series:
        warnings += [f"{s.info.description}: {w}" for w in s.warnings]
    return Study(", ".join(map(str, sources)), tuple(series), tuple(annotations), tuple(warnings))


def viewable(study: Study) -> Study:
    """``study`` without the series whose middle slice (the one a viewer shows first) cannot be
    decoded, each named in a warning; a StudyReadError when none is left. Decoding it here, off
    a viewer's UI thread, also leaves it ready for the first paint."""
    kept, unreadable = [], []
    for s in study.series:
        try:
            s.slice(len(s) // 2)
            kept.append(s)
        except StudyReadError as exc:
            unreadable.append(f"{s.info.description}: {exc}")
    if not kept:
        more = f" (and {len(unreadable) - 1} more series)" if len(unreadable) > 1 else ""
        raise StudyReadError(f"{unreadable[0]}{more}")
    if not unreadable:
        return study
    uids = {s.uid for s in kept}
    annotations = tuple(a for a in study.annotations if a.series_uid in uids)
    return Study(study.source, tuple(kept), annotations, (*(f"left out {u}" for u in unreadable), *study.warnings))
