"""``ctlens probe DATA --backbone B``: linear-probe accuracy and AUC of a frozen backbone's features."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from core.cli.progress import ProgressBar
from core.datasets import open_dataset
from core.errors import CTLensError
from core.pretrain.probe import FEATURES, describe, linear_probe
from core.train.config import MAX_SEED


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("probe", help="linear probe of a backbone: frozen features + logistic regression")
    p.add_argument("data", type=Path, help="labelled dataset folder (COVID-CT, class folders, Imgs+GT, synthetic)")
    p.add_argument("--backbone", "--model", dest="backbone", required=True,
                   help="pretrain run folder or backbone/classifier .safetensors; scratch | imagenet")  # fmt: skip
    p.add_argument("--arch", default="alexnet", help="architecture for scratch/imagenet (checkpoints say their own)")
    p.add_argument("--input-size", type=int, help="default: the checkpoint's (224 for scratch/imagenet)")
    p.add_argument("--features", choices=FEATURES, default="deep",
                   help="deep: the head's input (9216 for AlexNet); pooled: channel means (256)")  # fmt: skip
    p.add_argument("--folds", type=int, default=0, help="K-fold CV (default: the dataset's train/val split, else 5)")
    p.add_argument("--seed", type=int, default=0, help="folds, inner CV and a random (scratch) backbone's weights")
    p.add_argument("--device", default="auto")
    p.add_argument("--positive", help="class folder holding the positive (COVID) images")
    p.add_argument("--negative", help="class folder holding the negative images")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.input_size is not None and args.input_size < 1:
        raise CTLensError(f"--input-size must be at least 1, got {args.input_size}")
    if not 0 <= args.seed <= MAX_SEED:
        raise CTLensError(f"--seed must lie in 0-{MAX_SEED}, got {args.seed}")
    dataset = open_dataset(args.data, positive=args.positive, negative=args.negative)
    result = linear_probe(dataset, args.backbone, arch=args.arch, input_size=args.input_size, features=args.features,
                          folds=args.folds, seed=args.seed, device=args.device,
                          progress=None if args.json else ProgressBar("images"))  # fmt: skip
    if args.json:
        print(json.dumps(asdict(result)))
        return 0
    print(f"backbone: {result.backbone}")
    print(f"{result.features} features ({result.dims}-dim), {result.protocol}: "
          f"{result.train_images} training / {result.test_images} scored images")  # fmt: skip
    print(f"linear probe: {describe(result)}  ({result.seconds:.1f}s)")
    return 0
