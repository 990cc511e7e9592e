"""``ctlens evaluate DATA --model M [--baselines] [--folds 5]``: the paper's Table 1 with 95% CIs."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from core.cli.model_arg import load_model
from core.cli.progress import ProgressBar
from core.datasets import open_dataset
from core.diagnose import predict_samples
from core.evaluate import best_per_column, held_out, score_method, svm_cross_validated, table
from core.features.extract import dataset_features
from core.train.splits import cv_folds


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("evaluate", help="Table 1: the network vs LBP+SVM and deep features+SVM, with 95%% CIs")
    p.add_argument("data", help="dataset folder (COVID-CT, class folders, Imgs+GT, or synthetic)")
    p.add_argument("--model", help="checkpoint (.safetensors) or run folder")
    p.add_argument("--baselines", action="store_true", help="add LBP+SVM and deep features+SVM (cross-validated)")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds for the baselines (default 5)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the CIs (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--positive", help="class folder holding the positive (COVID) images")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    model, card, path = load_model(args.model, args.device)
    dataset = open_dataset(Path(args.data), positive=args.positive)
    quiet = args.json
    results = []
    split, samples = held_out(dataset, card.training_data)
    labels = np.array([s.label for s in samples])

    bar = None if quiet else ProgressBar(f"network on {split} ({len(samples)})")
    positive = card.positive_index
    probs = predict_samples(model, card.preprocessing, dataset, samples, progress=bar)[:, positive]
    results.append(score_method(f"{card.arch} ({split})", labels, probs, 0.5, bootstrap=args.bootstrap))
    if args.baselines:
        everything = dataset.samples
        all_labels = np.array([s.label for s in everything])
        folds = cv_folds(everything, args.folds, args.seed)
        _, lbp = dataset_features(
            "lbp",
            model,
            card.preprocessing,
            path,
            dataset,
            everything,
            progress=None if quiet else ProgressBar("LBP features"),
        )
        _, deep = dataset_features("deep", model, card.preprocessing, path, dataset, everything,
                                   progress=None if quiet else ProgressBar("deep features"))  # fmt: skip
        for name, features in (("LBP + SVM", lbp), ("deep features + SVM", deep)):
            scores, per_fold = svm_cross_validated(features, all_labels, folds, args.seed)
            title = f"{name} ({args.folds}-fold CV)"
            results.append(score_method(title, all_labels, scores, 0.0, bootstrap=args.bootstrap, folds=per_fold))
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
