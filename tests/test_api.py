"""latentprobe.probe: eval's report for an encoder held in memory, on arrays (bundled digits)."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import latentprobe
from latentprobe import rundir


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    x = (d.images / 16.0).astype("float32")[..., np.newaxis]
    return train_test_split(x, d.target, test_size=0.2, stratify=d.target, random_state=0)


def flatten(batch):
    return batch.reshape(len(batch), -1)


@pytest.mark.filterwarnings("ignore:Number of distinct clusters")  # k-means on a constant code
def test_identity_scores_as_the_pixels_and_a_constant_as_chance(digits, tmp_path, monkeypatch):
    x_train, x_test, y_train, y_test = digits
    monkeypatch.chdir(tmp_path)
    report = latentprobe.probe(
        flatten, x_train, y_train, x_test, y_test, budgets=[10, "all"], probes=["linear"]
    )
    flat = report["metrics"]["eval"]
    assert flat["linear@all"] == flat["pixels/linear@all"] > 0.9  # the same features, the same probe
    assert "random_encoder/linear@all" not in flat  # a plain callable cannot be re-initialised
    assert report["budgets"]["labels"] == {"10": 100, "all": len(y_train)}  # 10 per class, from train
    assert report["chance_accuracy"] == pytest.approx(0.1, abs=0.002)
    assert list(tmp_path.iterdir()) == []  # nothing written

    constant = latentprobe.probe(
        lambda b: np.ones((len(b), 2)), x_train, y_train, x_test, y_test, budgets=["all"], probes=["linear"]
    )
    assert constant["metrics"]["eval"]["linear@all"] <= 0.15


def test_a_keras_encoder_with_several_outputs_and_flat_input(digits, tmp_path):
    x_train, x_test, y_train, y_test = digits
    keras.utils.set_random_seed(0)
    x = keras.Input((64,))
    encoder = keras.Model(x, {"mu": keras.layers.Dense(4)(x), "log_var": keras.layers.Dense(4)(x)})
    report = latentprobe.probe(
        encoder,
        x_train,
        y_train,
        x_test,
        y_test,
        output="mu",
        budgets=[5],
        probes=["knn"],
        out=tmp_path / "out",
    )
    assert report["encoder"] == {"latent": 4, "output": "mu", "fed_flattened": True}
    assert {r["features"] for r in report["probes"]} == {"encoder", "random_encoder", "pca", "pixels"}
    assert encoder.trainable  # the caller's model is left as it was
    written = json.loads((tmp_path / "out" / rundir.EVAL).read_text())
    assert written["metrics"]["eval"] == pytest.approx(report["metrics"]["eval"])
    assert (tmp_path / "out" / "plots" / "label_budget.png").is_file()
    with pytest.raises(ValueError, match="several outputs"):
        latentprobe.probe(encoder, x_train, y_train, x_test, y_test, budgets=["all"], probes=["linear"])


def test_labels_of_any_type_and_bad_arguments(digits):
    x_train, x_test, y_train, y_test = digits
    names = np.array([f"digit {k}" for k in range(10)])
    report = latentprobe.probe(
        flatten,
        x_train,
        names[y_train],
        x_test,
        names[y_test],
        budgets=["all"],
        probes=["knn"],
        controls=False,
    )
    assert report["class_names"][:2] == ["digit 0", "digit 1"] and report["metrics"]["eval"]["knn@all"] > 0.9
    with pytest.raises(ValueError, match="differ in length"):
        latentprobe.probe(flatten, x_train, y_train[:-1], x_test, y_test)
    with pytest.raises(ValueError, match="unknown probe 'svm'"):
        latentprobe.probe(flatten, x_train, y_train, x_test, y_test, probes=["svm"])
    with pytest.raises(ValueError, match=r"not \(batch, features\)"):
        latentprobe.probe(lambda b: b.sum(axis=(1, 2, 3)), x_train, y_train, x_test, y_test, controls=False)


def test_fixed_probes_and_a_cache_folder(digits, tmp_path):
    """tune=False is the fixed C = 1; cache_dir keeps the pixels' and PCA's results for a later call."""
    x_train, x_test, y_train, y_test = digits
    arguments = dict(budgets=[10], probes=["linear"])
    fixed = latentprobe.probe(flatten, x_train, y_train, x_test, y_test, tune=False, **arguments)
    assert {r["chosen"]["C"] for r in fixed["probes"]} == {1.0} and fixed["options"]["tune"] is False
    tuned = latentprobe.probe(flatten, x_train, y_train, x_test, y_test, cache_dir=tmp_path, **arguments)
    assert all(r["tuning"]["folds"] == 5 for r in tuned["probes"])
    assert len(list(tmp_path.glob("*.npz"))) == 4  # pca and pixels: probes, clustering
    assert tuned["timing"]["probe_fit_seconds"]["pixels/linear"] > 0
