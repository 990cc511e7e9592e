"""Output places and run folders that cannot be used: one line from the CLI, nothing written into the data."""

from __future__ import annotations

import json
import shutil

import pytest

from core.cli.main import main
from core.errors import CTLensError
from core.model.device import pick_device

TINY = ["--epochs", "1", "--input-size", "64", "--init", "scratch", "--batch-size", "8", "--device", "cpu"]


@pytest.fixture(scope="module")
def run_dir(train_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("bad-runs") / "run"
    assert main(["train", str(train_root), "--out", str(out), *TINY]) == 0
    return out


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
