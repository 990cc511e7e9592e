"""Self-supervised pretraining (MoCo v2), fine-tuning from its backbone, and the linear probe.

Tiny runs on CPU: 32 synthetic DICOM slices at 64 px, batches of 16.
"""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from core.cli.main import main
from core.datasets import open_dataset
from core.errors import Cancelled, CTLensError
from core.model.build import build_classifier, initialise
from core.model.card import ModelCard
from core.model.checkpoint import load_checkpoint, read_card, save_weights
from core.preprocess import Preprocessing
from core.pretrain.augment import ViewAugment, gaussian_blur, random_view
from core.pretrain.config import PretrainConfig, PretrainRecord
from core.pretrain.loop import pretrain
from core.pretrain.moco import MoCo, Trunk, info_nce
from core.pretrain.probe import linear_probe
from core.pretrain.unlabeled import read_unlabeled
from core.train.config import TrainConfig
from core.train.history import read_records
from core.train.loop import train

TINY = PretrainConfig(epochs=2, batch_size=16, input_size=64, queue_size=64, device="cpu", seed=5)


@pytest.fixture(scope="module")
def full_run(train_root, tmp_path_factory):
    """A finished two-epoch pretraining run on the synthetic study."""
    run = tmp_path_factory.mktemp("pretrain") / "run"
    return pretrain([train_root], run, TINY)


@pytest.fixture(scope="module")
def blob_images(tmp_path_factory) -> Path:
    """Class folders of 64-px PNGs: noise ("normal") and noise with a bright disc ("covid")."""
    root = tmp_path_factory.mktemp("blobs")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :64]
    for cls in ("covid", "normal"):
        (root / cls).mkdir()
        for i in range(15):
            image = rng.normal(80, 20, (64, 64))
            if cls == "covid":
                cy, cx = rng.integers(16, 48, 2)
                image[(yy - cy) ** 2 + (xx - cx) ** 2 < 81] += 120
            Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(root / cls / f"{i:02d}.png")
    return root


def test_info_nce_logits_by_hand():
    q = torch.tensor([[1.0, 0.0]])
    k = torch.tensor([[0.6, 0.8]])
    queue = torch.tensor([[0.0, -1.0], [1.0, 0.0]])  # two negative keys as columns: (0, 1) and (-1, 0)
    logits = info_nce(q, k, queue, temperature=0.5)
    assert logits[0].tolist() == pytest.approx([1.2, 0.0, -2.0])
    logits = info_nce(q, k, queue, temperature=0.5, excluded=torch.tensor([[True, False]]))
    assert logits[0].tolist() == pytest.approx([1.2, float("-inf"), -2.0])


def test_a_querys_own_volume_is_left_out_of_its_negatives():
    torch.manual_seed(0)
    moco = _moco("alexnet", 64)
    moco.queue_volume.copy_(torch.arange(32) % 4)
    reference = copy.deepcopy(moco)
    x, volumes = torch.rand(8, 3, 64, 64), torch.tensor([0, 0, 1, 1, 2, 2, 7, 7])
    loss, _ = moco(x, x, volumes=volumes)
    with torch.no_grad():  # by hand on the copy: same-volume columns masked, then the queue takes the keys
        q = torch.nn.functional.normalize(reference.query(x), dim=1)
        reference.update_key_encoder()
        k = torch.nn.functional.normalize(reference.key(x), dim=1)
        excluded = (torch.arange(32) % 4)[None, :] == volumes[:, None]
        assert int(excluded.sum()) == 6 * 8  # volume 7 has no key in the queue
        logits = info_nce(q, k, reference.queue, 0.2, excluded)
        target = torch.zeros(8, dtype=torch.long)
        expected = torch.nn.functional.cross_entropy(logits, target)
        unmasked = torch.nn.functional.cross_entropy(info_nce(q, k, reference.queue, 0.2), target)
    assert loss.item() == pytest.approx(float(expected), rel=1e-5) and loss.item() < float(unmasked)
    assert moco.queue_volume[:8].tolist() == volumes.tolist()
    assert torch.equal(moco.queue_volume[8:], reference.queue_volume[8:])
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in moco.query.parameters() if p.grad is not None)
    moco(x, x)  # without volumes the keys join the queue as belonging to none
    assert moco.queue_volume[8:16].tolist() == [-1] * 8


def _moco(arch: str, size: int) -> MoCo:
    return MoCo(Trunk(build_classifier(arch)), input_size=size, hidden_dim=16, proj_dim=8, queue_size=32,
                temperature=0.2, key_momentum=0.99, bn_groups=4)  # fmt: skip


def test_shuffling_bn_encodes_queries_and_shuffled_keys_in_sub_batches():
    torch.manual_seed(0)
    assert _moco("alexnet", 64).bn_groups == 1  # no batch norm: one batch
    moco = _moco("resnet18", 32)
    assert moco.bn_groups == 4
    assert moco.trunk.net.bn1.num_batches_tracked == 0  # sizing the head ran nothing through batch norm
    seen: dict[str, list[list[float]]] = {"query": [], "key": []}
    for name, images in seen.items():
        getattr(moco, name).register_forward_pre_hook(lambda _m, args, images=images: images.append(
            args[0][:, 0, 0, 0].tolist()))  # fmt: skip
    x = torch.arange(16.0)[:, None, None, None].expand(16, 3, 32, 32).contiguous()  # image i is all i
    moco.train()
    loss, _ = moco(x, x, torch.Generator().manual_seed(1))
    assert torch.isfinite(loss)
    assert seen["query"] == [[4.0 * g + i for i in range(4)] for g in range(4)]
    assert len(seen["key"]) == 4 and sorted(sum(seen["key"], [])) == [float(i) for i in range(16)]
    assert not {tuple(sorted(k)) for k in seen["key"]} & {tuple(q) for q in seen["query"]}
    moco.eval()  # running statistics: each output depends on its own image only, so the keys came back in order
    order = torch.randperm(16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(moco._encode(moco.key, x, order), moco.key(x), atol=1e-5, rtol=1e-4)


def test_runs_from_before_shuffling_bn_resume_without_it():
    stored = PretrainConfig(arch="resnet18").to_dict()
    assert PretrainConfig.from_dict(stored).bn_groups == 4
    del stored["bn_groups"]
    assert PretrainConfig.from_dict(stored).bn_groups == 1


def test_views_are_seeded_in_range_and_differ():
    images = torch.rand(4, 1, 32, 32)
    a = random_view(images, ViewAugment(), torch.Generator().manual_seed(1))
    b = random_view(images, ViewAugment(), torch.Generator().manual_seed(1))
    c = random_view(images, ViewAugment(), torch.Generator().manual_seed(2))
    assert a.shape == images.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    flat = torch.full((2, 1, 16, 16), 0.3)
    assert torch.allclose(gaussian_blur(flat, torch.tensor([0.5, 2.0])), flat, atol=1e-6)


def test_unlabeled_images_come_from_image_files_and_dicom(train_root, blob_images, tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (tmp_path / "notes.txt").write_text("no pixels here")
    data = read_unlabeled([blob_images, train_root, tmp_path], Preprocessing(input_size=32))
    assert data.images.shape == (30 + 32, 1, 32, 32) and data.images.dtype == torch.uint8
    assert (data.image_files, data.volume_slices) == (30, 32)
    assert any("broken.png" in w for w in data.warnings)
    with pytest.raises(CTLensError, match="nothing to pretrain on"):
        read_unlabeled([tmp_path / "notes.txt"], Preprocessing(input_size=32))
    assert data.volumes.tolist() == list(range(30)) + [30 + i // 8 for i in range(32)]  # 4 patients' series


def test_image_files_named_by_volume_are_grouped_and_thinned(tmp_path):
    names = [f"scan_{n}.png" for n in range(1, 11)] + ["other-3.png", "other-4.png", "lonely.png", "sub/scan_1.png",
                                                       "7.png", "8.png"]  # fmt: skip
    for value, name in enumerate(names):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        Image.fromarray(np.full((8, 8), 10 * value, np.uint8)).save(tmp_path / name)
    prep = Preprocessing(input_size=8)
    data = read_unlabeled([tmp_path], prep, slice_step=2, group_by_name=True)
    kept = [names[v // 10] for v in data.images[:, 0, 0, 0].tolist()]
    by_volume = [sorted(n for n, v in zip(kept, data.volumes.tolist(), strict=True) if v == i) for i in range(6)]
    assert sorted(by_volume) == sorted([["7.png"], ["8.png"], ["lonely.png"], ["other-3.png"], ["sub/scan_1.png"],
                                        [f"scan_{n}.png" for n in (1, 3, 5, 7, 9)]])  # fmt: skip
    assert len(kept) == 10 and data.image_files == 10
    plain = read_unlabeled([tmp_path], prep, slice_step=2)  # without names, every image file is its own volume
    assert len(plain.images) == 16 and plain.volumes.tolist() == list(range(16))
    out = tmp_path.parent / f"{tmp_path.name}-run"
    args = ["pretrain", str(tmp_path), "--out", str(out), "--group-by-name", "--slice-step", "2", "--epochs", "1",
            "--batch-size", "4", "--input-size", "64", "--queue", "4", "--device", "cpu"]  # fmt: skip
    assert main(args) == 0
    training = read_card(out / "backbone.safetensors").training_data
    assert (training["images"], training["volumes"], training["group_by_name"]) == (10, 6, True)
    assert training["same_volume_negatives_excluded"]


def test_pretraining_writes_backbone_card_and_history(full_run):
    records = read_records(full_run.run_dir / "history.jsonl", PretrainRecord.from_json)
    assert [r.epoch for r in records] == [1, 2] and all(np.isfinite(r.loss) for r in records)
    card = read_card(full_run.backbone)
    assert card.kind == "backbone" and card.arch == "alexnet" and card.init == "scratch + LSUV"
    assert card.training_data["method"] == "MoCo v2" and card.training_data["images"] == 32
    assert card.training_data["volumes"] == 4 and card.training_data["same_volume_negatives_excluded"]
    assert card.preprocessing.input_size == 64 and card.metrics["epoch"] == 2
    convs = {f"features.{i}.{p}" for i in (0, 3, 6, 8, 10) for p in ("weight", "bias")}
    assert set(load_file(str(full_run.backbone))) == convs  # the trunk only, named as in the classifier
    assert json.loads((full_run.run_dir / "config.json").read_text())["epochs"] == 2
    with pytest.raises(CTLensError, match="without a classification head"):
        load_checkpoint(full_run.backbone)
    with pytest.raises(CTLensError, match="already holds a run"):
        pretrain([], full_run.run_dir, TINY)


def test_train_init_loads_the_backbone_and_names_it(full_run, train_root, tmp_path):
    backbone = load_file(str(full_run.backbone))
    model = build_classifier("alexnet", 2)
    desc = initialise(model, "alexnet", str(full_run.run_dir))  # a run folder stands for its backbone
    assert str(full_run.backbone.resolve()) in desc and desc.startswith("pretrained backbone")
    assert all(torch.equal(model.state_dict()[k], v) for k, v in backbone.items())
    cfg = TrainConfig(epochs=1, batch_size=8, input_size=64, device="cpu", init=str(full_run.backbone))
    result = train(open_dataset(train_root), tmp_path / "ft", cfg)
    _, card = load_checkpoint(result.run_dir / "best.safetensors")
    assert card.kind == "classifier" and str(full_run.backbone.resolve()) in card.init


def test_cli_head_only_epochs_keep_the_backbone_as_pretrained(full_run, train_root, tmp_path):
    args = ["train", str(train_root), "--out", str(tmp_path / "lp"), "--init", str(full_run.run_dir), "--epochs", "1",
            "--freeze-epochs", "1", "--batch-size", "8", "--input-size", "64", "--device", "cpu"]  # fmt: skip
    assert main(args) == 0
    model, _ = load_checkpoint(tmp_path / "lp" / "last.safetensors")
    backbone = load_file(str(full_run.backbone))
    assert all(torch.equal(model.state_dict()[k], v) for k, v in backbone.items())
    assert json.loads((tmp_path / "lp" / "config.json").read_text())["freeze_epochs"] == 1


def test_corrupt_or_mismatching_init_files_are_clear_errors(full_run, tmp_path):
    model = build_classifier("alexnet", 2)
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(full_run.backbone.read_bytes()[:5000])
    tensors = load_file(str(full_run.backbone))
    save_weights(tmp_path / "resnet.safetensors", tensors, ModelCard("resnet18", (), Preprocessing(), kind="backbone"))
    wrong = {**tensors, "features.0.weight": torch.zeros(64, 3, 5, 5)}
    save_weights(tmp_path / "shape.safetensors", wrong, ModelCard("alexnet", (), Preprocessing(), kind="backbone"))
    cases = {"junk": "not a safetensors", "truncated": "not a safetensors", "resnet": "resnet18, not a alexnet",
             "shape": "do not fit"}  # fmt: skip
    for name, message in cases.items():
        with pytest.raises(CTLensError, match=message):
            initialise(model, "alexnet", str(tmp_path / f"{name}.safetensors"))


def test_linear_probe_separates_an_easy_dataset(blob_images, full_run):
    dataset = open_dataset(blob_images)
    deep = linear_probe(dataset, "scratch", input_size=64, folds=3, device="cpu")
    assert deep.backbone == "scratch" and deep.dims == 9216
    assert deep.protocol == "3-fold cross-validation by image"
    assert deep.test_images == 30 and deep.metrics["acc"] >= 0.8 and deep.metrics["auc"] >= 0.8
    pooled = linear_probe(dataset, str(full_run.run_dir), features="pooled", folds=3, device="cpu")
    assert pooled.dims == 256 and pooled.backbone.startswith("pretrained backbone")
    assert 0 <= pooled.metrics["acc"] <= 1 and 0 <= pooled.metrics["auc"] <= 1


def test_cancel_then_cli_resume_equals_the_uninterrupted_run(full_run, train_root, tmp_path, capsys):
    run, finished = tmp_path / "cut", []
    with pytest.raises(Cancelled, match="epoch 2"):  # the user cancels once epoch 1 is saved
        pretrain([train_root], run, TINY, cancel=lambda: bool(finished), on_epoch=lambda r: finished.append(r.epoch))
    after_one = load_file(str(run / "backbone.safetensors"))
    # DATA may be left out when resuming (config.json has it), and --epochs: the run's own plan (2), whose
    # cosine schedule the resumed epochs follow (the CLI's default of 20 would change the learning rate)
    assert main(["pretrain", "--out", str(run), "--resume", "--device", "cpu"]) == 0
    assert "fine-tune it: ctlens train DATA --init" in capsys.readouterr().out
    records = read_records(run / "history.jsonl", PretrainRecord.from_json)
    assert [r.epoch for r in records] == [1, 2]
    assert [r.loss for r in records] == pytest.approx([r.loss for r in full_run.records], rel=1e-5)
    final, reference = load_file(str(run / "backbone.safetensors")), load_file(str(full_run.backbone))
    assert all(torch.allclose(final[k], reference[k], atol=1e-6) for k in reference)
    assert not torch.equal(final["features.0.weight"], after_one["features.0.weight"])  # epoch 2 trained it
    assert main(["pretrain", "--out", str(run), "--resume", "--epochs", "3", "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["pretrain", "--out", str(run), "--resume", "--device", "cpu"]) == 0  # the extended plan is kept
    assert "already 3 epochs" in capsys.readouterr().out
    assert [r.epoch for r in read_records(run / "history.jsonl", PretrainRecord.from_json)] == [1, 2, 3]
    assert main(["pretrain", "--out", str(run), "--resume", "--epochs", "4", "--queue", "7", "--lr", "0.01"]) == 2
    assert "which --queue would change" in capsys.readouterr().err  # lr 0.01 is the run's own
    assert [r.epoch for r in read_records(run / "history.jsonl", PretrainRecord.from_json)] == [1, 2, 3]
    with pytest.raises(CTLensError, match="nothing to resume"):
        pretrain([train_root], tmp_path / "none", TINY, resume=True)


def test_runs_from_before_volume_aware_negatives_resume_as_they_ran(full_run, train_root, tmp_path):
    run = tmp_path / "old"
    shutil.copytree(full_run.run_dir, run)
    config = json.loads((run / "config.json").read_text())
    del config["exclude_same_volume"], config["group_by_name"]
    (run / "config.json").write_text(json.dumps(config))
    state = load_file(str(run / "state.safetensors"))
    del state["moco.queue_volume"]
    save_file(state, str(run / "state.safetensors"), metadata={"epoch": "2", "init": "scratch + LSUV"})
    result = pretrain([], run, replace(TINY, epochs=3), resume=True)
    assert [r.epoch for r in result.records] == [1, 2, 3]
    assert not read_card(result.backbone).training_data["same_volume_negatives_excluded"]


def test_cli_probe_diagnose_and_output_folder(full_run, train_root, blob_images, capsys):
    run = str(full_run.run_dir)
    assert main(["probe", str(blob_images), "--backbone", run, "--folds", "3", "--json", "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["dims"] == 9216 and 0 <= result["metrics"]["acc"] <= 1 and result["test_images"] == 30
    assert main(["diagnose", str(train_root / "SYN001"), "--model", str(full_run.backbone)]) == 2
    assert "fine-tune it first" in capsys.readouterr().err
    assert main(["pretrain", str(train_root), "--out", str(train_root / "inside"), "--epochs", "1"]) == 2
    assert "outside the input data" in capsys.readouterr().err


def test_one_volume_keeps_every_key_as_a_negative(train_root, tmp_path):
    """Leaving its own volume out would leave a single series' queries no negatives at all."""
    result = pretrain([train_root / "SYN001"], tmp_path / "one", replace(TINY, epochs=1))
    training = read_card(result.backbone).training_data
    assert training["volumes"] == 1 and not training["same_volume_negatives_excluded"]
    assert 0 < result.records[0].loss < 10  # a real contrast, not a row of -inf negatives (loss 0)
