"""The config's training controls checked and put in canonical form: each optimizer's settings, the
learning-rate schedules and early stopping (``train.*`` and ``probe.*``).

Plain data only, like :mod:`latentprobe.settings`: an optimizer's arguments are checked against the
table ``settings.OPTIMIZER_ARGUMENTS``, a monitored metric against the kind's val metrics in
``settings.VAL_METRICS``, so ``latentprobe validate`` imports no Keras. What runs them is
:mod:`latentprobe.schedules` (learning rates) and :mod:`latentprobe.early_stopping` (the best epoch).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from latentprobe.errors import ConfigError, collect
from latentprobe.settings import (
    OPTIMIZER_ARGUMENTS,
    OPTIMIZER_CLIPPING,
    OPTIMIZER_COUNTS,
    OPTIMIZER_FLAGS,
    OPTIMIZER_NAME_LISTS,
    OPTIMIZERS,
    PROBE_METRICS,
    SCHEDULES,
    EarlyStopping,
    PlateauSchedule,
    build,
    choice_problem,
    kind_of,
    monitor_mode,
    show,
    val_metrics,
)

if TYPE_CHECKING:
    from latentprobe.config import RunConfig

VAL = "val/"


def resolve_controls(config: RunConfig) -> RunConfig:
    """``config`` with ``train``'s and ``probe``'s optimizer, schedule and early stopping checked and in
    canonical form (schedules and early stopping as settings dataclasses, monitors and modes filled in).

    Raises:
        ConfigError: every mistake found, each naming its dotted key.
    """
    errors: list[ConfigError] = []
    sections = {}
    for section in ("train", "probe"):
        block = getattr(config, section)
        values = {}
        for name, check in (("optimizer", _optimizer), ("schedule", _schedule)):
            try:
                values[name] = check(getattr(block, name), f"{section}.{name}")
            except ConfigError as error:
                errors.append(error)
        try:
            values["early_stopping"] = _early_stopping(block.early_stopping, f"{section}.early_stopping")
        except ConfigError as error:
            errors.append(error)
        sections[section] = values
    found = collect(errors)
    if found is not None:
        raise found
    config = dataclasses.replace(
        config,
        train=dataclasses.replace(config.train, **sections["train"]),
        probe=dataclasses.replace(config.probe, **sections["probe"]),
    )
    return _resolve_monitors(config)


# --------------------------------------------------------------------------------------------------
# Optimizers


def optimizer_name(spec: str | dict[str, Any]) -> str:
    """The Keras name of ``train.optimizer`` / ``probe.optimizer`` (a name, or a mapping with ``name``)."""
    return spec if isinstance(spec, str) else spec["name"]


def optimizer_arguments(spec: str | dict[str, Any]) -> dict[str, Any]:
    """The optimizer's arguments besides its name and learning rate."""
    return {} if isinstance(spec, str) else {k: v for k, v in spec.items() if k != "name"}


def _optimizer(value: Any, key: str) -> str | dict[str, Any]:
    if isinstance(value, str):
        return _optimizer_name(value, key)
    if not isinstance(value, dict):
        raise ConfigError(key, f"expected an optimizer's name or a mapping, got {kind_of(value)}")
    if "name" not in value:
        raise ConfigError(key, f"the mapping needs the optimizer's name (name: adam), got {show(value)}")
    if not isinstance(value["name"], str):
        raise ConfigError(f"{key}.name", f"expected an optimizer's name, got {show(value['name'])}")
    name = _optimizer_name(value["name"], f"{key}.name")
    accepted = OPTIMIZER_ARGUMENTS[name.lower()]
    errors = []
    for argument, given in value.items():
        dotted = f"{key}.{argument}"
        if argument == "name":
            continue
        if argument == "learning_rate":
            section = key.split(".")[0]
            problem = f"the learning rate is {section}.learning_rate, not a key here"
            errors.append(ConfigError(dotted, problem))
        elif argument not in accepted:
            problem = choice_problem(argument, accepted, what=f"argument of {name}")
            errors.append(ConfigError(dotted, problem.replace("expected one of", "valid here")))
        else:
            try:
                _check_argument(argument, given, dotted)
            except ConfigError as error:
                errors.append(error)
    clipping = [k for k in OPTIMIZER_CLIPPING if value.get(k) is not None]
    if len(clipping) > 1:
        errors.append(ConfigError(f"{key}.{clipping[1]}", f"set one of {', '.join(clipping)}, not several"))
    found = collect(errors)
    if found is not None:
        raise found
    if len(value) == 1:  # {name: adam} is the name alone
        return name
    return {"name": name, **{k: v for k, v in value.items() if k != "name"}}


def _optimizer_name(name: str, key: str) -> str:
    # keras.optimizers.get reads the name case-insensitively.
    if name.lower() not in OPTIMIZERS:
        raise ConfigError(key, choice_problem(name, OPTIMIZERS))
    return name


def _check_argument(argument: str, value: Any, key: str) -> None:
    if value is None:  # Keras's default
        return
    if argument in OPTIMIZER_FLAGS:
        ok, expected = isinstance(value, bool), "true or false"
    elif argument in OPTIMIZER_COUNTS:
        ok, expected = isinstance(value, int) and not isinstance(value, bool) and value >= 0, "a count >= 0"
    elif argument in OPTIMIZER_NAME_LISTS:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        expected = "a list of layer names"
    else:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
        expected = "a number"
    if not ok:
        raise ConfigError(key, f"expected {expected}, got {show(value)}")


# --------------------------------------------------------------------------------------------------
# Schedules and early stopping


def _schedule(value: Any, key: str) -> Any:
    if value is None or dataclasses.is_dataclass(value):
        return value
    if not isinstance(value, dict):
        raise ConfigError(key, f"expected null or a mapping with a name, got {kind_of(value)}")
    name = value.get("name")
    if name is None:
        raise ConfigError(key, f"the mapping needs the schedule's name (one of: {', '.join(SCHEDULES)})")
    if name not in SCHEDULES:
        raise ConfigError(f"{key}.name", choice_problem(name, list(SCHEDULES), what="schedule"))
    schedule = build(SCHEDULES[name], value, key)
    if name == "step":
        bounds = list(schedule.boundaries)
        if not bounds or bounds != sorted(set(bounds)):
            raise ConfigError(f"{key}.boundaries", f"expected increasing epochs, got {bounds}")
    return schedule


def _early_stopping(value: Any, key: str) -> EarlyStopping | None:
    if value is None or isinstance(value, EarlyStopping):
        return value
    return build(EarlyStopping, value, key)


def _resolve_monitors(config: RunConfig) -> RunConfig:
    """Fill in each monitor's default and mode; check it names a val metric of this kind and phase."""
    frozen = config.probe.strategy == "frozen"
    model = val_metrics(config.model.kind, config.model.settings)
    main = _main_metric(model)
    # What val holds after an epoch of each: frozen's autoencoder phase measures no probe, its probe
    # phase no autoencoder; alternating measures both.
    train_metrics = model if frozen else (None if model is None else (*model, *PROBE_METRICS))
    probe_metrics = PROBE_METRICS if frozen else train_metrics
    why_train = " (frozen: the autoencoder phase has no probe)" if frozen else ""
    why_probe = " (frozen: the probe phase measures the probe alone)" if frozen else ""
    train = config.train
    probe = config.probe
    if isinstance(train.schedule, PlateauSchedule):
        train = dataclasses.replace(
            train, schedule=_monitored(train.schedule, "train.schedule", main, train_metrics, why_train)
        )
    if isinstance(probe.schedule, PlateauSchedule):
        probe = dataclasses.replace(
            probe,
            schedule=_monitored(probe.schedule, "probe.schedule", "probe_loss", probe_metrics, why_probe),
        )
    if train.early_stopping is not None:
        default = main if frozen else "probe_accuracy"
        train = dataclasses.replace(
            train,
            early_stopping=_monitored(
                train.early_stopping, "train.early_stopping", default, train_metrics, why_train
            ),
        )
    if probe.early_stopping is not None:
        if not frozen:
            raise ConfigError(
                "probe.early_stopping",
                "only applies to probe.strategy 'frozen' (alternating: train.early_stopping stops the run)",
            )
        probe = dataclasses.replace(
            probe,
            early_stopping=_monitored(
                probe.early_stopping, "probe.early_stopping", "probe_accuracy", PROBE_METRICS, why_probe
            ),
        )
    return dataclasses.replace(config, train=train, probe=probe)


def _main_metric(model_metrics: tuple[str, ...] | None) -> str:
    """The autoencoder's own loss to monitor by default: the reconstruction, else its class head's loss."""
    if model_metrics is None or "reconstruction_loss" in model_metrics:
        return "reconstruction_loss"
    return model_metrics[0]


def _monitored(block: Any, key: str, default: str, available: tuple[str, ...] | None, why: str) -> Any:
    """``block`` with ``monitor`` (``val/<name>``) and ``mode`` (min or max) filled in and checked."""
    monitor = block.monitor if block.monitor is not None else VAL + default
    check_monitor(monitor, f"{key}.monitor", available, why)
    return dataclasses.replace(block, monitor=monitor, mode=monitor_mode(monitor, block.mode))


def check_monitor(monitor: str, key: str, available: tuple[str, ...] | None, why: str = "") -> None:
    """A monitor is a val metric that ``available`` (names without ``val/``; None: not known yet) holds.

    Raises:
        ConfigError: a test metric (never used for any choice), a train metric, or an unknown name.
    """
    split, _, name = monitor.partition("/")
    if split == "test":
        raise ConfigError(key, f"{monitor!r}: the test split is never monitored; monitor a val/ metric")
    valid = [VAL + m for m in available] if available is not None else None
    listing = f" (valid here: {', '.join(valid)}){why}" if valid else ""
    if split != "val" or not name:
        raise ConfigError(key, f"{monitor!r}: only a val/ metric can be monitored{listing}")
    if valid is not None and monitor not in valid:
        raise ConfigError(key, choice_problem(monitor, valid, what="val metric") + why)
