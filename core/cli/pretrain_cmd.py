"""``ctlens pretrain DATA... --out RUN``: self-supervised (MoCo v2) pretraining of a backbone on
unlabeled slices; ``ctlens train DATA --init RUN/backbone.safetensors`` then fine-tunes it."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.atomic import check_output_outside
from core.cli.progress import ProgressBar
from core.cli.resume import given_settings, planned_epochs, refuse_changed_settings, stored_settings
from core.errors import Cancelled
from core.pretrain.config import PretrainConfig, PretrainRecord
from core.pretrain.loop import pretrain

# settings options (argument dest -> PretrainConfig field); --epochs and --device are read apart
SETTINGS = {"arch": "arch", "init": "init", "lr": "lr", "batch_size": "batch_size", "temperature": "temperature",
            "queue": "queue_size", "input_size": "input_size", "bn_groups": "bn_groups", "slice_step": "slice_step",
            "group_by_name": "group_by_name", "seed": "seed"}  # fmt: skip


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    d = PretrainConfig()
    p = sub.add_parser("pretrain", help="self-supervised pretraining of the backbone on unlabeled CT (MoCo v2)")
    p.add_argument("data", nargs="*", type=Path, help="image folders/files, DICOM studies, NIfTI volumes (no labels)")
    p.add_argument("--out", required=True, type=Path, help="run folder (history.jsonl, backbone.safetensors)")
    p.add_argument("--arch", help=f"torchvision classifier whose backbone is pretrained (default: {d.arch})")
    p.add_argument("--init", help="scratch (default) | imagenet | PATH (start from these weights)")
    p.add_argument("--epochs", type=int, help=f"default {d.epochs}; with --resume, the run's own")
    p.add_argument("--lr", type=float, help=f"SGD learning rate, cosine schedule (default {d.lr})")
    p.add_argument("--batch-size", type=int, help=f"default {d.batch_size}")
    p.add_argument("--temperature", type=float, help=f"InfoNCE temperature (default {d.temperature})")
    p.add_argument("--queue", type=int, help=f"negative keys kept, at most half the images (default {d.queue_size})")
    p.add_argument("--input-size", type=int, help=f"default {d.input_size}")
    p.add_argument("--bn-groups", type=int,
                   help=f"trunks with batch norm: encode queries and shuffled keys in N sub-batches (1: off; "
                        f"default {d.bn_groups})")
    p.add_argument("--slice-step", type=int, help="use every n-th slice of a volume (default 1)")
    p.add_argument("--group-by-name", action="store_true", default=None,
                   help="image files in a folder whose names differ only in a trailing number are slices of one "
                        "volume (for --slice-step, and a query's negatives leave out its own volume)")
    p.add_argument("--seed", type=int, help=f"default {d.seed}")
    p.add_argument("--device", default=d.device, help="auto | cpu | cuda[:N] | mps")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out with its own settings (DATA, --epochs and --device may change)")
    p.set_defaults(run=run)


def _print_epoch(r: PretrainRecord) -> None:
    print(f"epoch {r.epoch:3d}  loss {r.loss:.4f}  instance acc {r.instance_acc:.3f}  lr {r.lr:.4f}  "
          f"({r.seconds:.1f}s)", flush=True)  # fmt: skip


def run(args: argparse.Namespace) -> int:
    check_output_outside(args.out, *args.data)
    given = given_settings(args, SETTINGS)
    stored = stored_settings(args)
    refuse_changed_settings(args, stored, given, {"queue_size": "--queue"})
    cfg = PretrainConfig(**given, epochs=planned_epochs(args, stored, PretrainConfig.epochs), device=args.device)
    trained: list[PretrainRecord] = []

    def on_epoch(record: PretrainRecord) -> None:
        _print_epoch(record)
        trained.append(record)

    try:
        result = pretrain(args.data, args.out, cfg, resume=args.resume, reading=ProgressBar("read"),
                          progress=ProgressBar("pretrain"), on_epoch=on_epoch)  # fmt: skip
    except Cancelled as exc:
        print(f"stopped: {exc}; continue with --resume")
        return 130
    if not trained:
        print(f"{result.run_dir}: already {len(result.records)} epochs; pass a larger --epochs with --resume to go on")
        return 0
    last = result.records[-1]
    print(f"{result.images} images, {last.epoch} epochs, final loss {last.loss:.4f} -> {result.backbone}")
    print(f"fine-tune it: ctlens train DATA --init {result.backbone}   score it: ctlens probe DATA "
          f"--backbone {result.backbone}")  # fmt: skip
    return 0
