"""``python -m benchmarks``: run every benchmark, print the table, write build/bench.json."""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks import dicom_load, embed, gradcam, study, train_overhead, viewer
from benchmarks.report import table, write_json

ROOT = Path(__file__).resolve().parents[1]
SUITES = (dicom_load.run, gradcam.run, study.run, train_overhead.run, viewer.run, embed.run)


def main() -> int:
    workdir = ROOT / "build" / "bench-data"
    workdir.mkdir(parents=True, exist_ok=True)
    results = [r for suite in SUITES for r in suite(workdir)]
    print(table(results))
    out = ROOT / "build" / "bench.json"
    write_json(results, out)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
