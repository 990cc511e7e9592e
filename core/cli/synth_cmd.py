"""``ctlens synth``: write synthetic chest CT patients with lesion masks."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.cli.progress import ProgressBar
from core.errors import CTLensError
from core.synth.study import SynthSpec, synthesize
from core.train.config import MAX_SEED


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("synth", help="write synthetic chest CT studies (DICOM, SEG, NIfTI, labels.csv)")
    p.add_argument("--out", required=True, type=Path, help="output folder (created)")
    p.add_argument("--patients", type=int, default=2)
    p.add_argument("--slices", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=512, help="rows = columns of each slice")
    p.add_argument("--lesion-scale", type=float, default=1.0, help="lesion size multiplier (default 1)")
    p.add_argument("--twins", action="store_true",
                   help="also write each lesion patient's healthy twin (same anatomy and noise) as <id>T")  # fmt: skip
    p.add_argument("--healthy-every", type=int, default=2, metavar="N",
                   help="every N-th patient is healthy, the others have lesions (default 2: every other)")  # fmt: skip
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if (args.patients < 1 or args.slices < 4 or args.size < 64 or args.size % 2 or not 0 < args.lesion_scale <= 3
            or args.healthy_every < 1 or not 0 <= args.seed <= MAX_SEED):  # fmt: skip
        raise CTLensError("need --patients >= 1, --slices >= 4, an even --size >= 64, 0 < --lesion-scale <= 3, "
                          "--healthy-every >= 1, 0 <= --seed < 2^32")  # fmt: skip
    spec = SynthSpec(args.patients, args.slices, args.seed, args.size, args.lesion_scale, args.twins,
                     args.healthy_every)  # fmt: skip
    labels = synthesize(args.out, spec, progress=ProgressBar("synth"))
    print(f"wrote {args.patients} patient(s) to {args.out} (labels: {labels})")
    return 0
