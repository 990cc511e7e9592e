"""``ctlens explain DATA --model M``: heatmaps, overlays and overlap with annotated lesions."""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from torch import nn

from core.atomic import atomic_path, atomic_write_text, check_output_outside
from core.cli.model_arg import load_model
from core.cli.progress import ProgressBar
from core.datasets import Dataset, Sample, open_dataset
from core.errors import CTLensError
from core.explain.methods import METHODS
from core.model.build import cam_layer
from core.model.card import ModelCard
from core.overlap import DEFAULT_THRESHOLD, OverlapScores, score_slice, summarise, support_region
from core.preprocess import display_values
from core.render import overlay
from core.research.gallery import explain_images


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("explain", help="heatmaps + overlap with lesion masks for every image of a dataset")
    p.add_argument("data", type=Path, help="dataset folder (any layout `ctlens inspect` reads)")
    p.add_argument("--model", help="checkpoint (.safetensors) or run folder")
    p.add_argument("--method", choices=METHODS, default="gradcam")
    p.add_argument("--layer", help="layer name (default: the last convolution)")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="support region: heatmap > T")
    p.add_argument("--out", required=True, type=Path, help="output folder (outside the data)")
    p.add_argument("--top", type=int, default=0, help="also copy the N most consistent overlays to OUT/top")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=16)
    p.set_defaults(run=run)


def _safe_name(sample_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", sample_id)


def _explain(args: argparse.Namespace, model: nn.Module, card: ModelCard, layer: str | None, data: Dataset,
             samples: tuple[Sample, ...]) -> list[dict[str, object]]:  # fmt: skip
    rows: list[dict[str, object]] = []
    bar = ProgressBar(f"explain ({args.method})")
    explained = explain_images(model, card, data, samples, method=args.method, layer=layer,
                               batch_size=args.batch_size, progress=bar)  # fmt: skip
    for e in explained:
        heat, mask = e.heatmap, e.mask
        scores = score_slice(heat, mask, args.threshold) if mask is not None else OverlapScores(None, None, None, None)
        name = _safe_name(e.sample.id)
        with atomic_path(args.out / "heatmaps" / f"{name}.npz") as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, heatmap=heat, raw=e.raw)
        shown = display_values(e.image.pixels, e.image.unit, card.preprocessing.window)
        picture = overlay(shown, heat, support=support_region(heat, args.threshold), lesion=mask)
        with atomic_path(args.out / "overlays" / f"{name}.png") as tmp:
            Image.fromarray(picture).save(tmp, format="PNG")
        rows.append({"id": e.sample.id, "label": e.sample.label, "p_covid": round(e.p_lesion, 4),
                     "consistent_degree": scores.consistent_degree, "iou": scores.iou, "dice": scores.dice,
                     "pointing_game": scores.pointing_game, "lesion_pixels": None if mask is None else int(mask.sum()),
                     "overlay": f"overlays/{name}.png"})  # fmt: skip
    return rows


def _check_options(args: argparse.Namespace) -> None:
    if args.batch_size < 1:
        raise CTLensError(f"--batch-size must be at least 1, got {args.batch_size}")
    if not 0 <= args.threshold <= 1:
        raise CTLensError(f"--threshold must lie in [0, 1], got {args.threshold}")
    if args.top < 0:
        raise CTLensError(f"--top must not be negative, got {args.top}")


def run(args: argparse.Namespace) -> int:
    _check_options(args)
    data = open_dataset(args.data)
    check_output_outside(args.out, args.data)
    model, card, path = load_model(args.model, args.device)
    layer = None if args.method == "rise" else args.layer or cam_layer(model)  # RISE is black-box
    rows = _explain(args, model, card, layer, data, data.samples)  # the layer summary.json names is the one used
    with atomic_path(args.out / "overlap.csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    summary = summarise(
        OverlapScores(r["consistent_degree"], r["iou"], r["dice"], r["pointing_game"])  # type: ignore[arg-type]
        for r in rows
    )
    described = {"model": str(path), "method": args.method, "layer": layer, "threshold": args.threshold}
    atomic_write_text(args.out / "summary.json",
                      json.dumps({**described, "images": len(rows), **summary.__dict__}, indent=2) + "\n")  # fmt: skip
    if summary.consistent_degree is None:
        print(f"{len(rows)} heatmaps in {args.out}; no lesion masks, so no overlap figures")
    else:
        print(f"{len(rows)} heatmaps in {args.out}; {summary.slices_with_lesion} images with lesions: mean consistent "
              f"degree {summary.consistent_degree:.4f}, IoU {summary.iou:.4f}, Dice {summary.dice:.4f}, "
              f"pointing game {summary.pointing_game:.3f} (threshold {args.threshold:g}"
              f"{f', layer {layer}' if layer else ''})")  # fmt: skip
    if args.top:
        scored = [r for r in rows if r["consistent_degree"] is not None]  # ranked as the attention gallery ranks
        scored.sort(key=lambda r: (-r["consistent_degree"], -r["lesion_pixels"]))  # type: ignore[operator]
        (args.out / "top").mkdir(parents=True, exist_ok=True)
        for rank, r in enumerate(scored[: args.top], 1):
            shutil.copyfile(
                args.out / str(r["overlay"]), args.out / "top" / f"{rank:02d}_{Path(str(r['overlay'])).name}"
            )
    return 0
