"""The run configuration: YAML into typed, frozen dataclasses, strictly validated.

Every error is a :class:`~latentprobe.errors.ConfigError` naming the file, the dotted key (and the YAML
line where known) and what is wrong, so the CLI can print it on one line before anything trains.

A model variant's own settings live in a block named after its kind (``model.vae: {beta: 4}``); the
block is checked against the variant's ``Settings`` dataclass, so adding a variant never touches this file.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from latentprobe.errors import ConfigError


def positive(**extra: Any) -> dict[str, Any]:
    """Field metadata: the value (or each list item) must be > 0."""
    return {"min": 0, "min_exclusive": True, **extra}


@dataclass(frozen=True)
class DataConfig:
    """Which data, and how the train split is divided."""

    name: Literal["digits", "mnist", "fashion_mnist", "npz"] = "digits"
    path: str | None = None
    labels: int | Literal["all"] = field(default="all", metadata=positive())
    validation: int | float = field(default=0.1, metadata=positive())
    limit: int | None = field(default=None, metadata=positive())


@dataclass(frozen=True)
class ModelConfig:
    """The autoencoder: its kind (a key of ``latentprobe.models.MODELS``) and its shape."""

    kind: str = "ae"
    network: str = "dense"
    latent: int | tuple[int, ...] = field(default=8, metadata=positive())
    hidden: tuple[int, ...] = field(default=(128, 64), metadata=positive())
    activation: str = "relu"
    reconstruction_loss: Literal["bce", "mse"] = "bce"
    # The variant's settings (an instance of MODELS[kind].Settings); YAML key: model.<kind>.
    settings: Any = None


@dataclass(frozen=True)
class ProbeConfig:
    """The classifier trained on latent codes, and how its training interleaves with the autoencoder's."""

    strategy: Literal["alternating", "frozen"] = "alternating"
    every: Literal["step", "epoch"] = "step"
    head: Literal["linear", "mlp"] = "linear"
    hidden: tuple[int, ...] = field(default=(64,), metadata=positive())
    epochs: int = field(default=10, metadata=positive())
    optimizer: str = "adam"
    learning_rate: float = field(default=1e-3, metadata=positive())
    batch_size: int | None = field(default=None, metadata=positive())


@dataclass(frozen=True)
class TrainConfig:
    """The autoencoder's optimisation."""

    epochs: int = field(default=10, metadata=positive())
    batch_size: int = field(default=128, metadata=positive())
    optimizer: str = "adam"
    learning_rate: float = field(default=1e-3, metadata=positive())
    device: Literal["auto", "cpu", "gpu"] = "auto"
    # mixed: Keras's mixed precision policy (float16 on a GPU, bfloat16 on a CPU), float32 variables.
    precision: Literal["float32", "mixed"] = "float32"
    jit_compile: bool = True


@dataclass(frozen=True)
class OutputConfig:
    """Where runs are written."""

    dir: str = "runs"


@dataclass(frozen=True)
class RunConfig:
    """One YAML file: possibly several runs (a list of latents or seeds)."""

    name: str = "run"
    seed: int | tuple[int, ...] = 0
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    probe: ProbeConfig = ProbeConfig()
    train: TrainConfig = TrainConfig()
    output: OutputConfig = OutputConfig()

    @property
    def latents(self) -> tuple[int, ...]:
        return _as_tuple(self.model.latent)

    @property
    def seeds(self) -> tuple[int, ...]:
        return _as_tuple(self.seed)

    def expand(self) -> list[RunConfig]:
        """One config per (latent, seed) pair, each with a single int latent and seed."""
        return [
            dataclasses.replace(self, seed=seed, model=dataclasses.replace(self.model, latent=latent))
            for latent in self.latents
            for seed in self.seeds
        ]

    @property
    def is_single(self) -> bool:
        return isinstance(self.model.latent, int) and isinstance(self.seed, int)


def with_seeds(config: RunConfig, count: int) -> RunConfig:
    """The config run under ``count`` seeds, counting up from its own seed (``train --seeds N``).

    Raises:
        ConfigError: the config already lists several seeds, or ``count`` is below 1.
    """
    if count < 1:
        raise ConfigError("seed", f"expected a number of seeds >= 1, got {count}", "--seeds")
    if len(config.seeds) > 1:
        raise ConfigError(
            "seed",
            f"expected a single seed in the config to count up from, got {list(config.seeds)}",
            "--seeds",
        )
    first = config.seeds[0]
    return dataclasses.replace(config, seed=first if count == 1 else tuple(range(first, first + count)))


def _as_tuple(value: int | tuple[int, ...]) -> tuple[int, ...]:
    return (value,) if isinstance(value, int) else tuple(value)


# --------------------------------------------------------------------------------------------------
# Loading


def load(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Read a YAML config file, apply ``key.path=value`` overrides and validate.

    Raises:
        ConfigError: the first problem found, naming the file, the dotted key and the YAML line.
    """
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError("", "file not found", source) from None
    except OSError as exc:
        raise ConfigError("", f"cannot read file ({exc.strerror})", source) from None
    return load_text(text, overrides, source)


def load_text(text: str, overrides: list[str] | tuple[str, ...] = (), source: str = "<config>") -> RunConfig:
    """Like :func:`load`, from YAML text."""
    try:
        raw = _yaml_load(text)
        lines = _key_lines(yaml.compose(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        line = mark.line + 1 if mark is not None else None
        raise ConfigError("", f"invalid YAML: {problem}", source, line) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("", f"expected a mapping of keys at the top level, got {_kind(raw)}", source)
    for item in overrides:
        _apply_override(raw, item, source)
    try:
        return from_dict(raw)
    except ConfigError as exc:
        raise exc.located(source, _line_of(lines, exc.key)) from None


def from_dict(raw: dict[str, Any]) -> RunConfig:
    """Validate a plain mapping (as YAML gives it) into a :class:`RunConfig`."""
    raw = dict(raw)
    model_raw = raw.get("model", {})
    if not isinstance(model_raw, dict):
        raise ConfigError("model", f"expected a mapping, got {_kind(model_raw)}")
    model_raw = dict(model_raw)
    settings_raw, variant_block = _take_variant_block(model_raw)
    raw["model"] = model_raw
    config = _build(RunConfig, raw, "")
    kind_cls = _model_class(config.model.kind)
    settings_cls = getattr(kind_cls, "Settings", None)
    if settings_cls is None:
        if settings_raw:
            raise ConfigError(f"model.{variant_block}", f"kind '{config.model.kind}' takes no settings")
        settings = None
    else:
        settings = _build(settings_cls, settings_raw or {}, f"model.{config.model.kind}")
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, settings=settings))
    _check_consistency(config)
    return config


def _take_variant_block(model_raw: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """Pop the ``model.<kind>`` settings block; a block for another kind is an error."""
    from latentprobe.models import MODELS

    kind = model_raw.get("kind", ModelConfig.kind)
    found = None
    for name in list(model_raw):
        if name in MODELS:
            if name != kind:
                raise ConfigError(f"model.{name}", f"settings for kind '{name}', but model.kind is '{kind}'")
            found = model_raw.pop(name)
            if found is not None and not isinstance(found, dict):
                raise ConfigError(f"model.{name}", f"expected a mapping of settings, got {_kind(found)}")
    return found, (kind if found is not None else None)


def _model_class(kind: str) -> type:
    from latentprobe.models import MODELS

    if kind not in MODELS:
        raise ConfigError("model.kind", _choice_problem(kind, sorted(MODELS)))
    return MODELS[kind]


def _check_consistency(config: RunConfig) -> None:
    """Settings that are valid alone but contradict each other."""
    from latentprobe.models.networks import NETWORKS

    if config.model.network not in NETWORKS:
        raise ConfigError("model.network", _choice_problem(config.model.network, sorted(NETWORKS)))
    if not config.latents:
        raise ConfigError("model.latent", "the list of latent sizes is empty")
    if not config.seeds:
        raise ConfigError("seed", "the list of seeds is empty")
    if len(set(config.latents)) != len(config.latents):
        raise ConfigError("model.latent", f"repeated latent sizes in {list(config.latents)}")
    if len(set(config.seeds)) != len(config.seeds):
        raise ConfigError("seed", f"repeated seeds in {list(config.seeds)}")
    if any(s < 0 for s in config.seeds):
        raise ConfigError("seed", f"expected seeds >= 0, got {config.seed}")
    if config.data.name == "npz" and not config.data.path:
        raise ConfigError(
            "data.path", "data.name 'npz' needs data.path (a .npz with x_train, y_train, x_test, y_test)"
        )
    v = config.data.validation
    if isinstance(v, float) and not v < 1:
        raise ConfigError("data.validation", f"a fraction must be below 1, got {v}")
    if config.probe.strategy == "frozen" and config.probe.every != ProbeConfig.every:
        raise ConfigError("probe.every", "only applies to probe.strategy 'alternating', not 'frozen'")
    for key in ("train.optimizer", "probe.optimizer"):
        section, name = key.split(".")
        _check_optimizer(getattr(getattr(config, section), name), key)
    if not config.name or "/" in config.name or config.name in (".", "..") or "\0" in config.name:
        raise ConfigError("name", f"expected a plain directory name, got {config.name!r}")
    _check_contradictions(config)


def _check_contradictions(config: RunConfig) -> None:
    """Settings each valid alone that cannot hold together, and values the runtime would choke on."""
    data = config.data
    if any(s > _MAX_SEED for s in config.seeds):
        raise ConfigError("seed", f"expected seeds <= {_MAX_SEED} (NumPy's limit), got {config.seed}")
    for key, value in (("output.dir", config.output.dir), ("data.path", data.path)):
        if value is not None and ("\0" in value or not value.strip()):
            raise ConfigError(key, f"expected a file system path, got {value!r}")
    if data.path is not None and data.name == "digits":
        raise ConfigError("data.path", "data.name 'digits' is bundled with scikit-learn and reads no file")
    if data.limit is not None:
        if isinstance(data.labels, int) and data.labels > data.limit:
            raise ConfigError("data.labels", f"{data.labels} labels but data.limit keeps only {data.limit}")
        if isinstance(data.validation, int) and data.validation >= data.limit:
            raise ConfigError(
                "data.validation",
                f"holds out {data.validation} of the {data.limit} examples data.limit keeps, "
                "leaving no training data",
            )
    _check_activation(config.model.activation)


_MAX_SEED = 2**32 - 1


def _check_activation(name: str) -> None:
    import keras  # already imported by the model registry that checked model.kind

    try:
        keras.activations.get(name)
    except (ValueError, TypeError):
        raise ConfigError(
            "model.activation", f"unknown activation {name!r} (e.g. relu, tanh, elu, gelu)"
        ) from None


_OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adadelta", "adagrad", "adamax", "nadam", "lion")


def _check_optimizer(name: str, key: str) -> None:
    # keras.optimizers.get would accept these too; checking the name here keeps `validate` free of Keras.
    if name.lower() not in _OPTIMIZERS:
        raise ConfigError(key, _choice_problem(name, list(_OPTIMIZERS)))


# --------------------------------------------------------------------------------------------------
# Generic dataclass validation


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(prefix, f"expected a mapping, got {_kind(raw)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "settings"}
    hints = typing.get_type_hints(cls)
    for key in raw:
        if key not in fields:
            dotted = _join(prefix, str(key))
            close = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.5)
            hint = f"; did you mean '{_join(prefix, close[0])}'?" if close else ""
            valid = ", ".join(fields)
            raise ConfigError(dotted, f"unknown key{hint} (valid keys here: {valid})")
    values = {}
    for name, f in fields.items():
        if name not in raw:
            continue
        key = _join(prefix, name)
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, raw[name] if raw[name] is not None else {}, key)
        else:
            values[name] = _coerce(raw[name], hint, key, f.metadata)
    return cls(**values)


def _coerce(value: Any, hint: Any, key: str, meta: typing.Mapping[str, Any]) -> Any:
    """Check ``value`` against a type hint; return it in canonical form (lists become tuples)."""
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
    raise ConfigError(key, f"expected {' or '.join(dict.fromkeys(errors))}, got {_show(value)}")


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
            raise ConfigError(key, _choice_problem(value, list(choices)))
        raise _Mismatch(" or ".join(repr(c) for c in choices))
    if origin is tuple:
        (item_hint, _) = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise _Mismatch(f"a list of {_describe(item_hint)}s")
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


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return " or ".join(repr(c) for c in typing.get_args(hint))
    if origin is tuple:
        return f"a list of {_describe(typing.get_args(hint)[0])}s"
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", type(None): "null"}
    return names.get(hint, str(hint))


def _choice_problem(value: Any, choices: list[str]) -> str:
    close = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown value {_show(value)}{hint} (expected one of: {', '.join(choices)})"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (dict, list)):
        text = yaml.safe_dump(value, default_flow_style=True).strip()
        return text if len(text) < 60 else text[:57] + "..."
    return "null" if value is None else str(value)


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "nothing"}.get(
        type(value), f"{_show(value)}"
    )


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


# --------------------------------------------------------------------------------------------------
# Overrides and YAML line numbers


def _apply_override(raw: dict[str, Any], item: str, source: str) -> None:
    """``a.b.c=value``: the value is parsed as a YAML scalar or flow list (``[2, 3]``)."""
    if "=" not in item:
        raise ConfigError("", f"override {item!r} is not of the form key.path=value", "--set")
    dotted, _, text = item.partition("=")
    dotted = dotted.strip()
    parts = dotted.split(".")
    if not all(parts):
        raise ConfigError(dotted, "empty part in the override's key", "--set")
    try:
        value = _yaml_load(text) if text.strip() else None
    except yaml.YAMLError:
        raise ConfigError(dotted, f"cannot parse override value {text!r} as YAML", "--set") from None
    node = raw
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(".".join(parts[: i + 1]), f"is {_kind(child)}, not a mapping of keys", "--set")
        node = child
    node[parts[-1]] = value


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, reading ``1e-3`` as a float (YAML 1.2) rather than the string '1e-3'."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _yaml_load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def _key_lines(node: yaml.Node | None, prefix: str = "") -> dict[str, int]:
    """Map each dotted key of a composed YAML document to its 1-based line."""
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = _join(prefix, str(key_node.value))
            lines[key] = key_node.start_mark.line + 1
            lines.update(_key_lines(value_node, key))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[f"{prefix}[{i}]"] = item.start_mark.line + 1
    return lines


def locate(error: ConfigError, path: str | Path) -> ConfigError:
    """Name the config file (and the key's line in it) in an error raised without them, e.g. by data."""
    if error.source is not None:
        return error
    try:
        lines = _key_lines(yaml.compose(Path(path).read_text()))
    except (OSError, yaml.YAMLError):
        lines = {}
    return error.located(str(path), _line_of(lines, error.key))


def _line_of(lines: dict[str, int], key: str) -> int | None:
    while key:
        if key in lines:
            return lines[key]
        key = key.rsplit(".", 1)[0] if "." in key else ""
    return None


# --------------------------------------------------------------------------------------------------
# Writing back


def to_dict(config: RunConfig) -> dict[str, Any]:
    """A plain mapping of every setting (defaults filled in), as written to a run's ``config.yaml``."""
    out = _plain(config)
    settings = out["model"].pop("settings")
    if settings is not None:
        out["model"][config.model.kind] = settings
    return out


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def dump(config: RunConfig) -> str:
    """YAML text of :func:`to_dict`, loadable again with :func:`load_text`."""
    return yaml.safe_dump(to_dict(config), sort_keys=False)
