"""``ctlens inspect PATH...``: what CTLens finds at each path, as text or JSON lines."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import numpy as np

from core.errors import CTLensError
from core.io.study import Study, open_study


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("inspect", help="list the series, annotations and warnings found at paths")
    p.add_argument("paths", nargs="+", help="DICOM folder/file/DICOMDIR, NIfTI, or image files")
    p.add_argument("--json", action="store_true", help="one JSON object per input path")
    p.set_defaults(run=run)


def describe(study: Study) -> dict[str, Any]:
    """Summarise a study; decodes every slice to report the value range."""
    series = []
    for s in study.series:
        vol = s.volume()
        dz, dy, dx = s.geometry.spacing
        series.append({
            "uid": s.uid, "description": s.info.description, "modality": s.info.fields.get("Modality", ""),
            "slices": s.shape[0], "rows": s.shape[1], "cols": s.shape[2],
            "spacing_mm": [round(dz, 4), round(dy, 4), round(dx, 4)], "unit": s.info.unit,
            "range": [float(np.min(vol)), float(np.max(vol))], "warnings": list(s.warnings),
        })  # fmt: skip
    annotations = [
        {"series_uid": a.series_uid, "source": a.source, "classes": {str(k): v for k, v in a.classes.items()},
         "lesion_slices": len(a.lesion_slices), "lesion_voxels": int(np.count_nonzero(a.labels))}
        for a in study.annotations
    ]  # fmt: skip
    return {"series": series, "annotations": annotations, "warnings": list(study.warnings)}


def inspect_path(path: str) -> dict[str, Any]:
    """One JSON-able record for ``path``: ``ok`` with the summary, or ``ok: false`` and ``error``."""
    try:
        return {"path": path, "ok": True, **describe(open_study(path))}
    except CTLensError as exc:
        return {"path": path, "ok": False, "error": str(exc)}
    except MemoryError:
        return {"path": path, "ok": False, "error": f"{path}: too large to load in memory"}
    except Exception as exc:  # last resort: never a traceback for bad input
        text = " ".join(str(exc).split())[:200]
        return {"path": path, "ok": False, "error": f"{path}: cannot read ({type(exc).__name__}: {text})"}


def _text(record: dict[str, Any]) -> str:
    if not record["ok"]:
        return f"{record['path']}: ERROR {record['error']}"
    lines = [record["path"]]
    for s in record["series"]:
        lo, hi = s["range"]
        lines.append(
            f"  series {s['description']!r} ({s['modality']}): {s['slices']} x {s['rows']}x{s['cols']}, "
            f"spacing {s['spacing_mm'][0]:g}/{s['spacing_mm'][1]:g}/{s['spacing_mm'][2]:g} mm, "
            f"{s['unit']} {lo:g}..{hi:g}"
        )
    for a in record["annotations"]:
        lines.append(f"  annotation {a['source']}: {', '.join(a['classes'].values())}, {a['lesion_slices']} slice(s)")
    lines += [f"  warning: {w}" for w in record["warnings"]]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    ok = True
    for path in args.paths:
        record = inspect_path(path)
        ok &= record["ok"]
        print(json.dumps(record) if args.json else _text(record), flush=True)
    if not ok and not args.json:
        print("some inputs could not be read", file=sys.stderr)
    return 0 if ok else 2
