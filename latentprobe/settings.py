"""The config's schema as plain data: generic dataclass checking and each model variant's settings.

Nothing here imports TensorFlow, Keras or ``latentprobe.models``, so checking a config (``latentprobe
validate``, every config error) costs no TensorFlow start-up. The variants read their settings classes
from here; tests keep the name lists below in step with Keras and with the model registry.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Union

import yaml

from latentprobe.errors import ConfigError, collect


def positive(**extra: Any) -> dict[str, Any]:
    """Field metadata: the value (or each list item) must be > 0."""
    return {"min": 0, "min_exclusive": True, **extra}


#: Field metadata of a field that :func:`build` does not read from its own key (filled in afterwards).
NOT_A_KEY = {"not_a_key": True}


# --------------------------------------------------------------------------------------------------
# Each variant's settings: the block ``model.<kind>`` of a config


@dataclass(frozen=True)
class DenoisingSettings:
    """``model.dae``: the corruption."""

    noise: Literal["gaussian", "mask"] = "gaussian"
    std: float = field(default=0.3, metadata={"min": 0})
    fraction: float = field(default=0.3, metadata={"min": 0, "max": 0.999})


@dataclass(frozen=True)
class VAESettings:
    """``model.vae``: the KL weight and what the probe reads."""

    beta: float = field(default=1.0, metadata=positive())
    probe: Literal["mean", "sample"] = "mean"


@dataclass(frozen=True)
class SparseSettings:
    """``model.sparse``: the activity penalty on the code and the weight decay."""

    penalty: Literal["kl", "l1"] = "kl"
    rho: float = field(default=0.05, metadata={**positive(), "max": 0.999})
    beta: float = field(default=3.0, metadata={"min": 0})
    weight: float = field(default=1e-5, metadata={"min": 0})  # the l1 weight
    weight_decay: float = field(default=0.0, metadata={"min": 0})


@dataclass(frozen=True)
class AdversarialSettings:
    """``model.aae``: the priors, the discriminators and the phases' learning rates."""

    semi_supervised: bool = False
    prior_std: float = field(default=1.0, metadata=positive())
    discriminator_hidden: tuple[int, ...] = field(default=(1000, 1000), metadata=positive())
    discriminator_learning_rate: float = field(default=1e-4, metadata=positive())
    generator_learning_rate: float = field(default=1e-4, metadata=positive())
    supervised_learning_rate: float = field(default=1e-3, metadata=positive())
    # Gaussian noise on the encoder's input in training (0: none); a cheap regulariser for 1000 labels.
    noise_std: float = field(default=0.0, metadata={"min": 0})


#: ``model.kind`` -> the settings class of its ``model.<kind>`` block (None: the kind takes no settings).
#: The same keys as ``latentprobe.models.MODELS``, whose classes name these as ``Settings``.
VARIANT_SETTINGS: dict[str, type | None] = {
    "ae": None,
    "dae": DenoisingSettings,
    "vae": VAESettings,
    "sparse": SparseSettings,
    "aae": AdversarialSettings,
    "supervised": None,
}

#: ``model.network``: the keys of ``latentprobe.models.networks.NETWORKS``.
NETWORKS: tuple[str, ...] = ("dense", "conv")

#: ``model.activation``: every name ``keras.activations.get`` accepts (Keras 3.15; it is case-sensitive).
ACTIVATIONS: tuple[str, ...] = (
    "celu",
    "elu",
    "exponential",
    "gelu",
    "glu",
    "hard_shrink",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "hard_tanh",
    "leaky_relu",
    "linear",
    "log_sigmoid",
    "log_softmax",
    "mish",
    "relu",
    "relu6",
    "selu",
    "sigmoid",
    "silu",
    "soft_shrink",
    "softmax",
    "softplus",
    "softsign",
    "sparse_plus",
    "sparse_sigmoid",
    "sparsemax",
    "squareplus",
    "swish",
    "tanh",
    "tanh_shrink",
    "threshold",
)

#: ``train.optimizer`` and ``probe.optimizer``: every optimizer ``keras.optimizers.get`` builds from a
#: name alone (Keras 3.15; case-insensitive). Keras exports ``Lamb`` but its ``get`` does not know it.
OPTIMIZERS: tuple[str, ...] = (
    "adadelta",
    "adafactor",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "ftrl",
    "lion",
    "muon",
    "nadam",
    "rmsprop",
    "schedulefreeadamw",
    "sgd",
)

#: The arguments every Keras optimizer takes besides ``learning_rate`` and ``name`` (Keras 3.15).
_OPTIMIZER_COMMON: tuple[str, ...] = (
    "weight_decay",
    "clipnorm",
    "clipvalue",
    "global_clipnorm",
    "use_ema",
    "ema_momentum",
    "ema_overwrite_frequency",
    "loss_scale_factor",
    "gradient_accumulation_steps",
)

#: ``train.optimizer: {name: ..., <argument>: ...}``: each optimizer's own arguments (Keras 3.15's
#: constructor signatures, without ``learning_rate``, which is ``train.learning_rate``, and ``name``).
#: ``tests/test_settings.py`` keeps the table in step with Keras.
OPTIMIZER_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "adadelta": ("rho", "epsilon", *_OPTIMIZER_COMMON),
    "adafactor": (
        "beta_2_decay",
        "epsilon_1",
        "epsilon_2",
        "clip_threshold",
        "relative_step",
        *_OPTIMIZER_COMMON,
    ),
    "adagrad": ("initial_accumulator_value", "epsilon", *_OPTIMIZER_COMMON),
    "adam": ("beta_1", "beta_2", "epsilon", "amsgrad", *_OPTIMIZER_COMMON),
    "adamax": ("beta_1", "beta_2", "epsilon", *_OPTIMIZER_COMMON),
    "adamw": ("beta_1", "beta_2", "epsilon", "amsgrad", *_OPTIMIZER_COMMON),
    "ftrl": (
        "learning_rate_power",
        "initial_accumulator_value",
        "l1_regularization_strength",
        "l2_regularization_strength",
        "l2_shrinkage_regularization_strength",
        "beta",
        *_OPTIMIZER_COMMON,
    ),
    "lion": ("beta_1", "beta_2", *_OPTIMIZER_COMMON),
    "muon": (
        "adam_beta_1",
        "adam_beta_2",
        "adam_weight_decay",
        "epsilon",
        "exclude_layers",
        "exclude_embeddings",
        "muon_a",
        "muon_b",
        "muon_c",
        "adam_lr_ratio",
        "momentum",
        "ns_steps",
        "nesterov",
        "rms_rate",
        *_OPTIMIZER_COMMON,
    ),
    "nadam": ("beta_1", "beta_2", "epsilon", *_OPTIMIZER_COMMON),
    "rmsprop": ("rho", "momentum", "epsilon", "centered", *_OPTIMIZER_COMMON),
    "schedulefreeadamw": ("beta_1", "beta_2", "epsilon", "warmup_steps", *_OPTIMIZER_COMMON),
    "sgd": ("momentum", "nesterov", *_OPTIMIZER_COMMON),
}

#: The optimizer arguments that take something other than a number: true/false, a whole number, a list
#: of layer names. Every other argument takes a number (or null for Keras's default).
OPTIMIZER_FLAGS: tuple[str, ...] = (
    "amsgrad",
    "centered",
    "exclude_embeddings",
    "nesterov",
    "relative_step",
    "use_ema",
)
OPTIMIZER_COUNTS: tuple[str, ...] = (
    "ema_overwrite_frequency",
    "gradient_accumulation_steps",
    "ns_steps",
    "warmup_steps",
)
OPTIMIZER_NAME_LISTS: tuple[str, ...] = ("exclude_layers",)
#: At most one of these may be set (Keras refuses two).
OPTIMIZER_CLIPPING: tuple[str, ...] = ("clipnorm", "clipvalue", "global_clipnorm")


# --------------------------------------------------------------------------------------------------
# Learning-rate schedules and early stopping: ``train.schedule``, ``probe.schedule``,
# ``train.early_stopping``, ``probe.early_stopping``


@dataclass(frozen=True)
class CosineSchedule:
    """Cosine decay (Keras ``CosineDecay``) from the base rate to ``alpha`` x the base rate."""

    name: Literal["cosine"] = "cosine"
    warmup_epochs: int = field(default=0, metadata={"min": 0})
    # Epochs the decay lasts after the warmup; null: the rest of the phase.
    decay_epochs: int | None = field(default=None, metadata=positive())
    alpha: float = field(default=0.0, metadata={"min": 0, "max": 1})


@dataclass(frozen=True)
class ExponentialSchedule:
    """Exponential decay (Keras ``ExponentialDecay``): x ``decay_rate`` every ``decay_epochs``."""

    name: Literal["exponential"] = "exponential"
    warmup_epochs: int = field(default=0, metadata={"min": 0})
    decay_rate: float = field(default=0.9, metadata=positive(max=1))
    decay_epochs: float = field(default=1.0, metadata=positive())
    staircase: bool = False


@dataclass(frozen=True)
class StepSchedule:
    """Piecewise constant (Keras ``PiecewiseConstantDecay``): x ``factor`` at each boundary epoch."""

    name: Literal["step"] = "step"
    warmup_epochs: int = field(default=0, metadata={"min": 0})
    boundaries: tuple[int, ...] = field(default=(), metadata=positive())
    factor: float = field(default=0.1, metadata=positive())


@dataclass(frozen=True)
class PlateauSchedule:
    """Keras's ``ReduceLROnPlateau`` on a validation metric, checked after every epoch."""

    name: Literal["plateau"] = "plateau"
    warmup_epochs: int = field(default=0, metadata={"min": 0})
    monitor: str | None = None  # null: val/reconstruction_loss (train), val/probe_loss (probe)
    mode: Literal["auto", "min", "max"] = "auto"
    factor: float = field(default=0.1, metadata=positive(max=0.999))
    patience: int = field(default=10, metadata=positive())
    min_delta: float = field(default=1e-4, metadata={"min": 0})
    cooldown: int = field(default=0, metadata={"min": 0})
    min_learning_rate: float = field(default=0.0, metadata={"min": 0})


#: ``schedule.name`` -> its settings class.
SCHEDULES: dict[str, type] = {
    "cosine": CosineSchedule,
    "exponential": ExponentialSchedule,
    "step": StepSchedule,
    "plateau": PlateauSchedule,
}


@dataclass(frozen=True)
class EarlyStopping:
    """Stop after ``patience`` epochs without an improvement of ``monitor`` by more than ``min_delta``;
    the run keeps the weights of its best epoch."""

    monitor: str | None = None  # null: val/probe_accuracy (val/reconstruction_loss: frozen's autoencoder)
    mode: Literal["auto", "min", "max"] = "auto"
    patience: int = field(default=5, metadata=positive())
    min_delta: float = field(default=0.0, metadata={"min": 0})


#: The val metrics of each built-in kind (``summary.json``'s ``metrics.val``), which ``monitor`` may name;
#: ``tests/test_settings.py`` measures every kind to keep this in step. A kind not listed (a plug-in)
#: is checked when its run starts.
VAL_METRICS: dict[str, tuple[str, ...]] = {
    "ae": ("reconstruction_loss",),
    "dae": ("reconstruction_loss",),
    "vae": ("reconstruction_loss", "kl_loss", "elbo_loss"),
    "sparse": (
        "reconstruction_loss",
        "sparsity_loss",
        "weight_decay_loss",
        "mean_activation",
        "near_zero_share",
    ),
    "aae": ("reconstruction_loss",),
    "supervised": ("classifier_loss", "classifier_accuracy"),
}
#: The probe's val metrics, every kind's.
PROBE_METRICS: tuple[str, ...] = ("probe_loss", "probe_accuracy")
#: The semi-supervised AAE's class head adds these.
CLASSIFIER_METRICS: tuple[str, ...] = ("classifier_loss", "classifier_accuracy")


def val_metrics(kind: str, settings: Any) -> tuple[str, ...] | None:
    """The autoencoder's val metrics of a built-in kind (its probe's aside), or None for a plug-in kind."""
    if kind not in VAL_METRICS:
        return None
    names = VAL_METRICS[kind]
    if kind == "aae" and settings is not None and settings.semi_supervised:
        names = (*names, *CLASSIFIER_METRICS)
    return names


def monitor_mode(monitor: str, mode: str) -> str:
    """``min`` or ``max``: ``auto`` maximises accuracies and minimises everything else (as Keras does)."""
    if mode != "auto":
        return mode
    return "max" if monitor.endswith("accuracy") else "min"


# --------------------------------------------------------------------------------------------------
# Generic dataclass validation


def build(cls: type, raw: Any, prefix: str) -> Any:
    """Check a mapping against the dataclass ``cls`` and build it; nested dataclass fields recurse.

    Args:
        cls: a dataclass whose field types :func:`coerce` understands.
        raw: the mapping, as YAML gives it.
        prefix: the dotted key of ``raw`` in the config ("" at the top), for error messages.

    Raises:
        ConfigError: an unknown key (with the closest valid one), a wrong type or a value out of range.
    """
    if not isinstance(raw, dict):
        raise ConfigError(prefix, f"expected a mapping, got {kind_of(raw)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("not_a_key")}
    hints = typing.get_type_hints(cls)
    # Every mistake in the mapping is reported at once (the CLI sorts them into file order).
    errors: list[ConfigError] = []
    for key in raw:
        if key not in fields:
            dotted = join_key(prefix, str(key))
            close = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.5)
            hint = f"; did you mean '{join_key(prefix, close[0])}'?" if close else ""
            valid = ", ".join(fields)
            errors.append(ConfigError(dotted, f"unknown key{hint} (valid keys here: {valid})"))
    values = {}
    for name, f in fields.items():
        if name not in raw:
            continue
        key = join_key(prefix, name)
        hint = hints[name]
        try:
            if dataclasses.is_dataclass(hint):
                values[name] = build(hint, raw[name] if raw[name] is not None else {}, key)
            else:
                values[name] = coerce(raw[name], hint, key, f.metadata)
        except ConfigError as error:
            errors.append(error)
    found = collect(errors)
    if found is not None:
        raise found
    return cls(**values)


def coerce(value: Any, hint: Any, key: str, meta: typing.Mapping[str, Any]) -> Any:
    """Check ``value`` against a type hint; return it in canonical form (lists become tuples).

    ``meta`` is the field's metadata: ``min`` (with ``min_exclusive``) and ``max`` bound numbers.
    """
    options = _union_members(hint)
    errors = []
    for option in options:
        try:
            return _coerce_one(value, option, key, meta)
        except _Mismatch as exc:
            errors.append(exc.expected)
        except ConfigError:
            if len(options) == 1:
                raise
            # A range error on one union member is the real problem when the type matched.
            if _type_matches(value, option):
                raise
            errors.append(_describe(option))
    raise ConfigError(key, f"expected {' or '.join(dict.fromkeys(errors))}, got {show(value)}")


class _Mismatch(Exception):
    def __init__(self, expected: str):
        self.expected = expected


def _union_members(hint: Any) -> tuple[Any, ...]:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _type_matches(value: Any, option: Any) -> bool:
    try:
        _coerce_one(value, option, "", {})
        return True
    except (_Mismatch, ConfigError):
        return False


def _coerce_one(value: Any, hint: Any, key: str, meta: typing.Mapping[str, Any]) -> Any:
    origin = typing.get_origin(hint)
    if hint is type(None):
        if value is None:
            return None
        raise _Mismatch("null")
    if origin is Literal:
        choices = typing.get_args(hint)
        if isinstance(value, str) and value in choices:
            return value
        if isinstance(value, str) and all(isinstance(c, str) for c in choices):
            raise ConfigError(key, choice_problem(value, list(choices)))
        raise _Mismatch(" or ".join(repr(c) for c in choices))
    if origin is tuple:
        (item_hint, _) = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise _Mismatch(f"a list of {_plural(_describe(item_hint))}")
        return tuple(_coerce_one(v, item_hint, f"{key}[{i}]", meta) for i, v in enumerate(value))
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch("true or false")
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Mismatch("an integer")
        _check_range(value, key, meta)
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Mismatch("a number")
        if not math.isfinite(value):
            raise ConfigError(key, f"expected a finite number, got {value}")
        _check_range(float(value), key, meta)
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise _Mismatch("a string")
        return value
    if hint is Any:
        return value
    raise TypeError(f"unsupported config type {hint!r} for {key}")


def _check_range(value: float, key: str, meta: typing.Mapping[str, Any]) -> None:
    low = meta.get("min")
    if low is not None:
        if meta.get("min_exclusive") and not value > low:
            raise ConfigError(key, f"expected a value > {low}, got {value}")
        if not meta.get("min_exclusive") and not value >= low:
            raise ConfigError(key, f"expected a value >= {low}, got {value}")
    high = meta.get("max")
    if high is not None and not value <= high:
        raise ConfigError(key, f"expected a value <= {high}, got {value}")


def _plural(described: str) -> str:
    """ "an integer" -> "integers", "a number" -> "numbers" (for "a list of ...")."""
    for article in ("an ", "a "):
        if described.startswith(article):
            return described[len(article) :] + "s"
    return described


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return " or ".join(repr(c) for c in typing.get_args(hint))
    if origin is tuple:
        return f"a list of {_plural(_describe(typing.get_args(hint)[0]))}"
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", type(None): "null"}
    return names.get(hint, str(hint))


# --------------------------------------------------------------------------------------------------
# Words for error messages


def choice_problem(value: Any, choices: list[str] | tuple[str, ...], what: str = "value") -> str:
    """The problem of a value not among ``choices``, suggesting the closest one."""
    close = difflib.get_close_matches(str(value), list(choices), n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown {what} {show(value)}{hint} (expected one of: {', '.join(choices)})"


def show(value: Any) -> str:
    """A config value as a message quotes it: strings quoted, mappings and lists as short YAML."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (dict, list)):
        text = yaml.safe_dump(value, default_flow_style=True).strip()
        return text if len(text) < 60 else text[:57] + "..."
    return "null" if value is None else str(value)


def kind_of(value: Any) -> str:
    """What a value is, in words ("a mapping", "a list", ...), for "expected X, got Y"."""
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "nothing"}.get(
        type(value), f"{show(value)}"
    )


def join_key(prefix: str, key: str) -> str:
    """``prefix.key``, or ``key`` at the top level."""
    return f"{prefix}.{key}" if prefix else key
