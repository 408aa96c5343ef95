"""train.run on tiny digits: the run directory's files, summary.json's schema, sweeps, no overwrites."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import yaml

from latentprobe import config, data, rundir, train

from .conftest import tiny_config, write_config


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train")
    raw = tiny_config(tmp, data={"labels": 100})
    cfg = config.load(write_config(tmp, raw))
    summary = train.run(cfg)[0]
    return cfg, summary, Path(summary["run_dir"])


def test_run_dir_is_named_after_kind_latent_and_seed(run):
    cfg, summary, run_dir = run
    assert run_dir.name == "ae-z4-s0"
    assert run_dir.parent.name == "tiny"


def test_run_dir_holds_every_file(run):
    _, _, run_dir = run
    for name in (
        "config.yaml",
        "summary.json",
        "encoder.keras",
        "decoder.keras",
        "probe.keras",
        "labeled_subset.npz",
    ):
        assert (run_dir / name).is_file(), name
    assert any((run_dir / "tb").glob("events.out.tfevents.*"))


def test_summary_has_the_stable_schema(run):
    cfg, summary, run_dir = run
    on_disk = rundir.read_json(run_dir / "summary.json")
    assert on_disk["schema_version"] == rundir.SUMMARY_SCHEMA_VERSION
    assert on_disk["status"] == "completed"
    test = on_disk["metrics"]["test"]
    assert set(test) >= {"reconstruction_loss", "probe_accuracy", "probe_loss", "chance_accuracy"}
    assert set(on_disk["metrics"]["val"]) >= {"reconstruction_loss", "probe_accuracy"}
    assert test["chance_accuracy"] == pytest.approx(0.1, abs=1e-9)  # balanced 100 labels, 10 classes
    assert 0 <= test["probe_accuracy"] <= 1
    assert on_disk["history"]["epoch"] == [1, 2]
    # Before training, the probe is an untrained head on an untrained encoder: about chance (10 classes).
    assert 0.0 <= on_disk["initial"]["val"]["probe_accuracy"] <= 0.3
    assert len(on_disk["history"]["val/probe_accuracy"]) == 2
    assert on_disk["timing"]["train_seconds"] > 0
    assert on_disk["strategy"]["name"] == cfg.probe.strategy
    assert "labeled subset" in on_disk["strategy"]["probe_batches"]  # 100 labels: not the AE's batch
    assert on_disk["timing"]["train_samples_per_second"] > 0
    env = on_disk["environment"]
    assert env["tensorflow"] and env["keras"] and env["python"] and env["device"] == "cpu"
    d = on_disk["data"]
    assert d["name"] == "digits" and len(d["sha256"]) == 64 and d["labeled"] == 100
    assert d["sizes"]["test"] == 360 and d["sizes"]["train"] + d["sizes"]["val"] == 1437
    assert d["class_names"] == ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]


def test_config_yaml_is_the_resolved_config(run):
    cfg, _, run_dir = run
    written = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert written["train"]["optimizer"] == "adam"  # a default, filled in
    assert config.load(run_dir / "config.yaml") == cfg


def test_labeled_subset_is_balanced_saved_and_from_train(run):
    cfg, _, run_dir = run
    saved = np.load(run_dir / "labeled_subset.npz")
    assert len(saved["train_index"]) == 100
    assert np.bincount(saved["label"]).tolist() == [10] * 10
    # Indices point into the dataset's own train split, and agree with its labels there.
    x_train, y_train, _, _ = data.read_arrays("digits", None)
    np.testing.assert_array_equal(y_train[saved["train_index"]], saved["label"])
    splits = data.load(cfg.data, cfg.seed)
    assert not set(saved["train_index"]) & set(splits.val_index.tolist())


def test_saved_models_load_with_plain_keras(run):
    _, summary, run_dir = run
    encoder = keras.models.load_model(run_dir / "encoder.keras")
    decoder = keras.models.load_model(run_dir / "decoder.keras")
    probe = keras.models.load_model(run_dir / "probe.keras")
    x = np.zeros((3, 8, 8, 1), "float32")
    z = encoder.predict_on_batch(x)["z"]
    assert z.shape == (3, 4)
    assert decoder.predict_on_batch(z).shape == (3, 8, 8, 1)
    np.testing.assert_allclose(probe.predict_on_batch(z).sum(axis=1), 1.0, rtol=1e-5)


def test_same_seed_gives_identical_metrics(tmp_path):
    raw = tiny_config(tmp_path)
    cfg = config.load(write_config(tmp_path, raw))
    first, second = train.run(cfg)[0], train.run(cfg)[0]
    assert first["run_dir"] != second["run_dir"]  # never overwritten
    assert Path(second["run_dir"]).name == "ae-z4-s0-1"
    assert first["metrics"] == second["metrics"]


def test_latent_list_is_a_sweep_with_sweep_json(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative output.dir, as in the shipped configs
    raw = tiny_config(tmp_path, model={"latent": [2, 3]}, train={"epochs": 1}, output={"dir": "runs"})
    summaries = train.run(config.load(write_config(tmp_path, raw)))
    assert [Path(s["run_dir"]).name for s in summaries] == ["ae-z2-s0", "ae-z3-s0"]
    sweep = rundir.read_json(tmp_path / "runs" / "tiny" / "sweep.json")
    assert sweep["runs"] == ["ae-z2-s0", "ae-z3-s0"]
    assert rundir.find_runs([tmp_path / "runs" / "tiny"]) == [Path(s["run_dir"]) for s in summaries]


def test_frozen_run_history_has_both_phases(tmp_path):
    raw = tiny_config(tmp_path, probe={"strategy": "frozen", "epochs": 2, "every": "step"})
    raw["probe"].pop("every")
    summary = train.run(config.load(write_config(tmp_path, raw)))[0]
    history = summary["history"]
    assert history["phase"] == ["autoencoder", "autoencoder", "probe", "probe"]
    assert history["train/probe_accuracy"][:2] == [None, None]
    assert history["train/reconstruction_loss"][2:] == [None, None]
    assert history["val/probe_accuracy"][:2] == [None, None]
