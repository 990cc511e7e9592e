"""``ctlens pretrain DATA... --out RUN``: self-supervised (MoCo v2) pretraining of a backbone on
unlabeled slices; ``ctlens train DATA --init RUN/backbone.safetensors`` then fine-tunes it."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.atomic import check_output_outside
from core.cli.progress import ProgressBar
from core.cli.resume import planned_epochs
from core.errors import Cancelled
from core.pretrain.config import PretrainConfig, PretrainRecord
from core.pretrain.loop import pretrain


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    d = PretrainConfig()
    p = sub.add_parser("pretrain", help="self-supervised pretraining of the backbone on unlabeled CT (MoCo v2)")
    p.add_argument("data", nargs="*", type=Path, help="image folders/files, DICOM studies, NIfTI volumes (no labels)")
    p.add_argument("--out", required=True, type=Path, help="run folder (history.jsonl, backbone.safetensors)")
    p.add_argument("--arch", default=d.arch, help="torchvision classifier whose backbone is pretrained")
    p.add_argument("--init", default=d.init, help="scratch | imagenet | PATH (start from these weights)")
    p.add_argument("--epochs", type=int, help=f"default {d.epochs}; with --resume, the run's own")
    p.add_argument("--lr", type=float, default=d.lr, help="SGD learning rate (cosine schedule)")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--temperature", type=float, default=d.temperature, help="InfoNCE temperature")
    p.add_argument("--queue", type=int, default=d.queue_size, help="negative keys kept (at most half the images)")
    p.add_argument("--input-size", type=int, default=d.input_size)
    p.add_argument("--bn-groups", type=int, default=d.bn_groups,
                   help="trunks with batch norm: encode queries and shuffled keys in N sub-batches (1: off)")
    p.add_argument("--slice-step", type=int, default=d.slice_step, help="use every n-th slice of a volume")
    p.add_argument("--group-by-name", action="store_true",
                   help="image files in a folder whose names differ only in a trailing number are slices of one "
                        "volume (for --slice-step, and a query's negatives leave out its own volume)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device, help="auto | cpu | cuda[:N] | mps")
    p.add_argument("--resume", action="store_true", help="continue the run in --out (DATA may be left out)")
    p.set_defaults(run=run)


def _print_epoch(r: PretrainRecord) -> None:
    print(f"epoch {r.epoch:3d}  loss {r.loss:.4f}  instance acc {r.instance_acc:.3f}  lr {r.lr:.4f}  "
          f"({r.seconds:.1f}s)", flush=True)  # fmt: skip


def run(args: argparse.Namespace) -> int:
    check_output_outside(args.out, *args.data)
    cfg = PretrainConfig(
        arch=args.arch, init=args.init, epochs=planned_epochs(args, PretrainConfig.epochs), lr=args.lr,
        batch_size=args.batch_size, temperature=args.temperature, queue_size=args.queue,
        input_size=args.input_size, bn_groups=args.bn_groups, slice_step=args.slice_step,
        group_by_name=args.group_by_name, seed=args.seed, device=args.device,
    )  # fmt: skip
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
