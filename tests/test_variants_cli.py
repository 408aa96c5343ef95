"""Every variant end to end through the CLI on tiny digits: train -> eval -> compare.

The label-using kinds (the semi-supervised AAE, the supervised baseline) get their labeled batches
through the strategy, report ``classifier_accuracy``, and ``eval`` rebuilds them from encoder.keras.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from latentprobe import rundir
from latentprobe.cli import app

from .conftest import tiny_config, write_config

# Five tiny trainings: about a minute on 2 idle cores, more when shared. The default suite covers the
# same paths without the CLI (tests/test_variants.py, tests/test_models.py).
pytestmark = pytest.mark.slow

#: (kind, its settings block, probe strategy)
CASES = {
    "aae-semi": (
        "aae",
        {"semi_supervised": True, "discriminator_hidden": [16], "supervised_learning_rate": 0.01},
        "alternating",
    ),
    "supervised": ("supervised", None, "alternating"),
    "vae": ("vae", {"beta": 1.0}, "frozen"),
    "sparse": ("sparse", {"rho": 0.1, "beta": 1.0, "weight_decay": 0.0001}, "frozen"),
    "dae-conv": ("dae", {"noise": "mask", "fraction": 0.2}, "alternating"),
}


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("variants")
    out = {}
    for name, (kind, settings, strategy) in CASES.items():
        model = {"kind": kind, "latent": 10 if kind == "supervised" else 3}
        if settings is not None:
            model[kind] = settings
        if name.endswith("-conv"):
            model.update(network="conv", hidden=[8, 16])
        probe = {"strategy": strategy, "epochs": 1} if strategy == "frozen" else {}
        raw = tiny_config(tmp, name=name, data={"labels": 100}, model=model, probe=probe, train={"epochs": 1})
        if strategy == "frozen":
            raw["probe"].pop("every")
        result = invoke("train", str(write_config(tmp, raw, f"{name}.yaml")))
        assert result.exit_code == 0, result.output
        out[name] = Path(result.stdout.split()[0])
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_every_variant_trains_and_eval_reproduces_its_summary(runs, name):
    run_dir = runs[name]
    summary = rundir.read_summary(run_dir)
    assert summary["status"] == "completed"
    result = invoke("eval", str(run_dir))
    assert result.exit_code == 0, result.output
    report = json.loads((run_dir / "eval.json").read_text())
    assert report["summary_difference"]
    assert max(report["summary_difference"].values()) < 1e-4
    assert set(report["metrics"]["test"]) == set(summary["metrics"]["test"])


def test_label_using_kinds_report_their_classifier_and_the_others_do_not(runs):
    for name in ("aae-semi", "supervised"):
        test = rundir.read_summary(runs[name])["metrics"]["test"]
        assert 0.2 < test["classifier_accuracy"] <= 1, name  # well above chance after one epoch
        assert "probe_accuracy" in test
    assert "reconstruction_loss" not in rundir.read_summary(runs["supervised"])["metrics"]["test"]
    assert "classifier_accuracy" not in rundir.read_summary(runs["vae"])["metrics"]["test"]


def test_variant_terms_are_in_history_and_tensorboard(runs):
    history = rundir.read_summary(runs["aae-semi"])["history"]
    for term in ("gauss_discriminator_accuracy", "cat_discriminator_accuracy", "classification_loss"):
        assert history[f"train/{term}"][0] is not None, term
    assert history["val/classifier_accuracy"][0] is not None
    vae = rundir.read_summary(runs["vae"])
    assert {"kl_loss", "elbo_loss"} <= set(vae["metrics"]["test"])
    sparse = rundir.read_summary(runs["sparse"])["metrics"]["test"]
    assert 0 < sparse["mean_activation"] < 1 and 0 <= sparse["near_zero_share"] <= 1
    assert any((runs["aae-semi"] / "tb").glob("events.out.tfevents.*"))


def test_compare_sets_the_aae_against_the_supervised_baseline(runs):
    result = invoke("compare", str(runs["supervised"]), str(runs["aae-semi"]), "--format", "json")
    assert result.exit_code == 0, result.output
    assert "test/classifier_accuracy" in result.output
    assert "test/reconstruction_loss" in result.output
