"""Config loading: types, defaults, overrides, and one precise error per mistake."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from latentprobe import config
from latentprobe.errors import ConfigError

from .conftest import CONFIGS


def load_yaml(text: str, overrides=()):
    return config.load_text(text, list(overrides), source="c.yaml")


def test_defaults_fill_every_block():
    cfg = load_yaml("name: x\n")
    assert cfg.data.name == "digits"
    assert cfg.model.kind == "ae"
    assert cfg.probe.strategy == "alternating"
    assert cfg.train.epochs == 10
    assert cfg.is_single


def test_config_is_frozen():
    cfg = load_yaml("name: x\n")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.name = "y"


@pytest.mark.parametrize("path", sorted(CONFIGS.rglob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_are_valid(path):
    from latentprobe import grid, search

    if search.has_search(path):  # a search: its space's ends are valid configs
        assert search.load(path).example.is_single
        return
    study = grid.load(path)
    assert study.runs and all(run.config.is_single for run in study.runs)


def test_unknown_key_names_dotted_key_and_closest_valid_one():
    with pytest.raises(ConfigError) as info:
        load_yaml("name: x\ntrain:\n  epochz: 3\n")
    message = str(info.value)
    assert message.startswith("c.yaml:3: train.epochz: unknown key; did you mean 'train.epochs'?")


def test_wrong_type_names_key_value_and_expectation():
    with pytest.raises(ConfigError, match=r"c.yaml:2: train.epochs: expected an integer, got 'ten'"):
        load_yaml("train:\n  epochs: ten\n")


def test_out_of_range_value():
    with pytest.raises(ConfigError, match=r"train.batch_size: expected a value > 0, got -4"):
        load_yaml("train:\n  batch_size: -4\n")


def test_unknown_choice_suggests_the_closest():
    with pytest.raises(ConfigError, match=r"probe.strategy: unknown value 'frozn'; did you mean 'frozen'\?"):
        load_yaml("probe:\n  strategy: frozn\n")


def test_unknown_model_kind_lists_registered_kinds():
    with pytest.raises(ConfigError, match=r"model.kind: unknown value 'vea'.*expected one of: .*ae"):
        load_yaml("model:\n  kind: vea\n")


def test_latent_list_expands_to_one_run_per_size():
    cfg = load_yaml("model:\n  latent: [2, 3]\nseed: [0, 1]\n")
    runs = cfg.expand()
    assert [(r.model.latent, r.seed) for r in runs] == [(2, 0), (2, 1), (3, 0), (3, 1)]
    assert all(r.is_single for r in runs)


def test_empty_latent_list_is_an_error():
    with pytest.raises(ConfigError, match=r"model.latent: the list of latent sizes is empty"):
        load_yaml("model:\n  latent: []\n")


def test_zero_in_latent_list_names_the_item():
    with pytest.raises(ConfigError, match=r"model.latent\[1\]: expected a value > 0, got 0"):
        load_yaml("model:\n  latent: [2, 0]\n")


def test_labels_accepts_int_or_all_only():
    assert load_yaml("data:\n  labels: 100\n").data.labels == 100
    assert load_yaml("data:\n  labels: all\n").data.labels == "all"
    with pytest.raises(ConfigError, match=r"data.labels: "):
        load_yaml("data:\n  labels: some\n")


def test_validation_fraction_or_count():
    assert load_yaml("data:\n  validation: 0.2\n").data.validation == 0.2
    assert load_yaml("data:\n  validation: 500\n").data.validation == 500
    with pytest.raises(ConfigError, match=r"data.validation: a fraction must be below 1"):
        load_yaml("data:\n  validation: 1.0\n")


def test_overrides_parse_yaml_scalars_and_lists():
    cfg = load_yaml("name: x\n", ["train.epochs=3", "model.latent=[2, 3]", "probe.head=mlp"])
    assert cfg.train.epochs == 3
    assert cfg.model.latent == (2, 3)
    assert cfg.probe.head == "mlp"


def test_override_of_unknown_key_is_reported():
    with pytest.raises(ConfigError, match=r"train.epoch: unknown key; did you mean 'train.epochs'"):
        load_yaml("name: x\n", ["train.epoch=3"])


def test_malformed_override():
    with pytest.raises(ConfigError, match=r"--set: override 'train.epochs' is not of the form"):
        load_yaml("name: x\n", ["train.epochs"])


def test_an_override_value_error_names_the_set_option_not_the_file():
    with pytest.raises(ConfigError) as info:
        load_yaml("name: x\ntrain:\n  epochs: 3\n", ["train.epochs=abc"])
    assert str(info.value) == "--set train.epochs=abc: train.epochs: expected an integer, got 'abc'"


def test_an_override_inside_a_variant_block_names_the_set_option():
    with pytest.raises(ConfigError, match=r"^--set model.vae.beta=-1: model.vae.beta: expected a value > 0"):
        load_yaml("model:\n  kind: vae\n  vae:\n    beta: 2\n", ["model.vae.beta=-1"])


def test_a_file_error_still_names_the_file_line_when_overrides_are_given():
    with pytest.raises(ConfigError) as info:
        load_yaml("name: x\ntrain:\n  epochs: abc\n", ["train.batch_size=8"])
    assert str(info.value) == "c.yaml:3: train.epochs: expected an integer, got 'abc'"


def test_an_unparsable_override_names_the_set_option():
    with pytest.raises(ConfigError, match=r"^--set model.latent=\[2: model.latent: cannot parse"):
        load_yaml("name: x\n", ["model.latent=[2"])


def test_read_raw_then_validate_raw_is_load_text():
    text = "name: x\ntrain:\n  epochs: 3\n  batch_size: 16\n"
    raw, lines = config.read_raw(text, ["train.epochs=5"], "c.yaml")
    assert raw == {"name": "x", "train": {"epochs": 5, "batch_size": 16}}
    assert lines["train.batch_size"] == 4 and lines["train"] == 2
    assert lines["train.epochs"] == config.SET_BY_OVERRIDE  # its value is on no line of the file
    assert config.validate_raw(raw, lines, "c.yaml") == load_yaml(text, ["train.epochs=5"])
    raw["train"]["epochs"] = "five"
    with pytest.raises(ConfigError) as info:
        config.validate_raw(raw, lines, "c.yaml")
    assert str(info.value).startswith("c.yaml: train.epochs: expected an integer")  # no wrong line


def test_a_config_file_that_is_not_utf8_text(tmp_path):
    path = tmp_path / "binary.yaml"
    path.write_bytes(bytes([0x00, 0x01, 0x02, 0xFF, 0xFE]))
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert str(info.value) == f"{path}: not a UTF-8 text file (byte 0xff at offset 3)"


@pytest.mark.parametrize("name", ["ftrl", "muon", "Adafactor", "SGD", "schedulefreeadamw"])
def test_any_optimizer_keras_builds_by_name_is_accepted(name):
    cfg = load_yaml(f"train:\n  optimizer: {name}\nprobe:\n  optimizer: {name}\n")
    assert cfg.train.optimizer == cfg.probe.optimizer == name


def test_unknown_activation_suggests_the_closest():
    with pytest.raises(
        ConfigError, match=r"c.yaml:2: model.activation: unknown activation 'gelo'; did you mean"
    ):
        load_yaml("model:\n  activation: gelo\n")


def test_invalid_yaml_reports_line():
    with pytest.raises(ConfigError, match=r"c.yaml:3: invalid YAML: found character '\\t'"):
        load_yaml("name: x\ntrain:\n\tepochs: 3\n")


def test_top_level_must_be_a_mapping():
    with pytest.raises(ConfigError, match=r"expected a mapping of keys at the top level, got a list"):
        load_yaml("- 1\n- 2\n")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nope.yaml: file not found"):
        config.load(tmp_path / "nope.yaml")


def test_npz_needs_a_path():
    with pytest.raises(ConfigError, match=r"data.path: data.name 'npz' needs data.path"):
        load_yaml("data:\n  name: npz\n")


def test_image_folder_keys():
    cfg = load_yaml(
        "data:\n  name: folder\n  path: imgs\n  image_size: [32, 24]\n  color: rgb\n  test: 0.25\n"
    )
    assert (cfg.data.image_size, cfg.data.color, cfg.data.test) == ((32, 24), "rgb", 0.25)
    assert load_yaml("data:\n  unlabeled: more.npz\n").data.unlabeled == "more.npz"


@pytest.mark.parametrize(
    "data, message",
    [
        ("name: folder", r"data.path: data.name 'folder' needs data.path"),
        ("{name: folder, path: x, image_size: [32]}", r"data.image_size: expected \[height, width\]"),
        ("{name: folder, path: x, image_size: [0, 4]}", r"data.image_size\[0\]: expected a value > 0"),
        (
            "{name: folder, path: x, color: grey}",
            r"data.color: expected 'grayscale' or 'rgb' or null, got 'grey'",
        ),
        ("{name: folder, path: x, test: 1.0}", r"data.test: a fraction must be below 1"),
        ("{name: npz, path: x.npz, test: 0.3}", r"data.test: only applies to data.name 'folder'"),
        ("{image_size: [8, 8]}", r"data.image_size: only applies to image folders"),
        ("{unlabeled: ' '}", r"data.unlabeled: expected a file system path"),
    ],
)
def test_image_folder_key_errors(data, message):
    with pytest.raises(ConfigError, match=message):
        load_yaml(f"data: {data}\n" if data.startswith("{") else f"data:\n  {data}\n")


def test_frozen_strategy_rejects_every():
    with pytest.raises(ConfigError, match=r"probe.every: only applies to probe.strategy 'alternating'"):
        load_yaml("probe:\n  strategy: frozen\n  every: epoch\n")


def test_unknown_optimizer():
    with pytest.raises(ConfigError, match=r"train.optimizer: unknown value 'adan'; did you mean 'adam'"):
        load_yaml("train:\n  optimizer: adan\n")


def test_settings_block_for_another_kind_is_an_error():
    with pytest.raises(
        ConfigError,
        match=r"model.vae: settings for kind 'vae', but model.kind is 'ae'|model.vae: unknown key",
    ):
        load_yaml("model:\n  kind: ae\n  vae:\n    beta: 2\n")


def test_bool_is_not_an_integer():
    with pytest.raises(ConfigError, match=r"train.epochs: expected an integer, got True"):
        load_yaml("train:\n  epochs: true\n")


def test_dump_round_trips():
    cfg = load_yaml("name: x\nmodel:\n  latent: [2, 3]\n  hidden: [16]\nseed: 3\n")
    again = config.load_text(config.dump(cfg))
    assert again == cfg
    assert yaml.safe_load(config.dump(cfg))["model"]["hidden"] == [16]


def test_every_mistake_in_the_file_is_reported_in_file_order(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "probe:\n  head: lineer\ntrain:\n  epochz: 3\n  batch_size: -4\n"
        "model:\n  kind: vae\n  latent: x\n  vae:\n    betta: 2\n"
    )
    with pytest.raises(ConfigError) as caught:
        config.load(path, ["train.learning_rate=-1"])
    lines = str(caught.value).splitlines()
    assert [line.split(": ")[0] for line in lines] == [
        f"{path}:2",
        f"{path}:4",
        f"{path}:5",
        f"{path}:8",
        f"{path}:10",
        "--set train.learning_rate=-1",
    ]
    assert "probe.head: unknown value 'lineer'; did you mean 'linear'?" in lines[0]
    assert "model.latent: expected an integer or a list of integers, got 'x'" in lines[3]
    assert "model.vae.betta: unknown key; did you mean 'model.vae.beta'?" in lines[4]


def test_the_cli_prints_each_mistake_on_its_own_error_line(tmp_path):
    from typer.testing import CliRunner

    from latentprobe.cli import app

    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  kind: vea\ntrain:\n  epochs: 0\n")
    for command in ("validate", "train"):
        result = CliRunner().invoke(app, [command, str(path)])
        assert result.exit_code == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 2 and all(line.startswith(f"error: {path}:") for line in lines), lines
        assert "model.kind: unknown value 'vea'" in lines[0] and "train.epochs" in lines[1]
