"""Table 1: folds, features (cached), SVM baselines and the evaluate command."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from core.cli.main import main
from core.evaluate import best_per_column, score_method
from core.features.lbp import lbp_histogram

TINY = ["--epochs", "1", "--input-size", "64", "--init", "scratch", "--batch-size", "8", "--device", "cpu"]


def test_lbp_histogram_has_59_normalised_bins_and_sees_texture():
    rng = np.random.default_rng(0)
    flat = np.full((32, 32), 100, np.uint8)
    noise = rng.integers(0, 256, (32, 32)).astype(np.uint8)
    h_flat, h_noise = lbp_histogram(flat), lbp_histogram(noise)
    assert h_flat.shape == (59,) and h_flat.sum() == pytest.approx(1) and h_noise.sum() == pytest.approx(1)
    assert h_flat.max() > 0.85  # one pattern everywhere but the border
    assert h_noise.argmax() == 58 and h_noise.max() < 0.5  # noise: non-uniform patterns lead, spread out
    with pytest.raises(ValueError):
        lbp_histogram(np.zeros((4, 4, 3), np.uint8))


def test_best_per_column_marks_the_highest():
    y = np.array([0, 0, 1, 1])
    good = score_method("good", y, np.array([0.1, 0.2, 0.8, 0.9]), 0.5, bootstrap=20)
    bad = score_method("bad", y, np.array([0.9, 0.2, 0.8, 0.1]), 0.5, bootstrap=20)
    twin = score_method("twin", y, np.array([0.1, 0.2, 0.8, 0.9]), 0.5, bootstrap=20)
    assert best_per_column([good, bad])["auc"] == "good" and best_per_column([bad, good])["auc"] == "good"
    assert best_per_column([good, twin])["acc"] == "good"  # ties go to the first
    assert good.confusion.tp == 2


def test_evaluate_command_with_baselines_and_feature_cache(train_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CTLENS_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    assert main(["train", str(train_root), "--out", str(run), *TINY]) == 0
    args = ["evaluate", str(train_root), "--model", str(run), "--baselines", "--folds", "2", "--bootstrap", "50",
            "--json", "--device", "cpu"]  # fmt: skip
    capsys.readouterr()
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    names = [m["name"] for m in report["methods"]]
    # the network is scored only on the validation part of its own training split
    assert names == ["alexnet (val)", "LBP + SVM (2-fold CV)", "deep features + SVM (2-fold CV)"]
    val_images = json.loads((run / "best.json").read_text())["training_data"]["val"][0]
    assert [m["images"] for m in report["methods"]] == [val_images, 32, 32] and val_images < 32
    for method in report["methods"]:
        assert set(method["metrics"]) == {"acc", "sensitivity", "specificity", "ppv", "npv", "f1", "auc"}
        low, high = method["ci"]["acc"]
        assert low <= method["metrics"]["acc"] <= high
    assert len(report["methods"][1]["folds"]) == 2 and set(report["best"]) <= set(report["methods"][0]["metrics"])
    cached = sorted((tmp_path / "cache" / "features").glob("*.npy"))
    assert len(cached) == 2 and {np.load(p).shape[1] for p in cached} == {59, 9216}
    stamps = [p.stat().st_mtime_ns for p in cached]
    table_csv = tmp_path / "out" / "table1.csv"
    assert main([*args, "--csv", str(table_csv)]) == 0  # the second run reads the cached features
    assert sorted((tmp_path / "cache" / "features").glob("*.npy")) == cached  # no new key
    assert [p.stat().st_mtime_ns for p in cached] == stamps
    assert json.loads(capsys.readouterr().out)["methods"][1]["metrics"] == report["methods"][1]["metrics"]
    rows = list(csv.DictReader(table_csv.open()))
    assert [r["method"] for r in rows] == names and rows[1]["folds"] == "2" and rows[0]["acc_fold_sd"] == ""
    for row, method in zip(rows, report["methods"], strict=True):
        assert float(row["auc"]) == pytest.approx(method["metrics"]["auc"], rel=1e-5)
        assert float(row["acc_ci_low"]) == pytest.approx(method["ci"]["acc"][0], rel=1e-5)
        assert int(row["tp"]) + int(row["fn"]) + int(row["tn"]) + int(row["fp"]) == method["images"]
    marked = {(k, r["method"]) for r in rows for k in r["best"].split(";") if k}
    assert marked == set(report["best"].items())
    assert main([*args, "--csv", str(train_root / "table1.csv")]) == 2  # never into the data
    assert "outside the input data" in capsys.readouterr().err and not (train_root / "table1.csv").exists()


def test_every_embedding_method_gives_seeded_coordinates_that_separate_blobs():
    from core.embed import METHODS, project
    from core.errors import CTLensError

    rng = np.random.default_rng(0)
    features = np.concatenate([rng.normal(0, 1, (30, 40)), rng.normal(4, 1, (30, 40))])
    labels = np.r_[np.zeros(30), np.ones(30)]
    for method in METHODS:
        for dims in (2, 3):
            coords = project(features, method, dims, seed=3)
            assert coords.shape == (60, dims) and coords.dtype == np.float32
            np.testing.assert_array_equal(coords, project(features, method, dims, seed=3))
            dist = np.linalg.norm(coords[:, None] - coords[None], axis=-1) + np.eye(60) * 1e9
            assert (labels[dist.argmin(1)] == labels).mean() >= 0.95, method  # neighbours share the class
    with pytest.raises(CTLensError):
        project(features, "umap", 2)
    with pytest.raises(CTLensError):
        project(features, "pca", 4)


def test_embed_command_writes_one_row_per_image_and_caches(train_root, tmp_path, monkeypatch, capsys):

    monkeypatch.setenv("CTLENS_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    assert main(["train", str(train_root), "--out", str(run), *TINY]) == 0
    out = tmp_path / "emb" / "lbp.csv"
    args = ["embed", str(train_root), "--model", str(run), "--features", "lbp", "--method", "kpca-rbf",
            "--dims", "3", "--out", str(out), "--device", "cpu"]  # fmt: skip
    assert main(args) == 0
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 32 and list(rows[0]) == ["id", "label", "prediction", "p_lesion", "x", "y", "z"]
    cache = sorted((tmp_path / "cache" / "features").glob("*.npy"))
    assert len(cache) == 2  # the features and their projection
    stamps = [p.stat().st_mtime_ns for p in cache]
    assert main(args) == 0 and [p.stat().st_mtime_ns for p in cache] == stamps
    assert sorted((tmp_path / "cache" / "features").glob("*.npy")) == cache  # nothing recomputed
    capsys.readouterr()
    assert main([*args[:-4], "--out", str(train_root / "inside.csv")]) == 2
    assert "outside the input data" in capsys.readouterr().err and not (train_root / "inside.csv").exists()


def test_deep_features_are_the_input_of_the_head_for_any_network(train_root):
    import torch

    from core.datasets import open_dataset
    from core.features.extract import deep_features
    from core.model.build import build_classifier
    from core.preprocess import Preprocessing, prepare_batch

    dataset = open_dataset(train_root)
    samples, prep = dataset.samples[:3], Preprocessing(input_size=64)
    torch.manual_seed(0)
    resnet = build_classifier("resnet18").eval()
    features = deep_features(resnet, prep, dataset, samples)
    assert features.shape == (3, 512) and isinstance(resnet.fc, torch.nn.Linear)  # the model keeps its head
    images = [dataset.load_image(s) for s in samples]
    with torch.no_grad():
        logits = resnet(prepare_batch([im.pixels for im in images], [im.unit for im in images], prep))
        np.testing.assert_allclose(resnet.fc(torch.from_numpy(features)).numpy(), logits.numpy(), atol=1e-5)
    assert deep_features(build_classifier("alexnet").eval(), prep, dataset, samples[:1]).shape == (1, 9216)
