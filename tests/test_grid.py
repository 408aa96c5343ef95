"""The grid: expansion, validation of every combination, error wording and run directory names."""

from __future__ import annotations

import itertools
import random

import pytest

from latentprobe import grid as grid_mod
from latentprobe import kinds
from latentprobe.errors import ConfigError
from latentprobe.models import MODELS

KINDS = ", ".join(kinds.names())  # the built-in kinds and any installed plug-in's

BASE = """\
name: g
seed: 0
data:
  name: digits
model:
  kind: ae
  latent: 8
"""


def expand_text(tmp_path, text: str, overrides=(), seeds=None) -> grid_mod.Grid:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return grid_mod.load(path, overrides, seeds)


def error_of(tmp_path, text: str, overrides=()) -> str:
    with pytest.raises(ConfigError) as info:
        expand_text(tmp_path, text, overrides)
    return str(info.value).replace(f"{tmp_path}/", "")


def test_product_of_the_lists_with_values_and_names(tmp_path):
    grid = expand_text(
        tmp_path,
        BASE + "grid:\n  model.kind: [ae, vae]\n  data.labels: [100, 1000]\n  seed: [0, 1]\n",
    )
    assert grid.keys == ("model.kind", "data.labels", "seed")
    assert len(grid.runs) == 8
    assert [r.name for r in grid.runs] == [
        "ae-z8-s0-labels100",
        "ae-z8-s1-labels100",
        "ae-z8-s0-labels1000",
        "ae-z8-s1-labels1000",
        "vae-z8-s0-labels100",
        "vae-z8-s1-labels100",
        "vae-z8-s0-labels1000",
        "vae-z8-s1-labels1000",
    ]
    run = grid.runs[5]
    assert run.values == {"model.kind": "vae", "data.labels": 100, "seed": 1}
    assert (run.config.model.kind, run.config.data.labels, run.config.seed) == ("vae", 100, 1)
    assert run.config.is_single


def test_latent_and_seed_lists_are_shorthands_for_grid_axes(tmp_path):
    grid = expand_text(
        tmp_path, BASE.replace("latent: 8", "latent: [2, 4]").replace("seed: 0", "seed: [3, 4]")
    )
    assert grid.keys == ("model.latent", "seed")
    assert [r.name for r in grid.runs] == ["ae-z2-s3", "ae-z2-s4", "ae-z4-s3", "ae-z4-s4"]


def test_a_single_run_is_a_grid_of_one(tmp_path):
    grid = expand_text(tmp_path, BASE)
    assert grid.keys == ()
    assert [r.name for r in grid.runs] == ["ae-z8-s0"]


def test_seeds_option_counts_up_from_the_config_seed(tmp_path):
    grid = expand_text(tmp_path, BASE.replace("seed: 0", "seed: 5"), seeds=3)
    assert [r.config.seed for r in grid.runs] == [5, 6, 7]


def test_seeds_option_with_a_seed_list_is_an_error(tmp_path):
    with pytest.raises(
        ConfigError, match=r"^--seeds: seed: expected a single seed in the config to count up"
    ):
        expand_text(tmp_path, BASE.replace("seed: 0", "seed: [1, 2]"), seeds=2)


def test_set_option_sets_a_grid_axis(tmp_path):
    grid = expand_text(tmp_path, BASE, overrides=["grid.model.kind=[ae,vae]", "grid.model.latent=[2, 16]"])
    assert [r.name for r in grid.runs] == ["ae-z2-s0", "ae-z16-s0", "vae-z2-s0", "vae-z16-s0"]


def test_variant_blocks_apply_to_their_runs_only(tmp_path):
    text = BASE + "  vae:\n    beta: 4\n  sparse:\n    rho: 0.1\ngrid:\n  model.kind: [ae, vae, sparse]\n"
    grid = expand_text(tmp_path, text)
    settings = {r.config.model.kind: r.config.model.settings for r in grid.runs}
    assert settings["vae"].beta == 4
    assert settings["sparse"].rho == 0.1
    assert not hasattr(settings["ae"], "beta")


def test_a_block_for_a_kind_no_run_has_is_an_error(tmp_path):
    text = BASE + "  vae:\n    beta: 4\ngrid:\n  model.kind: [ae, sparse]\n"
    assert error_of(tmp_path, text) == (
        "study.yaml:8: model.vae: settings for kind 'vae', but no run has model.kind 'vae' (ae, sparse)"
    )


def test_an_error_from_a_grid_value_names_the_value_and_its_line(tmp_path):
    text = BASE + "grid:\n  model.kind:\n    - ae\n    - vae\n    - sparce\n"
    assert error_of(tmp_path, text) == (
        "study.yaml:12: grid.model.kind[2]: unknown value 'sparce'; did you mean 'sparse'? "
        f"(expected one of: {KINDS}, or an import path package.module:ClassName)"
    )


def test_a_range_error_in_a_grid_value(tmp_path):
    assert error_of(tmp_path, BASE + "grid:\n  data.labels: [100, -5]\n") == (
        "study.yaml:9: grid.data.labels[1]: expected a value > 0, got -5"
    )


def test_an_error_inside_a_list_value_names_the_item(tmp_path):
    assert error_of(tmp_path, BASE + "grid:\n  model.hidden:\n    - [64]\n    - [64, 0]\n") == (
        "study.yaml:11: grid.model.hidden[1][1]: expected a value > 0, got 0"
    )


def test_an_error_in_a_shorthand_list_names_the_item(tmp_path):
    assert error_of(tmp_path, BASE.replace("latent: 8", "latent: [2, -3]")) == (
        "study.yaml:7: model.latent[1]: expected a value > 0, got -3"
    )


def test_a_grid_key_that_is_no_config_key(tmp_path):
    assert error_of(tmp_path, BASE + "grid:\n  model.kinds: [ae, vae]\n") == (
        "study.yaml:9: grid.model.kinds: not a config key; did you mean 'grid.model.kind'?"
    )
    assert error_of(tmp_path, BASE + "grid:\n  nothing.here: [1]\n") == (
        "study.yaml:9: grid.nothing.here: not a config key"
    )


def test_a_grid_key_from_the_set_option(tmp_path):
    assert error_of(tmp_path, BASE, overrides=["grid.train.epoch=[1,2]"]) == (
        "--set grid.train.epoch=[1,2]: grid.train.epoch: not a config key; did you mean 'grid.train.epochs'?"
    )


def test_empty_and_repeated_lists_are_errors(tmp_path):
    assert (
        error_of(tmp_path, BASE + "grid:\n  seed: []\n")
        == "study.yaml:9: grid.seed: the list of values is empty"
    )
    assert error_of(tmp_path, BASE + "grid:\n  seed: [1, 2, 1.0]\n") == (
        "study.yaml:9: grid.seed[2]: the value 1.0 repeats item 0"
    )
    assert error_of(tmp_path, BASE.replace("latent: 8", "latent: [4, 4]")) == (
        "study.yaml:7: model.latent[1]: the value 4 repeats item 0"
    )


def test_a_value_that_is_not_a_list(tmp_path):
    assert error_of(tmp_path, BASE + "grid:\n  seed: 3\n") == (
        "study.yaml:9: grid.seed: expected a list of values, got 3"
    )
    assert error_of(tmp_path, BASE + "grid: [seed]\n") == (
        "study.yaml:8: grid: expected a mapping of dotted keys to lists of values, got a list"
    )


def test_the_same_axis_twice_is_an_error(tmp_path):
    text = BASE.replace("seed: 0", "seed: [0, 1]") + "grid:\n  seed: [2, 3]\n"
    assert (
        error_of(tmp_path, text)
        == "study.yaml:2: seed: a list here and grid.seed too; give the values in one place"
    )


def test_the_study_name_and_output_cannot_vary(tmp_path):
    assert error_of(tmp_path, BASE + "grid:\n  output.dir: [a, b]\n") == (
        "study.yaml:9: grid.output.dir: cannot vary: the study lives in output.dir/name"
    )


def test_a_variant_setting_axis_needs_runs_of_that_kind_only(tmp_path):
    text = BASE + "grid:\n  model.kind: [ae, vae]\n  model.vae.beta: [1, 4]\n"
    assert error_of(tmp_path, text) == (
        "study.yaml:10: grid.model.vae.beta: varies a setting of kind 'vae', but runs of kind ae have none"
    )
    grid = expand_text(tmp_path, BASE.replace("kind: ae", "kind: vae") + "grid:\n  model.vae.beta: [1, 4]\n")
    assert [r.name for r in grid.runs] == ["vae-z8-s0-beta1", "vae-z8-s0-beta4"]
    assert [r.config.model.settings.beta for r in grid.runs] == [1, 4]


def test_an_error_of_a_combination_names_it(tmp_path):
    text = BASE + "  vae:\n    betta: 2\ngrid:\n  model.kind: [ae, vae]\n"
    assert error_of(tmp_path, text) == (
        "study.yaml:9: model.vae.betta: unknown key; did you mean 'model.vae.beta'? "
        "(valid keys here: beta, probe) (in the run with model.kind='vae')"
    )


def test_every_combination_is_validated_before_returning(tmp_path):
    # The last combination is the bad one: nothing is returned, the error names it.
    text = BASE + "data:\n  name: digits\n  limit: 80\ngrid:\n  data.labels: [10, 50, 100]\n"
    text = text.replace("data:\n  name: digits\nmodel", "model", 1)
    assert (
        error_of(tmp_path, text)
        == "study.yaml:10: grid.data.labels[2]: 100 labels but data.limit keeps only 80"
    )


@pytest.mark.parametrize(
    ("key", "values", "tags"),
    [
        ("train.learning_rate", [0.001, 1e-05, 1e30], ["lr0.001", "lr0.00001", "lr1e+30"]),
        ("data.labels", [100, "all"], ["labels100", "labelsall"]),
        ("probe.strategy", ["alternating", "frozen"], ["alternating", "frozen"]),
        ("model.hidden", [[128, 64], [32]], ["hidden128x64", "hidden32"]),
        ("train.jit_compile", [True, False], ["jit_compile", "nojit_compile"]),
        ("data.limit", [None, 500], ["limitnone", "limit500"]),
    ],
)
def test_run_name_tags(tmp_path, key, values, tags):
    raw = {"name": "g", "data": {"name": "digits"}, "grid": {key: values}}
    grid = grid_mod.expand_grid(raw, {}, "g.yaml", MODELS)
    assert [r.name for r in grid.runs] == [f"ae-z8-s0-{tag}" for tag in tags]


def test_two_keys_with_the_same_last_part_get_their_section(tmp_path):
    raw = {"name": "g", "grid": {"train.learning_rate": [0.1, 0.2], "probe.learning_rate": [0.3]}}
    raw["grid"]["probe.learning_rate"] = [0.3, 0.4]
    names = [r.name for r in grid_mod.expand_grid(raw, {}, "g.yaml", MODELS).runs]
    assert names[0] == "ae-z8-s0-train_lr0.1-probe_lr0.3"


def test_values_whose_tags_would_clash_are_numbered(tmp_path):
    raw = {
        "name": "g",
        "data": {"name": "npz"},
        "grid": {"train.optimizer": ["adam", "Adam"], "data.path": ["x y.npz", "x_y.npz"]},
    }
    # "adam"/"Adam" differ only in case, "x y.npz"/"x_y.npz" once sanitised: both axes are numbered.
    names = [r.name for r in grid_mod.expand_grid(raw, {}, "g.yaml", MODELS).runs]
    assert names == [
        "ae-z8-s0-optimizer0-path0",
        "ae-z8-s0-optimizer0-path1",
        "ae-z8-s0-optimizer1-path0",
        "ae-z8-s0-optimizer1-path1",
    ]


def test_names_are_unique_and_deterministic_for_random_grids():
    """Collisions are impossible by construction: one '-'-free segment per axis, distinct per axis."""
    rng = random.Random(0)
    pools = {
        "train.learning_rate": [1e-5, 1e-4, 0.001, 0.0010000001, 0.01, 0.1, 1.0, 1e30, 2],
        "data.labels": [1, 10, 100, "all", 1000],
        "model.hidden": [[1], [11], [1, 1], [111], [64, 32], [6432]],
        "model.latent": [1, 2, 3, 11, 12],
        "seed": [0, 1, 2, 10, 11],
        "model.kind": sorted(MODELS),
        "train.batch_size": [1, 11, 111],
        "probe.learning_rate": [0.1, 0.01, 1e-3],
    }
    for _ in range(40):
        keys = rng.sample(sorted(pools), rng.randint(1, 4))
        axes = {k: rng.sample(pools[k], rng.randint(1, min(3, len(pools[k])))) for k in keys}
        raw = {"name": "g", "grid": axes}
        first = [r.name for r in grid_mod.expand_grid(raw, {}, "g.yaml", MODELS).runs]
        again = [r.name for r in grid_mod.expand_grid(raw, {}, "g.yaml", MODELS).runs]
        assert first == again
        assert len(set(first)) == len(first) == len(list(itertools.product(*axes.values())))
        assert all("/" not in n and len(n) < 120 for n in first)


def test_grid_leaves_the_raw_mapping_unchanged():
    raw = {
        "name": "g",
        "seed": [0, 1],
        "model": {"kind": "vae", "vae": {"beta": 2}},
        "grid": {"train.epochs": [1, 2]},
    }
    snapshot = repr(raw)
    grid_mod.expand_grid(raw, {}, "g.yaml", MODELS)
    assert repr(raw) == snapshot
