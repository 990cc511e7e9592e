"""``ctlens embed DATA --model M --features deep|lbp --method ... --dims 2|3 --out FILE.csv``."""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

from core.atomic import atomic_write_text, check_output_outside
from core.cli.model_arg import load_model
from core.cli.progress import ProgressBar
from core.datasets import open_dataset
from core.embed import METHODS
from core.features.extract import KINDS
from core.research.embedding import embed_dataset


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("embed", help="2-D/3-D embedding of deep or LBP features (PCA, kernel PCA, t-SNE) as CSV")
    p.add_argument("data", help="dataset folder (COVID-CT, class folders, Imgs+GT, or synthetic)")
    p.add_argument("--model", help="checkpoint (.safetensors) or run folder (deep features, predictions)")
    p.add_argument("--features", choices=KINDS, default="deep")
    p.add_argument("--method", choices=METHODS, default="pca")
    p.add_argument("--dims", type=int, choices=(2, 3), default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--positive", help="class folder holding the positive (COVID) images")
    p.add_argument("--out", type=Path, required=True, help="CSV: id, label, prediction, p_lesion, x, y[, z]")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_output_outside(args.out.parent, Path(args.data))
    model, card, path = load_model(args.model, args.device)
    dataset = open_dataset(Path(args.data), positive=args.positive)
    progress = ProgressBar(f"{args.features} features, predictions, {args.method}")
    embedding = embed_dataset(dataset, model, card, path, features=args.features, method=args.method,
                              dims=args.dims, seed=args.seed, progress=progress)  # fmt: skip
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "label", "prediction", "p_lesion", *"xyz"[: args.dims]])
    for row in embedding.rows():
        writer.writerow([row.sample.id, row.label, row.prediction, f"{row.p_lesion:.6f}",
                         *(f"{v:.6f}" for v in row.coords)])  # fmt: skip
    atomic_write_text(args.out, buffer.getvalue())
    print(f"{len(embedding.samples)} images, {args.features} features ({embedding.feature_dims}-dim) -> "
          f"{args.method} {args.dims}-D: {args.out}")  # fmt: skip
    return 0
