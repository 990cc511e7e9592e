"""``history.jsonl``: one JSON line per finished epoch, appended and flushed as it happens.

The file functions serve any record with ``epoch`` and ``to_json()`` (training's
:class:`EpochRecord`, pretraining's ``PretrainRecord``), parsed by the record type's ``from_json``."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar


class Record(Protocol):
    @property
    def epoch(self) -> int: ...

    def to_json(self) -> str: ...


R = TypeVar("R", bound=Record)


@dataclass(frozen=True)
class EpochRecord:
    """Loss and the paper's five metrics (plus F1) on the training and validation splits."""

    epoch: int  # 1-based
    lr: float
    seconds: float
    train: dict[str, float]  # loss, acc, sensitivity, specificity, ppv, npv, f1
    val: dict[str, float]

    def to_json(self) -> str:
        def clean(d: dict[str, float]) -> dict[str, float | None]:
            return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}

        return json.dumps({"epoch": self.epoch, "lr": self.lr, "seconds": round(self.seconds, 3),
                           "train": clean(self.train), "val": clean(self.val)})  # fmt: skip

    @classmethod
    def from_json(cls, line: str) -> EpochRecord:
        data: dict[str, Any] = json.loads(line)

        def restore(d: dict[str, Any]) -> dict[str, float]:
            return {k: (float("nan") if v is None else float(v)) for k, v in d.items()}

        return cls(
            int(data["epoch"]), float(data["lr"]), float(data["seconds"]), restore(data["train"]), restore(data["val"])
        )


def append(path: Path, record: Record) -> None:
    with open(path, "a") as fh:
        fh.write(record.to_json() + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_records(path: Path, parse: Callable[[str], R]) -> list[R]:
    """Records of a run, parsed line by line (a torn last line from a crash is ignored)."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(parse(line))
        except (ValueError, KeyError, TypeError):
            break
    return records


def read_history(path: Path) -> list[EpochRecord]:
    """A training run's records."""
    return read_records(path, EpochRecord.from_json)


def truncate(path: Path, epochs: int, parse: Callable[[str], R], *, write: bool = True) -> list[R]:
    """Keep the first ``epochs`` records (used when resuming); returns them. ``write=False`` only
    reads them (a process other than rank 0 of a distributed run)."""
    kept = [r for r in read_records(path, parse) if r.epoch <= epochs]
    if write:
        path.write_text("".join(r.to_json() + "\n" for r in kept))
    return kept
