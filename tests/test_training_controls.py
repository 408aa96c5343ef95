"""The config's optimizer settings, schedules and early stopping: canonical forms and one precise error
per mistake (dotted key, line, the closest valid name). No TensorFlow."""

from __future__ import annotations

import pytest

from latentprobe import config
from latentprobe.errors import ConfigError
from latentprobe.settings import CosineSchedule, EarlyStopping, PlateauSchedule


def load_yaml(text: str, overrides=()):
    return config.load_text(text, list(overrides), source="c.yaml")


def error_of(text: str, overrides=()) -> str:
    with pytest.raises(ConfigError) as info:
        load_yaml(text, overrides)
    return str(info.value)


def test_defaults_are_a_constant_rate_and_no_early_stopping():
    cfg = load_yaml("name: x\n")
    for block in (cfg.train, cfg.probe):
        assert block.optimizer == "adam" and block.schedule is None and block.early_stopping is None


def test_optimizer_mapping_keeps_its_arguments_and_a_bare_name_stays_a_name():
    cfg = load_yaml(
        "train:\n  optimizer: {name: AdamW, weight_decay: 1.0e-4, global_clipnorm: 1.0}\n"
        "probe:\n  optimizer: {name: sgd}\n"
    )
    assert cfg.train.optimizer == {"name": "AdamW", "weight_decay": 1e-4, "global_clipnorm": 1.0}
    assert cfg.probe.optimizer == "sgd"
    assert config.load_text(config.dump(cfg)) == cfg  # config.yaml reads back to the same config


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "train:\n  optimizer:\n    name: adamw\n    weight_decy: 0.1\n",
            "c.yaml:4: train.optimizer.weight_decy: unknown argument of adamw 'weight_decy'; "
            "did you mean 'weight_decay'? (valid here: beta_1, beta_2, epsilon, amsgrad, weight_decay,",
        ),
        (
            "probe:\n  optimizer: {name: sgd, learning_rate: 0.1}\n",
            "c.yaml:2: probe.optimizer.learning_rate: the learning rate is probe.learning_rate, "
            "not a key here",
        ),
        (
            "train:\n  optimizer: {name: adamm}\n",
            "c.yaml:2: train.optimizer.name: unknown value 'adamm'; did you mean 'adam'?",
        ),
        (
            "train:\n  optimizer: {weight_decay: 0.1}\n",
            "c.yaml:2: train.optimizer: the mapping needs the optimizer's name (name: adam)",
        ),
        (
            "train:\n  optimizer: {name: sgd, clipnorm: 1, global_clipnorm: 1}\n",
            "c.yaml:2: train.optimizer.global_clipnorm: set one of clipnorm, global_clipnorm, not several",
        ),
        (
            "train:\n  optimizer: {name: sgd, nesterov: 1}\n",
            "c.yaml:2: train.optimizer.nesterov: expected true or false, got 1",
        ),
        (
            "train:\n  optimizer: {name: sgd, momentum: fast}\n",
            "c.yaml:2: train.optimizer.momentum: expected a number, got 'fast'",
        ),
    ],
    ids=["typo", "learning-rate", "name", "no-name", "two-clips", "flag", "number"],
)
def test_optimizer_mistakes(text, expected):
    assert error_of(text).startswith(expected)


def test_schedules_and_early_stopping_become_settings_with_monitor_and_mode_filled_in():
    cfg = load_yaml(
        "train:\n  schedule: {name: cosine, warmup_epochs: 2}\n  early_stopping: {patience: 3}\n"
        "probe:\n  schedule: {name: plateau}\n"
    )
    assert cfg.train.schedule == CosineSchedule(warmup_epochs=2)
    assert cfg.train.early_stopping == EarlyStopping("val/probe_accuracy", "max", 3, 0.0)
    assert cfg.probe.schedule == PlateauSchedule(monitor="val/probe_loss", mode="min")
    assert config.load_text(config.dump(cfg)) == cfg


def test_frozen_defaults_monitor_each_phase_its_own_metric():
    cfg = load_yaml(
        "probe:\n  strategy: frozen\n  early_stopping: {}\n  schedule: {name: plateau}\n"
        "train:\n  early_stopping: {}\n  schedule: {name: plateau}\n"
    )
    assert cfg.train.early_stopping.monitor == "val/reconstruction_loss"
    assert cfg.train.early_stopping.mode == "min"
    assert cfg.train.schedule.monitor == "val/reconstruction_loss"
    assert cfg.probe.early_stopping.monitor == "val/probe_accuracy"
    assert cfg.probe.schedule.monitor == "val/probe_loss"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "train:\n  early_stopping:\n    monitor: test/probe_accuracy\n",
            "c.yaml:3: train.early_stopping.monitor: 'test/probe_accuracy': "
            "the test split is never monitored",
        ),
        (
            "train:\n  early_stopping: {monitor: train/probe_accuracy}\n",
            "c.yaml:2: train.early_stopping.monitor: 'train/probe_accuracy': only a val/ metric can be "
            "monitored (valid here: val/reconstruction_loss, val/probe_loss, val/probe_accuracy)",
        ),
        (
            "train:\n  early_stopping: {monitor: val/probe_acuracy}\n",
            "c.yaml:2: train.early_stopping.monitor: unknown val metric 'val/probe_acuracy'; did you mean "
            "'val/probe_accuracy'? (expected one of: val/reconstruction_loss, val/probe_loss, "
            "val/probe_accuracy)",
        ),
        (
            "model: {kind: aae}\ntrain:\n  schedule: {name: plateau, monitor: val/classifier_accuracy}\n",
            "c.yaml:3: train.schedule.monitor: unknown val metric 'val/classifier_accuracy'",
        ),
        (
            "probe: {strategy: frozen}\ntrain:\n  early_stopping: {monitor: val/probe_accuracy}\n",
            "c.yaml:3: train.early_stopping.monitor: unknown val metric 'val/probe_accuracy' (expected one "
            "of: val/reconstruction_loss) (frozen: the autoencoder phase has no probe)",
        ),
        (
            "probe:\n  early_stopping: {patience: 2}\n",
            "c.yaml:2: probe.early_stopping: only applies to probe.strategy 'frozen'",
        ),
        (
            "train:\n  early_stopping: {patiense: 2}\n",
            "c.yaml:2: train.early_stopping.patiense: unknown key; "
            "did you mean 'train.early_stopping.patience'?",
        ),
        (
            "train:\n  schedule: {name: cosin}\n",
            "c.yaml:2: train.schedule.name: unknown schedule 'cosin'; did you mean 'cosine'?",
        ),
        (
            "train:\n  schedule: {name: step, decay_rate: 0.5}\n",
            "c.yaml:2: train.schedule.decay_rate: unknown key",
        ),
        (
            "train:\n  schedule: {name: step, boundaries: [5, 3]}\n",
            "c.yaml:2: train.schedule.boundaries: expected increasing epochs, got [5, 3]",
        ),
        (
            "train:\n  schedule: {warmup_epochs: 2}\n",
            "c.yaml:2: train.schedule: the mapping needs the schedule's name (one of: cosine, exponential,",
        ),
    ],
    ids=[
        "test",
        "train",
        "typo",
        "unsupervised-aae",
        "frozen-ae-phase",
        "probe-alternating",
        "key",
        "schedule",
        "other-schedule-key",
        "boundaries",
        "no-name",
    ],
)
def test_schedule_and_early_stopping_mistakes(text, expected):
    assert error_of(text).startswith(expected)


def test_the_semi_supervised_aae_may_monitor_its_class_head():
    cfg = load_yaml(
        "model: {kind: aae, aae: {semi_supervised: true}}\n"
        "train: {early_stopping: {monitor: val/classifier_accuracy}}\n"
    )
    assert cfg.train.early_stopping.mode == "max"


def test_a_set_option_error_names_the_option():
    message = error_of("name: x\n", ["train.early_stopping.monitor=test/probe_loss"])
    assert message.startswith(
        "--set train.early_stopping.monitor=test/probe_loss: train.early_stopping.monitor"
    )


def test_a_grid_varies_keys_inside_schedules_early_stopping_and_optimizers(tmp_path):
    from latentprobe import grid

    path = tmp_path / "g.yaml"
    path.write_text(
        "train: {early_stopping: {patience: 2}, schedule: {name: cosine}}\n"
        "grid:\n"
        "  train.early_stopping.patience: [2, 3]\n"
        "  train.schedule.warmup_epochs: [0, 1]\n"
        "  probe.optimizer.name: [adam, sgd]\n"
    )
    runs = grid.load(path).runs
    assert len(runs) == 8
    last = runs[-1].config
    assert last.train.early_stopping.patience == 3 and last.train.schedule.warmup_epochs == 1
    assert last.probe.optimizer == "sgd"
    path.write_text("grid:\n  train.early_stopping.patiense: [2, 3]\n")
    expected = r"g.yaml:2: grid.train.early_stopping.patiense\[0\]: unknown key; did you mean 'train.early"
    with pytest.raises(ConfigError, match=expected):
        grid.load(path)
