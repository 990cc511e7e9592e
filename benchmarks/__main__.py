"""``python -m benchmarks``: run every benchmark, print the table, write build/bench.json."""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks import demo, dicom_load, embed, gradcam, study, train_overhead, viewer
from benchmarks.report import table, write_json

ROOT = Path(__file__).resolve().parents[1]
SUITES = (dicom_load.run, gradcam.run, study.run, train_overhead.run, viewer.run, embed.run, demo.run)


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks [SUITE...]``: every suite (``make bench``), or the named ones (e.g. ``embed``)."""
    names = sys.argv[1:] if argv is None else argv
    known = {suite.__module__.rsplit(".", 1)[-1]: suite for suite in SUITES}
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"unknown suite(s) {', '.join(unknown)}; choose from {', '.join(known)}", file=sys.stderr)
        return 2
    workdir = ROOT / "build" / "bench-data"
    workdir.mkdir(parents=True, exist_ok=True)
    chosen = [known[n] for n in names] if names else list(SUITES)
    results = [r for suite in chosen for r in suite(workdir)]
    print(table(results))
    out = ROOT / "build" / "bench.json"
    write_json(results, out)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
