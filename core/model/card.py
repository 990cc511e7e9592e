"""The model card: what a checkpoint is, how its inputs were made, how well it did."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from core import __version__
from core.errors import CTLensError
from core.model.build import check_input_size
from core.preprocess import Preprocessing

CARD_KEY = "ctlens_model_card"
FORMAT = 1


@dataclass(frozen=True)
class ModelCard:
    arch: str
    classes: tuple[str, ...]
    preprocessing: Preprocessing
    init: str = "scratch"
    training_data: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    # "classifier" (a head for ``classes``) or "backbone": a self-supervised feature extractor
    # without a head (``ctlens pretrain``), usable only as ``--init``. Older cards have no field.
    kind: str = "classifier"
    created: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    ctlens_version: str = __version__
    format: int = FORMAT

    @property
    def positive_index(self) -> int:
        """The index of the lesion class ("COVID", else the last class)."""
        return self.classes.index("COVID") if "COVID" in self.classes else len(self.classes) - 1

    def to_json(self) -> str:
        data = asdict(self)
        data["classes"] = list(self.classes)
        data["preprocessing"] = self.preprocessing.to_dict()
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        """The card in ``text``; raises CTLensError for a damaged card, one that needs a newer CTLens, or
        one whose input size its network cannot take."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise TypeError(f"a JSON {type(data).__name__}, not an object")
            known = {f.name for f in fields(cls)}
            data = {k: v for k, v in data.items() if k in known}
            data["classes"] = tuple(data["classes"])
            data["preprocessing"] = Preprocessing.from_dict(data["preprocessing"])
            if int(data.get("format", 0)) > FORMAT:
                raise CTLensError(f"model card format {data['format']} is newer than this CTLens understands")
            card = cls(**data)
        except (ValueError, KeyError, TypeError) as exc:
            raise CTLensError(f"invalid model card ({type(exc).__name__}: {exc})") from exc
        check_input_size(card.arch, card.preprocessing.input_size)
        return card
