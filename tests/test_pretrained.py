"""Kind ``pretrained``: a Keras encoder saved elsewhere, probed as a run (real models saved in tmp_path).

Bad input through the real CLI: one line ``error: ...``, exit code 2, no run directory.
"""

from __future__ import annotations

import json
import sys

import keras
import numpy as np
import pytest
from typer.testing import CliRunner

from latentprobe import components, config, data, grid, pixels, rundir
from latentprobe.cli import app
from latentprobe.models import pretrained

from .conftest import tiny_config, write_config

runner = CliRunner()


def image_encoder(seed: int = 1) -> keras.Model:
    """(8, 8, 1) digits -> a 3-d code, with BatchNormalization and Dropout (state a probe must not move)."""
    keras.utils.set_random_seed(seed)
    x = keras.Input((8, 8, 1))
    h = keras.layers.Dense(16, activation="relu")(keras.layers.Flatten()(x))
    h = keras.layers.Dropout(0.5)(keras.layers.BatchNormalization()(h))
    return keras.Model(x, keras.layers.Dense(3, name="z")(h))


def image_decoder() -> keras.Model:
    z = keras.Input((3,))
    return keras.Model(z, keras.layers.Reshape((8, 8, 1))(keras.layers.Dense(64, activation="sigmoid")(z)))


def flat_encoder() -> keras.Model:
    """(64,) inputs -> a dict of two outputs, ``mu`` and ``log_var``."""
    x = keras.Input((64,))
    return keras.Model(x, {"mu": keras.layers.Dense(4)(x), "log_var": keras.layers.Dense(4)(x)})


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    paths = {
        "image": root / "img_enc.keras",
        "decoder": root / "img_dec.keras",
        "flat": root / "flat_enc.keras",
    }
    image_encoder().save(paths["image"])
    image_decoder().save(paths["decoder"])
    flat_encoder().save(paths["flat"])
    (root / "other").mkdir()
    image_encoder(seed=2).save(root / "other" / "img_enc.keras")  # the same stem, another encoder
    paths["image2"] = root / "other" / "img_enc.keras"
    return paths


def pretrained_config(tmp_path, encoder, **model):
    return tiny_config(
        tmp_path,
        model={"kind": "pretrained", "encoder": str(encoder), **model},
        probe={"strategy": "frozen", "epochs": 2},
    )


def clean_model(raw: dict) -> dict:
    """Drop the keys the ``ae`` tiny config sets that a pretrained config needs not name."""
    for key in ("hidden", "latent"):
        raw["model"].pop(key, None)
    raw["probe"].pop("every", None)
    return raw


def train(tmp_path, raw, *args):
    return runner.invoke(app, ["train", str(write_config(tmp_path, clean_model(raw))), *args])


def fails_cleanly(result, tmp_path) -> str:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert not (tmp_path / "runs").exists()  # nothing written: no study, no run directory
    return lines[0]


# --- a run ---------------------------------------------------------------------------------------------


def test_train_writes_a_standalone_run(tmp_path, files):
    raw = pretrained_config(tmp_path, files["image"], decoder=str(files["decoder"]))
    result = train(tmp_path, raw)
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "tiny" / "pretrained-img_enc-s0"
    summary = json.loads((run / rundir.SUMMARY).read_text())
    record = summary["pretrained"]
    assert record["encoder"]["path"] == str(files["image"])
    assert record["encoder"]["sha256"] == pretrained.sha256_of(files["image"])
    assert pretrained.sha256_of(run / rundir.ENCODER) == record["encoder"]["sha256"]  # copied, as is
    assert record["decoder"]["sha256"] == pretrained.sha256_of(run / rundir.DECODER)
    assert summary["config"]["model"]["latent"] == 3  # the encoder's, for compare
    assert summary["history"]["phase"] == ["probe", "probe"]  # no autoencoder epoch
    test = summary["metrics"]["test"]
    assert 0 < test["reconstruction_loss"] < 64 * 2 and 0 <= test["probe_accuracy"] <= 1
    # The run stands alone: eval rebuilds it from its own copies, not the original paths.
    loaded = components.restore_model(config.load(run / rundir.CONFIG), run, (8, 8, 1), 10)[0]
    assert loaded.source["encoder"]["path"] == str(run / rundir.ENCODER)


def test_the_encoder_is_unchanged_by_training(tmp_path, files):
    """Every weight of the encoder (BatchNormalization's moving statistics included) after the probe's
    epochs equals the file's; the probe head did move."""
    raw = clean_model(pretrained_config(tmp_path, files["image"]))
    cfg = config.from_dict(raw)
    splits = data.load(cfg.data, cfg.seed)
    parts = components.build_components(cfg, splits)
    head_before = [w.copy() for w in parts.head.get_weights()]
    records = list(parts.strategy.run())
    assert [r.phase for r in records] == ["probe", "probe"]
    original = keras.models.load_model(files["image"]).get_weights()
    after = parts.model.encoder.get_weights()
    assert len(after) == len(original) > 4
    for a, b in zip(after, original, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(parts.head.get_weights(), head_before, strict=True))


def test_a_flat_input_encoder_is_fed_flattened_and_said_once(tmp_path, files):
    raw = pretrained_config(tmp_path, files["flat"], output="mu", input_range="standardized")
    result = train(tmp_path, raw)
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if "flattened" in line]
    assert len(notes) == 1 and "(64,)" in notes[0] and "(8, 8, 1)" in notes[0], result.stderr
    summary = json.loads((tmp_path / "runs/tiny/pretrained-flat_enc-s0" / rundir.SUMMARY).read_text())
    assert summary["pretrained"]["fed_flattened"] is True
    assert summary["pretrained"]["decoder"] is None and summary["config"]["model"]["latent"] == 4
    # standardized: the train part's mean and std of latentprobe's [0, 1] inputs
    cfg = config.from_dict(clean_model(raw))
    train_part = data.load(cfg.data, cfg.seed).train
    x = pixels.scale_array(train_part.x, train_part.scale)  # the digits' bytes as the encoder sees them
    assert summary["pretrained"]["input_mean"] == pytest.approx(float(np.mean(x)))
    assert summary["pretrained"]["input_std"] == pytest.approx(float(np.std(x)))


def test_input_ranges_map_unit_inputs():
    x = np.array([[0.0, 0.5, 1.0]], np.float32)
    assert np.allclose(pretrained.InputMapping("symmetric").apply(x), [[-1, 0, 1]])
    assert np.allclose(pretrained.InputMapping("byte").apply(x), [[0, 127.5, 255]])
    standardized = pretrained.InputMapping("standardized", mean=0.5, std=0.25)
    assert np.allclose(standardized.apply(x), [[-2, 0, 2]])
    for name in pretrained.INPUT_RANGES:
        mapping = pretrained.InputMapping(name, mean=0.5, std=0.25)
        assert np.allclose(mapping.invert(mapping.apply(x)), x)


def test_resume_continues_with_the_encoder_the_run_began_with(tmp_path, files):
    """The files are copied in before the first epoch; a resume reads the copies, even after the original
    was overwritten by another model, and ends where an uninterrupted run ends."""
    from latentprobe import train as train_mod

    original = tmp_path / "enc.keras"
    original.write_bytes(files["image"].read_bytes())
    raw = clean_model(pretrained_config(tmp_path, original, decoder=str(files["decoder"])))
    raw["probe"]["epochs"] = 3
    reference = train(tmp_path, raw)
    assert reference.exit_code == 0, reference.output
    run_dir = tmp_path / "runs/tiny/pretrained-enc-s0"
    expected = rundir.read_json(run_dir / rundir.SUMMARY)

    cfg = config.load(write_config(tmp_path, {**raw, "name": "killed"}))

    def stop_after_first(line: str) -> None:
        if line.startswith("epoch 1/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_mod.run(cfg, progress=stop_after_first)
    killed = tmp_path / "runs/killed/pretrained-enc-s0"
    assert (killed / rundir.ENCODER).read_bytes() == files["image"].read_bytes()  # copied at the start
    image_encoder(seed=3).save(original)  # the user's file changes between the kill and the resume

    resumed = train_mod.resume(killed)
    assert resumed["resumed_at_epochs"] == [1]
    assert resumed["metrics"] == expected["metrics"] and resumed["history"] == expected["history"]
    assert resumed["pretrained"]["encoder"] == expected["pretrained"]["encoder"]  # the original, named
    assert resumed["pretrained"]["encoder"]["path"] == str(original)
    assert (killed / rundir.ENCODER).read_bytes() == files["image"].read_bytes()


# --- bad input -----------------------------------------------------------------------------------------


def test_a_file_that_is_not_a_keras_model(tmp_path):
    bad = tmp_path / "notes.keras"
    bad.write_text("not a model")
    line = fails_cleanly(train(tmp_path, pretrained_config(tmp_path, bad)), tmp_path)
    assert "model.encoder" in line and "not a Keras model" in line and "notes.keras" in line


def test_a_missing_file(tmp_path):
    line = fails_cleanly(train(tmp_path, pretrained_config(tmp_path, tmp_path / "nope.keras")), tmp_path)
    assert "model.encoder" in line and "no such file" in line


CUSTOM_LAYER = """
import keras


@keras.saving.register_keras_serializable(package="lptest")
class Doubling(keras.layers.Layer):
    def call(self, x):
        return 2.0 * x
"""


def test_unregistered_custom_layers_say_how_and_model_imports_loads_them(tmp_path, monkeypatch):
    module = "lp_custom_layers_for_test"
    (tmp_path / f"{module}.py").write_text(CUSTOM_LAYER)
    monkeypatch.syspath_prepend(str(tmp_path))
    layers = __import__(module)
    x = keras.Input((8, 8, 1))
    path = tmp_path / "custom.keras"
    keras.Model(x, layers.Doubling()(keras.layers.Flatten()(x))).save(path)
    # A fresh process would not know the class: forget it here too.
    keras.saving.get_custom_objects().pop("lptest>Doubling")
    del sys.modules[module]

    line = fails_cleanly(train(tmp_path, pretrained_config(tmp_path, path)), tmp_path)
    assert "'Doubling'" in line and "register_keras_serializable" in line and "model.imports" in line

    result = train(tmp_path, pretrained_config(tmp_path, path, imports=[module]))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "runs/tiny/pretrained-custom-s0" / rundir.SUMMARY).is_file()


@pytest.mark.parametrize(
    ("output", "words"),
    [
        ("nope", "model.output: 'nope': the encoder has no such output (its outputs: 'mu', 'log_var')"),
        (None, "model.output: the encoder has several outputs ('mu', 'log_var'); name the code's key"),
        (1, "model.output: 1: the encoder has no such output"),
    ],
)
def test_an_output_the_encoder_does_not_have(tmp_path, files, output, words):
    line = fails_cleanly(train(tmp_path, pretrained_config(tmp_path, files["flat"], output=output)), tmp_path)
    assert words in line


def test_codes_that_are_not_2d(tmp_path):
    x = keras.Input((8, 8, 1))
    path = tmp_path / "scalar.keras"
    keras.Model(x, keras.ops.sum(keras.layers.Flatten()(x), axis=-1)).save(path)  # (batch,)
    line = fails_cleanly(train(tmp_path, pretrained_config(tmp_path, path)), tmp_path)
    assert "model.encoder" in line and "shape (2,)" in line and "not (batch, features)" in line


def test_an_input_shape_that_fits_neither(tmp_path):
    x = keras.Input((10,))
    path = tmp_path / "wide.keras"
    keras.Model(x, keras.layers.Dense(2)(x)).save(path)
    line = fails_cleanly(train(tmp_path, pretrained_config(tmp_path, path)), tmp_path)
    assert "input shape (None, 10)" not in line  # the batch axis is not part of a shape we name
    assert "(10,) fits neither the data's (8, 8, 1) nor its flattened (64,)" in line


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"probe": {"strategy": "alternating"}}, "probe.strategy: kind 'pretrained' trains only the probe"),
        ({"model": {"encoder": None}}, "model.encoder: kind 'pretrained' needs the path"),
        ({"model": {"kind": "ae", "latent": 2}}, "model.encoder: only applies to model.kind 'pretrained'"),
        ({"model": {"imports": ["not a module"]}}, "model.imports[0]: expected a module name"),
    ],
)
def test_validate_finds_config_mistakes(tmp_path, files, change, words):
    raw = clean_model(pretrained_config(tmp_path, files["image"]))
    for section, values in change.items():
        raw[section].update(values)
    result = runner.invoke(app, ["validate", str(write_config(tmp_path, raw))])
    assert result.exit_code == 2 and words in result.stderr, result.output


@pytest.mark.parametrize("key", ["encoder", "decoder"])
def test_validate_finds_a_missing_or_broken_file_at_its_line(tmp_path, files, key):
    raw = clean_model(pretrained_config(tmp_path, files["image"]))
    broken = tmp_path / "broken.keras"
    broken.write_text("not a zip")
    for path, words in ((tmp_path / "gone.keras", "gone.keras: no such file"), (broken, "not a Keras model")):
        raw["model"][key] = str(path)
        written = write_config(tmp_path, raw)
        result = runner.invoke(app, ["validate", str(written)])
        assert result.exit_code == 2, result.output
        (line,) = result.stderr.strip().splitlines()
        assert f"model.{key}" in line and words in line and str(written) in line


# --- studies -------------------------------------------------------------------------------------------


def test_a_grid_over_encoders_names_each_run_and_trains_ae_once(tmp_path, files):
    raw = tiny_config(
        tmp_path,
        model={"kind": "ae", "latent": 2, "encoder": str(files["image"])},
        probe={"strategy": "frozen", "epochs": 1},
        grid={
            "model.kind": ["ae", "pretrained"],
            "model.encoder": [str(files["image"]), str(files["flat"])],
            "model.latent": [2, 3],
        },
    )
    raw["probe"].pop("every")
    raw["model"]["output"] = None
    names = [run.name for run in grid.expand_grid(raw).runs]
    assert names == ["ae-z2-s0", "ae-z3-s0", "pretrained-img_enc-s0", "pretrained-flat_enc-s0"]
    same_stem = dict(
        raw, grid={"model.kind": ["pretrained"], "model.encoder": [str(files["image"]), str(files["image2"])]}
    )
    names = [run.name for run in grid.expand_grid(same_stem).runs]
    assert names == ["pretrained-img_enc0-s0", "pretrained-img_enc1-s0"]


def test_eval_and_compare_a_pretrained_run_beside_an_ae_run(tmp_path, files):
    raw = tiny_config(
        tmp_path,
        model={"kind": "ae", "latent": 2, "hidden": [16]},
        probe={"strategy": "frozen", "epochs": 1},
        train={"epochs": 1, "batch_size": 64, "learning_rate": 0.003},
        grid={"model.kind": ["ae", "pretrained"]},
    )
    raw["probe"].pop("every")
    raw["model"]["encoder"] = str(files["image"])
    raw["model"]["decoder"] = str(files["decoder"])
    result = runner.invoke(app, ["train", str(write_config(tmp_path, raw))])
    assert result.exit_code == 0, result.output
    study = tmp_path / "runs" / "tiny"
    assert sorted(p.name for p in study.iterdir() if p.is_dir()) == ["ae-z2-s0", "pretrained-img_enc-s0"]
    # Beside the study, a folder that is not latentprobe's: a directory search skips it, with a warning.
    junk = tmp_path / "runs" / "unrelated"
    junk.mkdir()
    (junk / rundir.STUDY).write_text("{not json")
    result = runner.invoke(
        app, ["eval", str(tmp_path / "runs"), "--budgets", "5,all", "--probes", "linear", "--no-controls"]
    )
    assert result.exit_code == 0, result.output
    assert f"warning: skipped: {junk / rundir.STUDY}: invalid JSON" in result.stderr
    assert "evaluated 2 of 2 runs" in result.stderr
    report = json.loads((study / "pretrained-img_enc-s0" / rundir.EVAL).read_text())
    assert report["metrics"]["test"]["probe_accuracy"] == pytest.approx(
        json.loads((study / "pretrained-img_enc-s0" / rundir.SUMMARY).read_text())["metrics"]["test"][
            "probe_accuracy"
        ],
        abs=1e-6,
    )
    assert "reconstructions.png" in " ".join(report["plots"])  # it has a decoder
    result = runner.invoke(app, ["compare", str(study), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert "pretrained" in result.stdout and "eval/linear@all" in result.stdout
