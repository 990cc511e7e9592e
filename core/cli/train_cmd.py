"""``ctlens train DATA --out RUN``: fine-tune the classifier with the paper's defaults;
``--folds K``: K-fold cross-validation, one run per fold. Works unchanged under
``torchrun --nproc_per_node N`` (data-parallel; rank 0 prints and writes)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from core.atomic import check_output_outside
from core.cli.progress import ProgressBar
from core.cli.resume import given_settings, planned_epochs, refuse_changed_settings, run_count, stored_settings
from core.datasets import Dataset, open_dataset
from core.errors import Cancelled
from core.train.config import TrainConfig
from core.train.cross_validate import REPORTED, cross_validate
from core.train.distributed import is_main, leave
from core.train.history import EpochRecord
from core.train.loop import train

# settings options (argument dest -> TrainConfig field); --epochs, --device and --no-augment are read apart
SETTINGS = {name: name for name in ("arch", "init", "lr", "batch_size", "momentum", "weight_decay", "optimizer",
                                    "schedule", "balance", "dropout", "attention_loss", "freeze_epochs", "seed",
                                    "input_size", "adjacent_slices", "val_fraction", "folds")}  # fmt: skip


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    d = TrainConfig()
    p = sub.add_parser("train", help="train the COVID-lesion classifier (AlexNet, SGD+momentum by default)")
    p.add_argument("data", type=Path, help="dataset folder (COVID-CT, class folders, Imgs+GT, or synthetic)")
    p.add_argument("--out", required=True, type=Path, help="run folder (history.jsonl, best/last checkpoints)")
    p.add_argument("--arch", help=f"torchvision classifier (default: {d.arch})")
    p.add_argument("--init", help="imagenet-if-available (default) | imagenet | scratch | PATH")
    p.add_argument("--epochs", type=int, help=f"default {d.epochs}; with --resume, the run's own")
    p.add_argument("--lr", type=float, help=f"default {d.lr}")
    p.add_argument("--batch-size", type=int, help=f"default {d.batch_size}")
    p.add_argument("--momentum", type=float, help=f"default {d.momentum}")
    p.add_argument("--weight-decay", type=float, help=f"default {d.weight_decay}")
    p.add_argument("--optimizer", choices=("sgd", "adam"), help=f"default {d.optimizer}")
    p.add_argument("--schedule", choices=("none", "cosine", "step"), help=f"default {d.schedule}")
    p.add_argument("--no-augment", action="store_true", default=None, help="no flips, affine or intensity jitter")
    p.add_argument("--balance", action="store_true", default=None, help="weigh the loss by inverse class frequency")
    p.add_argument(
        "--dropout", type=float, metavar="P", help="the classifier's dropout probability (default: AlexNet's 0.5)"
    )
    p.add_argument(
        "--attention-loss",
        type=float,
        metavar="W",
        help="teach Grad-CAM the lesion masks, weight W (GAIN-style; datasets with masks; default 0: labels only)",
    )
    p.add_argument(
        "--freeze-epochs",
        type=int,
        metavar="N",
        help="train only the head for the first N epochs, the features frozen (after --init from a backbone)",
    )
    p.add_argument("--seed", type=int, help=f"default {d.seed}")
    p.add_argument("--device", default=d.device, help="auto | cpu | cuda[:N] | mps")
    p.add_argument("--input-size", type=int, help=f"default {d.input_size}")
    p.add_argument(
        "--adjacent-slices",
        type=int,
        metavar="N",
        help="2.5-D input: the slice and its neighbours N slices apart as the three channels (series only; "
        "default 0: the slice in every channel)",
    )
    p.add_argument("--val-fraction", type=float, help=f"default {d.val_fraction}")
    p.add_argument("--folds", type=int, help="K > 1: K-fold cross-validation (stratified, by patient)")
    p.add_argument("--positive", help="class folder holding the positive (COVID) images")
    p.add_argument("--negative", help="class folder holding the negative images")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out with its own settings (--epochs and --device may change)")
    p.set_defaults(run=run)


def _fmt(x: float) -> str:
    return "  -  " if math.isnan(x) else f"{x:.3f}"


def _mean_sd(mean: float, sd: float) -> str:
    return "-" if math.isnan(mean) else f"{mean:.3f}±{sd:.3f}"


def _print_epoch(r: EpochRecord) -> None:
    t, v = r.train, r.val
    print(f"epoch {r.epoch:3d}  loss {t['loss']:.4f}/{v['loss']:.4f}  acc {_fmt(t['acc'])}/{_fmt(v['acc'])}  "
          f"sens {_fmt(v['sensitivity'])}  spec {_fmt(v['specificity'])}  ppv {_fmt(v['ppv'])}  "
          f"npv {_fmt(v['npv'])}  ({r.seconds:.1f}s)", flush=True)  # fmt: skip


def run(args: argparse.Namespace) -> int:
    check_output_outside(args.out, args.data)
    dataset = open_dataset(args.data, positive=args.positive, negative=args.negative)
    given = given_settings(args, SETTINGS)
    if args.no_augment:
        given["augment"] = None
    stored = stored_settings(args)
    refuse_changed_settings(args, stored, given, {"augment": "--no-augment"})
    cfg = TrainConfig(**given, epochs=planned_epochs(args, stored, TrainConfig.epochs), device=args.device)
    main = is_main()
    if main:
        print(f"{dataset.layout} dataset, {len(dataset.samples)} images; train/val as printed per epoch")
    try:
        if run_count(args, stored, "folds", cfg.folds) > 1:
            return _cross_validate(dataset, args, cfg, main)
        result = train(dataset, args.out, cfg, resume=args.resume, progress=ProgressBar("train") if main else None,
                       on_epoch=_print_epoch)  # fmt: skip
    except Cancelled as exc:
        print(f"stopped: {exc}; continue with --resume")
        return 130
    finally:
        leave()
    best = result.best
    if main:
        print(f"best epoch {result.best_epoch}: val acc {_fmt(best['acc'])}, sensitivity {_fmt(best['sensitivity'])}, "
              f"specificity {_fmt(best['specificity'])} -> {result.run_dir / 'best.safetensors'}")  # fmt: skip
    return 0


def _cross_validate(dataset: Dataset, args: argparse.Namespace, cfg: TrainConfig, main: bool) -> int:
    def on_epoch(fold: int, record: EpochRecord) -> None:
        print(f"fold {fold + 1}/{cfg.folds} ", end="")
        _print_epoch(record)

    cv = cross_validate(dataset, args.out, cfg, resume=args.resume, progress=ProgressBar("train") if main else None,
                        on_epoch=on_epoch)  # fmt: skip
    if main:
        print(f"{cfg.folds}-fold cross-validation, validation metrics of each fold's last epoch:")
        print("        " + "".join(f"{k:>13}" for k in REPORTED))
        for k, fold in enumerate(cv.folds, 1):
            print(f"fold {k:<3d}" + "".join(f"{_fmt(fold[m]):>13}" for m in REPORTED))
        print("mean±sd " + "".join(f"{_mean_sd(cv.mean[m], cv.std[m]):>13}" for m in REPORTED))
        print(f"-> {cv.run_dir / 'folds.json'}")
    return 0
