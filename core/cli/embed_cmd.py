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
from core.demo import cache_dir
from core.diagnose import predict_samples
from core.embed import METHODS, cached_projection
from core.features.extract import KINDS, dataset_features


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
    samples = dataset.samples
    key, features = dataset_features(args.features, model, card.preprocessing, path, dataset, samples,
                                     progress=ProgressBar(f"{args.features} features"))  # fmt: skip

    positive = card.positive_index
    probs = predict_samples(model, card.preprocessing, dataset, samples, progress=ProgressBar("predictions"))
    coords = cached_projection(cache_dir() / "features", key, features, args.method, args.dims, args.seed)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "label", "prediction", "p_lesion", *"xyz"[: args.dims]])
    for sample, p, xyz in zip(samples, probs[:, positive], coords, strict=True):
        writer.writerow([sample.id, sample.label, int(p >= 0.5), f"{p:.6f}", *(f"{v:.6f}" for v in xyz)])
    atomic_write_text(args.out, buffer.getvalue())
    print(f"{len(samples)} images, {args.features} features ({features.shape[1]}-dim) -> {args.method} "
          f"{args.dims}-D: {args.out}")  # fmt: skip
    return 0
