"""``ctlens evaluate DATA --model M [--baselines] [--folds 5]``: the paper's Table 1 with 95% CIs."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from core.atomic import atomic_write_text, check_output_outside
from core.cli.model_arg import load_model
from core.cli.progress import ProgressBar
from core.datasets import open_dataset
from core.errors import CTLensError
from core.evaluate import best_per_column, table, table1, table_csv


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("evaluate", help="Table 1: the network vs LBP+SVM and deep features+SVM, with 95%% CIs")
    p.add_argument("data", help="dataset folder (COVID-CT, class folders, Imgs+GT, or synthetic)")
    p.add_argument("--model", help="checkpoint (.safetensors) or run folder")
    p.add_argument("--baselines", action="store_true", help="add LBP+SVM and deep features+SVM (cross-validated)")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds for the baselines (default 5)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the CIs, >= 1 (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--positive", help="class folder holding the positive (COVID) images")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--csv", type=Path, help="also write the table as CSV (outside the data)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.bootstrap < 1:
        raise CTLensError(f"--bootstrap must be at least 1 resample, got {args.bootstrap}")
    if args.csv is not None:
        check_output_outside(args.csv, Path(args.data))
    model, card, path = load_model(args.model, args.device)
    dataset = open_dataset(Path(args.data), positive=args.positive)
    bar = None if args.json else ProgressBar("Table 1 (network, features, SVMs)")
    results = table1(dataset, model, card, path, baselines=args.baselines, folds=args.folds,
                     bootstrap=args.bootstrap, seed=args.seed, progress=bar)  # fmt: skip
    if args.csv is not None:
        atomic_write_text(args.csv, table_csv(results))
    if args.json:
        print(json.dumps({"model": str(path), "best": best_per_column(results),
                          "methods": [asdict(r) for r in results]}, default=float))  # fmt: skip
        return 0
    print(table(results))
    print("* best per column; [95% bootstrap CI]")
    for r in results:
        c = r.confusion
        print(f"{r.name}: {r.images} images, TP {c.tp} FP {c.fp} TN {c.tn} FN {c.fn}")
    return 0
