"""train / diagnose / explain from the command line, on tiny synthetic data."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.cli.main import main

TINY = ["--epochs", "1", "--input-size", "64", "--init", "scratch", "--batch-size", "8", "--device", "cpu"]


@pytest.fixture(scope="module")
def run_dir(train_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli-run") / "run"
    assert main(["train", str(train_root), "--out", str(out), *TINY]) == 0
    return out


def test_train_prints_epochs_and_writes_the_run(run_dir, capsys):
    assert (run_dir / "best.safetensors").is_file() and (run_dir / "history.jsonl").is_file()
    assert json.loads((run_dir / "best.json").read_text())["arch"] == "alexnet"


def test_diagnose_json(run_dir, train_root, capsys):
    capsys.readouterr()
    assert main(["diagnose", str(train_root / "SYN001"), "--model", str(run_dir), "--json", "--rule", "max"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    assert len(record["slice_probabilities"]) == 8
    assert record["verdict"] in ("COVID", "no lesion") and record["rule"] == "max"
    assert record["score"] == pytest.approx(max(record["slice_probabilities"]), abs=1e-4)


def test_explain_writes_heatmaps_overlays_and_overlap(run_dir, train_root, tmp_path, capsys):
    out = tmp_path / "explain"
    assert main(["explain", str(train_root), "--model", str(run_dir), "--out", str(out), "--top", "2"]) == 0
    with open(out / "overlap.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 32
    with_lesion = [r for r in rows if r["consistent_degree"]]
    assert with_lesion and all(0 <= float(r["consistent_degree"]) <= 1 for r in with_lesion)
    # every slice labelled positive has a lesion mask, so a score; healthy patients have none
    assert all(r["consistent_degree"] for r in rows if r["label"] == "1")
    assert all(r["consistent_degree"] == "" for r in rows if r["id"].startswith(("SYN002", "SYN004")))
    npz = np.load(out / "heatmaps" / f"{rows[0]['id'].replace('/', '_')}.npz")
    assert npz["heatmap"].shape == (128, 128) and npz["heatmap"].min() >= 0 and npz["heatmap"].max() <= 1
    assert Image.open(out / rows[0]["overlay"]).size == (128, 128)
    best = sorted(with_lesion, key=lambda r: (-float(r["consistent_degree"]), -int(r["lesion_pixels"])))[:2]
    assert sorted(p.name for p in (out / "top").iterdir()) == [
        f"{k:02d}_{Path(r['overlay']).name}" for k, r in enumerate(best, 1)
    ]
    assert all(int(r["lesion_pixels"]) > 0 for r in with_lesion)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["slices_with_lesion"] == len(with_lesion) and summary["threshold"] == 0.7
    assert "mean consistent degree" in capsys.readouterr().out


def test_explain_refuses_to_write_into_the_data(run_dir, train_root, capsys):
    assert main(["explain", str(train_root), "--model", str(run_dir), "--out", str(train_root / "results")]) == 2
    assert "outside the input data" in capsys.readouterr().err
    assert not (train_root / "results").exists()


def test_bad_model_file_is_a_one_line_error(tmp_path, train_root, capsys):
    bad = tmp_path / "m.safetensors"
    bad.write_bytes(b"garbage")
    assert main(["diagnose", str(train_root / "SYN001"), "--model", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ctlens diagnose:") and "\n" not in err


def test_too_small_an_input_size_is_a_one_line_error(tmp_path, train_root, capsys):
    for command in (["train", str(train_root), "--out", str(tmp_path / "t")],
                    ["pretrain", str(train_root), "--out", str(tmp_path / "p")],
                    ["probe", str(train_root), "--backbone", "scratch"]):  # fmt: skip
        assert main([*command, "--input-size", "32", "--device", "cpu"]) == 2
        err = capsys.readouterr().err.strip()
        message = "input size 32 is too small for alexnet: its feature maps vanish (use at least 63)"
        assert err == f"ctlens {command[0]}: {message}"
    assert not (tmp_path / "t").exists() and not (tmp_path / "p").exists()
