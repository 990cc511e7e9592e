"""Out-of-range command-line options: one line on stderr, exit code 2, and no output folder."""

from __future__ import annotations

import pytest

from core.cli.main import main

CASES = [
    ("pretrain", ["--batch-size", "0"], "batch size must be at least 1, got 0"),
    ("pretrain", ["--queue", "-5"], "queue size must be at least 1, got -5"),
    ("pretrain", ["--epochs", "0"], "epochs must be at least 1, got 0"),
    ("pretrain", ["--bn-groups", "0"], "bn groups must be at least 1, got 0"),
    ("pretrain", ["--slice-step", "-1"], "slice step must be at least 1, got -1"),
    ("pretrain", ["--lr", "0"], "learning rate must be positive and finite, got 0.0"),
    ("pretrain", ["--temperature", "0"], "temperature must be positive and finite, got 0.0"),
    ("pretrain", ["--seed", "-1"], "seed must lie in 0-4294967295, got -1"),
    ("train", ["--momentum", "-1"], "momentum must lie in [0, 1), got -1.0"),
    ("train", ["--weight-decay", "-1"], "weight decay must be finite and not negative, got -1.0"),
    ("train", ["--lr", "nan"], "learning rate must be positive and finite, got nan"),
    ("train", ["--seed", "-1"], "seed must lie in 0-4294967295, got -1"),
    ("explain", ["--batch-size", "-2"], "--batch-size must be at least 1, got -2"),
    ("explain", ["--threshold", "1.5"], "--threshold must lie in [0, 1], got 1.5"),
    ("explain", ["--threshold", "nan"], "--threshold must lie in [0, 1], got nan"),
    ("explain", ["--top", "-3"], "--top must not be negative, got -3"),
    ("evaluate", ["--bootstrap", "0"], "--bootstrap must be at least 1 resample, got 0"),
    ("probe", ["--input-size", "0"], "--input-size must be at least 1, got 0"),
    ("probe", ["--seed", "-1"], "--seed must lie in 0-4294967295, got -1"),
]
MODEL = {"pretrain": [], "train": [], "explain": ["--model", "m.safetensors"],
         "evaluate": ["--model", "m.safetensors"], "probe": ["--backbone", "scratch"]}  # fmt: skip
OUT = {"pretrain": True, "train": True, "explain": True, "evaluate": False, "probe": False}


@pytest.mark.parametrize(("command", "options", "message"), CASES)
def test_bad_options_are_one_line_errors_before_any_output(command, options, message, train_root, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [command, str(train_root), *MODEL[command], *(["--out", str(out)] if OUT[command] else []), *options]
    assert main([*argv, "--device", "cpu"]) == 2
    assert capsys.readouterr().err == f"ctlens {command}: {message}\n"
    assert not out.exists()
