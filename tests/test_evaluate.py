"""eval of a tiny real run: every key of eval.json, every plot, TensorBoard images and the projector."""

from __future__ import annotations

import json
import random
import shutil
import time
import urllib.error
from pathlib import Path

import keras
import numpy as np
import pytest
from google.protobuf import text_format
from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

from latentprobe import config, evaluation, rundir, train
from latentprobe import data as data_mod
from latentprobe.errors import RunDirError, UserError
from latentprobe.evaluation import controls
from tests.conftest import tiny_config, write_config
from tests.test_tensorboard import accumulator, get_json, tensorboard_server

PLOTS = ("latent.png", "reconstructions.png", "manifold.png", "label_budget.png", "confusion.png")
REPORT_KEYS = {
    "schema_version",
    "run_dir",
    "options",
    "metrics",
    "summary_difference",
    "chance_accuracy",
    "probes",
    "clustering",
    "main_probe",
    "class_names",
    "per_class_accuracy",
    "confusion_matrix",
    "online_offline",
    "latent",
    "budgets",
    "data",
    "plots",
    "projector",
    "timing",
}


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """A 2-d latent digits run (so the manifold and area share apply), evaluated with default options."""
    tmp = tmp_path_factory.mktemp("eval")
    # No XLA: compiling the epoch loop would take most of this fixture's time on 2 cores.
    raw = tiny_config(tmp, model={"latent": 2}, train={"epochs": 3, "jit_compile": False})
    cfg = config.load(write_config(tmp, raw))
    run_dir = Path(train.run(cfg)[0]["run_dir"])
    summary_bytes = (run_dir / "summary.json").read_bytes()
    rng_before = global_rng_state()
    report = evaluation.evaluate(run_dir)
    rng_after = global_rng_state()
    return {
        "run_dir": run_dir,
        "report": report,
        "cfg": cfg,
        "summary_bytes": summary_bytes,
        "rng_before": rng_before,
        "rng_after": rng_after,
    }


def test_eval_json_has_every_key_and_reproduces_the_summary(evaluated):
    run_dir = evaluated["run_dir"]
    on_disk = json.loads((run_dir / "eval.json").read_text())
    assert set(on_disk) == REPORT_KEYS
    assert on_disk["schema_version"] == rundir.EVAL_SCHEMA_VERSION
    assert max(on_disk["summary_difference"].values()) < 1e-6
    assert (run_dir / "summary.json").read_bytes() == evaluated["summary_bytes"]  # never edited


def test_every_probe_budget_and_control_is_reported(evaluated):
    report = evaluated["report"]
    cells = {(r["features"], r["probe"], r["budget"]) for r in report["probes"]}
    assert cells == {
        (f, p, b) for f in evaluation.FEATURES for p in ("linear", "mlp", "knn") for b in ("10", "100", "all")
    }
    labels = report["budgets"]["labels"]
    assert labels["10"] == 100 and labels["100"] == 1000 and labels["all"] == 1293
    for row in report["probes"]:
        assert 0.0 <= row["accuracy"] <= 1.0
    # The PCA control on digits is far above chance: a broken pipeline (labels shuffled) would not be.
    pca_linear = next(
        r
        for r in report["probes"]
        if r["features"] == "pca" and r["probe"] == "linear" and r["budget"] == "all"
    )
    assert pca_linear["accuracy"] > 0.4
    assert set(report["clustering"]) == set(evaluation.FEATURES)
    headline = report["metrics"]["eval"]
    assert headline["linear@all"] == report["online_offline"]["offline_linear_accuracy"]  # labels: all
    assert "random_encoder/knn@10" in headline and "pca/nmi" in headline
    matrix = np.array(report["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == report["data"]["test_size"]
    assert np.trace(matrix) / matrix.sum() == pytest.approx(headline["linear@all"])
    assert len(report["per_class_accuracy"]) == 10
    assert report["class_names"] == [str(k) for k in range(10)]
    gap = report["online_offline"]
    assert gap["gap"] == pytest.approx(gap["offline_linear_accuracy"] - gap["online_probe_accuracy"])


def test_latent_statistics_for_a_2d_latent(evaluated):
    latent = evaluated["report"]["latent"]
    assert len(latent["mean"]) == len(latent["std"]) == len(latent["active"]) == 2
    assert latent["active_units"] == sum(latent["active"])
    share = latent["area_share"]["share"]
    assert len(share) == 10 and sum(share) == pytest.approx(1.0)
    assert latent["variant"] == {}  # the plain autoencoder's hook


def test_budget_subsets_are_saved_from_the_train_part_only(evaluated):
    run_dir, cfg = evaluated["run_dir"], evaluated["cfg"]
    splits = data_mod.load(cfg.data, cfg.seed)
    with np.load(run_dir / "eval" / "budgets.npz") as saved:
        ten, hundred = saved["budget_10"], saved["budget_100"]
    assert set(ten) <= set(hundred) <= set(splits.train_index.tolist())
    assert not set(hundred) & set(splits.val_index.tolist())
    assert np.bincount(splits.train.y[np.searchsorted(splits.train_index, ten)]).tolist() == [10] * 10


def test_every_plot_is_written_and_logged_to_tensorboard(evaluated):
    run_dir, report = evaluated["run_dir"], evaluated["report"]
    assert sorted(report["plots"]) == sorted(f"plots/{name}" for name in PLOTS)
    for name in PLOTS:
        data = (run_dir / "plots" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    images = accumulator(run_dir / "tb" / "eval").Tags()["tensors"]
    assert {f"eval/{Path(n).stem}" for n in PLOTS} <= set(images)


def test_projector_files_are_consistent(evaluated):
    run_dir = evaluated["run_dir"]
    projector_dir = run_dir / "tb" / "eval"
    cfg = text_format.Parse((projector_dir / "projector_config.pbtxt").read_text(), ProjectorConfig())
    (embedding,) = cfg.embeddings
    latents = np.loadtxt(projector_dir / embedding.tensor_path, delimiter="\t")
    header, *labels = (projector_dir / embedding.metadata_path).read_text().splitlines()
    assert header == "class\tlabel"
    assert all(name == label for name, label in (row.split("\t") for row in labels))  # digits: "7\t7"
    assert latents.shape == (360, 3) and len(labels) == 360  # a 2-d latent, padded with zeros
    assert (latents[:, 2] == 0).all()
    assert list(embedding.sprite.single_image_dim) == [8, 8]
    from matplotlib.image import imread

    sprite = imread(projector_dir / embedding.sprite.image_path)
    assert sprite.shape[:2] == (19 * 8, 19 * 8)  # ceil(sqrt(360)) = 19 images a side


def test_a_one_dimensional_latent_is_evaluated_with_its_figures(tmp_path):
    """A 1-d code: the scatter draws z against the class (no 2-d PCA of one column), the projector
    pads to 3 columns."""
    raw = tiny_config(tmp_path, model={"latent": 1}, train={"epochs": 1, "jit_compile": False})
    run_dir = Path(train.run(config.load(write_config(tmp_path, raw)))[0]["run_dir"])
    options = evaluation.EvalOptions(budgets=("all",), probes=("linear",), controls=False)
    report = evaluation.evaluate(run_dir, options)
    assert (run_dir / "plots" / "latent.png").stat().st_size > 10_000
    assert not (run_dir / "plots" / "manifold.png").exists()
    projector_dir = run_dir / "tb" / "eval"
    (embedding,) = text_format.Parse(
        (projector_dir / "projector_config.pbtxt").read_text(), ProjectorConfig()
    ).embeddings
    latents = np.loadtxt(projector_dir / embedding.tensor_path, delimiter="\t")
    assert latents.shape == (360, 3) and (latents[:, 1:] == 0).all() and latents[:, 0].std() > 0
    assert report["latent"]["active_units"] <= 1


def test_bad_eval_options_are_one_line_errors():
    with pytest.raises(UserError, match="--budgets: 'ten'"):
        evaluation.parse_budgets("10,ten")
    with pytest.raises(UserError, match="--probes: unknown probe 'svm'"):
        evaluation.parse_probes("linear,svm")
    assert evaluation.parse_budgets("5, all") == (5, "all")


@pytest.mark.slow
def test_tensorboard_serves_the_projector(evaluated, tmp_path):
    logdir = evaluated["run_dir"] / "tb"
    log_path = tmp_path / "tensorboard.log"
    with tensorboard_server(logdir, log_path) as (port, _):
        deadline, runs = time.monotonic() + 60, []
        while time.monotonic() < deadline and "eval" not in runs:
            try:
                runs = get_json(port, "/data/plugin/projector/runs")
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                time.sleep(0.5)
        assert runs == ["eval"], log_path.read_text()[-2000:]
        info = get_json(port, "/data/plugin/projector/info", run="eval")
        (embedding,) = info["embeddings"]
        assert embedding["tensorShape"] == [360, 3] and embedding["sprite"]["singleImageDim"] == [8, 8]


def global_rng_state() -> dict:
    """Python's, NumPy's, TensorFlow's and Keras's global random state, comparable with ==."""
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils import rng_utils
    from tensorflow.python.eager import context

    generator = global_state.get_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR)
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (kind, keys.tolist(), pos, has_gauss, cached),
        "keras_seed": global_state.get_global_attribute(rng_utils.GLOBAL_RANDOM_SEED),
        "keras_generator": None if generator is None else (id(generator), generator.state.numpy().tolist()),
        "tensorflow_seed": context.global_seed(),
    }


def test_eval_leaves_the_global_random_state_alone(evaluated):
    assert evaluated["rng_after"] == evaluated["rng_before"]


def test_the_random_encoder_control_depends_on_the_eval_seed_only(evaluated):
    cfg = evaluated["cfg"]
    splits = data_mod.load(cfg.data, cfg.seed)
    first = controls.random_encoder_features(cfg, splits, seed=3)
    random.seed(99)  # whatever the global state, the same eval seed gives the same weights
    np.random.seed(99)
    keras.utils.set_random_seed(99)
    again = controls.random_encoder_features(cfg, splits, seed=3)
    other = controls.random_encoder_features(cfg, splits, seed=4)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert not np.allclose(first[1], other[1])
    assert first[0].shape == (len(splits.train.y), 2)


@pytest.mark.parametrize("name", ["encoder.keras", "probe.keras"])
def test_a_damaged_saved_model_is_named(evaluated, tmp_path, name):
    run_dir = tmp_path / "run"
    shutil.copytree(evaluated["run_dir"], run_dir)
    (run_dir / name).write_bytes((run_dir / name).read_bytes()[:200])  # truncated, as by a full disk
    with pytest.raises(RunDirError, match=f"{run_dir / name}: cannot load the saved model"):
        evaluation.evaluate(run_dir)


def test_raw_pixel_control_is_fitted_once_per_split_and_matches_a_direct_fit(evaluated, monkeypatch):
    """The pixel baseline: a linear probe on every pixel scores what scikit-learn scores on the same
    labeled rows, and a second eval of a run on the same split reuses it instead of refitting."""
    report = evaluated["report"]
    run_dir = Path(report["run_dir"])
    cfg = config.load(run_dir / "config.yaml")
    splits = data_mod.load(cfg.data, cfg.seed)
    x_train, x_test = controls.pixel_features(splits)
    assert x_train.shape == (len(splits.train.x), 64)
    with np.load(run_dir / "eval" / "budgets.npz") as f:  # saved as the dataset's own train indices
        idx = np.searchsorted(splits.train_index, f["budget_10"])
    settings = evaluation.probing.ProbeSettings(seed=0)
    predicted = evaluation.probing.fit_predict("linear", x_train[idx], splits.train.y[idx], x_test, settings)
    row = next(
        r for r in report["probes"] if (r["features"], r["probe"], r["budget"]) == ("pixels", "linear", "10")
    )
    assert row["accuracy"] == evaluation.probing.accuracy(splits.test.y, predicted)
    assert row["accuracy"] > 0.5  # far above chance (0.1): the probe read the right pixels and labels

    fits = []
    real_fit = evaluation.probing.fit_probe

    def counting_fit(kind, z, *args):
        fits.append(z.shape[1])
        return real_fit(kind, z, *args)

    monkeypatch.setattr(evaluation.probing, "fit_probe", counting_fit)
    again = evaluation.evaluate(run_dir)
    assert 64 not in fits and 2 in fits  # the encoder's 2-d latents refitted, the 64 pixels reused
    pixel_rows = [r for r in again["probes"] if r["features"] == "pixels"]
    assert pixel_rows == [r for r in report["probes"] if r["features"] == "pixels"]


def test_a_later_eval_process_reads_the_data_only_controls_from_the_disk_cache(evaluated, monkeypatch):
    """PCA's and the pixels' results are kept in the folder beside the run; a new process (the memo
    cleared) reads them back instead of refitting, and reports the same rows."""
    report = evaluated["report"]
    run_dir = Path(report["run_dir"])
    cache = controls.cache_dir_for(run_dir)  # beside the run: <study>/.latentprobe-cache/eval-controls
    assert len(list(cache.glob("*.npz"))) == 4  # probes and clustering of pca and of pixels
    monkeypatch.setattr(controls, "_REUSED", {})
    fitted = []
    real_fit = evaluation.probing.fit_probe
    monkeypatch.setattr(
        evaluation.probing,
        "fit_probe",
        lambda kind, z, *a: fitted.append(z.shape[1]) or real_fit(kind, z, *a),
    )
    again = evaluation.evaluate(run_dir)
    assert 64 not in fitted and len(fitted) == 2 * 9  # the encoder's and the random encoder's only
    for name in ("pca", "pixels"):
        assert [r for r in again["probes"] if r["features"] == name] == [
            r for r in report["probes"] if r["features"] == name
        ]
        assert again["clustering"][name] == report["clustering"][name]
    assert again["timing"]["probe_fit_seconds"]["pixels/cached"] == 0.0


def test_every_probe_row_reports_its_tuned_choice_and_convergence(evaluated):
    report = evaluated["report"]
    assert report["options"]["tune"] is True and report["options"]["tuning"]["folds"] == 5
    for row in report["probes"]:
        name = {"linear": "C", "knn": "k", "mlp": "alpha"}[row["probe"]]
        assert set(row["chosen"]) == {name}
        if row["probe"] == "knn":
            assert row["converged"] is None and row["n_iter"] is None
        else:
            assert isinstance(row["converged"], bool) and row["n_iter"] >= 1
        # 10 labels per class: 5 folds of 2; above 2000 labels a 2000-label subsample (the MLP's 1000)
        assert row["tuning"]["folds"] == (3 if row["probe"] == "mlp" else 5)
        assert row["tuning"]["examples"] <= row["labels"]
    linear = [r for r in report["probes"] if r["probe"] == "linear"]
    assert all(r["chosen"]["C"] in (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0) for r in linear)


def test_no_tune_reproduces_the_fixed_probes_numbers(evaluated, tmp_path):
    """eval --no-tune: C = 1, k = 10, alpha 1e-4, as before eval tuned; the pixels' linear probe at 10
    labels per class equals a direct fit of that pipeline."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    run_dir = tmp_path / "run"
    shutil.copytree(evaluated["run_dir"], run_dir)
    options = evaluation.EvalOptions(tune=False, cache=False, probes=("linear",), budgets=(10,))
    report = evaluation.evaluate(run_dir, options)
    cfg = config.load(run_dir / "config.yaml")
    splits = data_mod.load(cfg.data, cfg.seed)
    x_train, x_test = controls.pixel_features(splits)
    with np.load(run_dir / "eval" / "budgets.npz") as f:
        idx = np.searchsorted(splits.train_index, f["budget_10"])
    old = make_pipeline(StandardScaler(), LogisticRegression(max_iter=200))
    old.fit(x_train[idx].astype(np.float64), splits.train.y[idx])
    expected = float(np.mean(old.predict(x_test.astype(np.float64)) == splits.test.y))
    row = next(r for r in report["probes"] if r["features"] == "pixels")
    assert row["accuracy"] == expected and row["chosen"] == {"C": 1.0}
    assert row["tuning"] == {"reason": "--no-tune"} and "tuning" not in report["options"]
    assert not (tmp_path / controls.CACHE_FOLDER).exists()
