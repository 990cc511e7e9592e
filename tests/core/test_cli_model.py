"""train / diagnose / explain from the command line, on tiny synthetic data."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.cli.main import main
from core.errors import CTLensError
from core.model.device import pick_device

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
    assert summary["layer"] == "features.11" and summary["model"] == str(run_dir / "best.safetensors")  # conv5's ReLU
    assert "mean consistent degree" in (printed := capsys.readouterr().out) and "layer features.11)" in printed


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


# Output places and run folders that cannot be used: one line, nothing written into the data.


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err  # one line, no traceback
    return err


def test_train_refuses_an_output_folder_inside_its_data(train_root, capsys):
    before = sorted(p.name for p in train_root.iterdir())
    assert main(["train", str(train_root), "--out", str(train_root / "run"), *TINY]) == 2
    assert "outside the input data" in _error_line(capsys)
    assert sorted(p.name for p in train_root.iterdir()) == before


def test_an_output_path_under_a_file_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["synth", "--out", str(blocker / "out"), "--patients", "1", "--slices", "4", "--size", "64"]) == 2
    assert _error_line(capsys).startswith(f"ctlens synth: {blocker}")


def test_a_missing_input_is_named_as_missing_not_as_the_output_folder(tmp_path, capsys):
    assert main(["pretrain", str(tmp_path / "nowhere"), "--out", str(tmp_path / "moco")]) == 2
    line = _error_line(capsys)
    assert "nowhere" in line and "outside the input data" not in line


@pytest.mark.parametrize("name", ["meta", "xla"])
def test_devices_other_than_cpu_cuda_mps_are_refused(name):
    with pytest.raises(CTLensError, match="unsupported device|unknown device"):
        pick_device(name)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda run: (run / "config.json").unlink(), "no config.json"),
        (lambda run: (run / "config.json").write_text("{not json"), "unreadable"),
        (lambda run: (run / "config.json").write_text("[1, 2]"), "not a settings object"),
        (lambda run: (run / "config.json").write_text(json.dumps({"colour": "red"})), "cannot use"),
        (lambda run: (run / "last.state.safetensors").write_bytes(b"\0" * 40), "damaged or does not fit"),
    ],
    ids=["missing", "not-json", "list", "unknown-key", "truncated-state"],
)
def test_resuming_a_damaged_run_is_one_line(run_dir, train_root, tmp_path, capsys, damage, message):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    damage(run)
    capsys.readouterr()
    assert main(["train", str(train_root), "--out", str(run), "--resume", "--epochs", "2"]) == 2
    assert message in _error_line(capsys)
