"""Benchmark records, the printed table and ``build/bench.json`` (written atomically)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from core.atomic import atomic_write_text


@dataclass(frozen=True)
class Result:
    name: str
    value: float
    unit: str
    ratio: float
    goal: str  # e.g. ">= 3" or "<= 1.5", applied to ``ratio``
    detail: str

    @property
    def met(self) -> bool:
        op, bound = self.goal.split()
        return self.ratio >= float(bound) if op == ">=" else self.ratio <= float(bound)


def table(results: list[Result]) -> str:
    rows = [("benchmark", "value", "ratio", "goal", "met", "detail")]
    rows += [
        (r.name, f"{r.value:.4g} {r.unit}", f"{r.ratio:.3g}", r.goal, "yes" if r.met else "NO", r.detail)
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:5], widths, strict=True)) + "  " + row[5] for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def write_json(results: list[Result], path: Path) -> None:
    records = [{**asdict(r), "met": r.met} for r in results]
    atomic_write_text(path, json.dumps(records, indent=2) + "\n")
