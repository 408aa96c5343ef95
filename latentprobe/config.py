"""The run configuration: YAML into typed, frozen dataclasses, strictly validated.

Every error is a :class:`~latentprobe.errors.ConfigError` naming the file, the dotted key (and the YAML
line where known) and what is wrong, so the CLI can print it on one line before anything trains.

A model variant's own settings live in a block named after its kind (``model.vae: {beta: 4}``); the
block is checked against the kind's settings dataclass, found by :func:`latentprobe.kinds.resolve`. For
the built-in kinds it is plain data, like every name list the checks read (networks, activations,
optimizers): checking such a config imports no Keras, no TensorFlow and nothing of ``latentprobe.models``
(a plug-in kind imports its own class).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from latentprobe import kinds
from latentprobe.errors import ConfigError, ConfigErrors, collect
from latentprobe.settings import (
    ACTIVATIONS,
    NETWORKS,
    NOT_A_KEY,
    build,
    choice_problem,
    join_key,
    kind_of,
    positive,
)
from latentprobe.training_controls import resolve_controls


@dataclass(frozen=True)
class DataConfig:
    """Which data, and how the train split is divided."""

    name: Literal["digits", "mnist", "fashion_mnist", "npz", "folder"] = "digits"
    path: str | None = None
    labels: int | Literal["all"] = field(default="all", metadata=positive())
    validation: int | float = field(default=0.1, metadata=positive())
    limit: int | None = field(default=None, metadata=positive())
    # Image folders (data.name folder, and a data.unlabeled folder): [H, W] to resize to, the colour.
    image_size: tuple[int, ...] | None = field(default=None, metadata=positive())
    color: Literal["grayscale", "rgb"] | None = None
    # data.name folder without a test/ sub-folder: the fraction of each class held out as the test split.
    test: float = field(default=0.2, metadata=positive())
    # Examples without labels for the autoencoder: a folder of images (any layout) or an .npz (x_unlabeled).
    unlabeled: str | None = None


@dataclass(frozen=True)
class ModelConfig:
    """The autoencoder: its kind (built in, installed or an import path: ``latentprobe.kinds``), its shape."""

    kind: str = "ae"
    network: str = "dense"
    latent: int | tuple[int, ...] = field(default=8, metadata=positive())
    hidden: tuple[int, ...] = field(default=(128, 64), metadata=positive())
    activation: str = "relu"
    reconstruction_loss: Literal["bce", "mse"] = "bce"
    # kind 'pretrained' only (PRETRAINED_KEYS; see latentprobe.models.pretrained): a saved Keras encoder,
    # which of its outputs is the code, an optional decoder, the input range it expects, and modules to
    # import first (where its custom layers are registered).
    encoder: str | None = None
    output: str | int | None = field(default=None, metadata={"min": 0})
    decoder: str | None = None
    input_range: Literal["unit", "symmetric", "byte", "standardized"] = "unit"
    imports: tuple[str, ...] = ()
    # The variant's settings (an instance of its Settings class); YAML key: model.<block> (kinds.py).
    settings: Any = field(default=None, metadata=NOT_A_KEY)


@dataclass(frozen=True)
class ProbeConfig:
    """The classifier trained on latent codes, and how its training interleaves with the autoencoder's."""

    strategy: Literal["alternating", "frozen"] = "alternating"
    every: Literal["step", "epoch"] = "step"
    head: Literal["linear", "mlp"] = "linear"
    hidden: tuple[int, ...] = field(default=(64,), metadata=positive())
    epochs: int = field(default=10, metadata=positive())
    # A Keras optimizer's name, or {name: ..., <argument>: ...} (checked in latentprobe.training_controls).
    optimizer: Any = "adam"
    learning_rate: float = field(default=1e-3, metadata=positive())
    # null, or {name: cosine | exponential | step | plateau, ...} (a settings.SCHEDULES class once loaded).
    schedule: Any = None
    # frozen only: null, or a settings.EarlyStopping mapping for the probe phase.
    early_stopping: Any = None
    batch_size: int | None = field(default=None, metadata=positive())


@dataclass(frozen=True)
class TrainConfig:
    """The autoencoder's optimisation."""

    epochs: int = field(default=10, metadata=positive())
    batch_size: int = field(default=128, metadata=positive())
    optimizer: Any = "adam"  # as probe.optimizer
    learning_rate: float = field(default=1e-3, metadata=positive())
    schedule: Any = None  # as probe.schedule
    early_stopping: Any = None  # null, or a settings.EarlyStopping mapping
    device: Literal["auto", "cpu", "gpu"] = "auto"
    # mixed: Keras's mixed precision policy (float16 on a GPU, bfloat16 on a CPU), float32 variables.
    precision: Literal["float32", "mixed"] = "float32"
    # auto: XLA where it was measured to be faster (strategies.resolve_jit_compile); true; false.
    jit_compile: bool | Literal["auto"] = "auto"


@dataclass(frozen=True)
class OutputConfig:
    """Where runs are written."""

    dir: str = "runs"
    # An MLflow tracking URI (sqlite:///runs/mlflow.db, http://host:5000): every run is also logged there.
    mlflow: str | None = None


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


def _as_tuple(value: int | tuple[int, ...]) -> tuple[int, ...]:
    return (value,) if isinstance(value, int) else tuple(value)


# --------------------------------------------------------------------------------------------------
# Loading


Overrides = Sequence[str]


def load(path: str | Path, overrides: Overrides = ()) -> RunConfig:
    """Read a YAML config file, apply ``key.path=value`` overrides and validate.

    Raises:
        ConfigError: the first problem found, naming the file, the dotted key and the YAML line (or
            the ``--set`` option that set the key).
    """
    source = str(path)
    return load_text(read_file(Path(path), source), overrides, source)


def read_file(path: Path, source: str) -> str:
    """The config file's text; a missing, unreadable or non-UTF-8 file is a ConfigError naming it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("", "file not found", source) from None
    except OSError as exc:
        raise ConfigError("", f"cannot read file ({exc.strerror})", source) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            "", f"not a UTF-8 text file (byte 0x{data[exc.start]:02x} at offset {exc.start})", source
        ) from None


def load_text(text: str, overrides: Overrides = (), source: str = "<config>") -> RunConfig:
    """Like :func:`load`, from YAML text."""
    raw, lines = read_raw(text, overrides, source)
    return validate_raw(raw, lines, source, overrides)


#: The line :func:`read_raw` gives a key an override set: no line of the file holds its value.
SET_BY_OVERRIDE = 0


def read_raw(text: str, overrides: Overrides = (), source: str = "<config>") -> tuple[dict, dict[str, int]]:
    """Parse YAML config text and apply ``key.path=value`` overrides, without validating.

    Returns:
        The raw mapping (overrides applied) and each dotted key's 1-based YAML line; a key an override
        set (or one below it) maps to :data:`SET_BY_OVERRIDE`.

    Raises:
        ConfigError: the text is no YAML mapping, or an override is malformed.
    """
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
        raise ConfigError("", f"expected a mapping of keys at the top level, got {kind_of(raw)}", source)
    for item in overrides:
        dotted = _apply_override(raw, item)
        for key in list(lines):
            if _within(key, dotted):
                lines[key] = SET_BY_OVERRIDE
        lines[dotted] = SET_BY_OVERRIDE
    return raw, lines


def validate_raw(
    raw: dict[str, Any], lines: dict[str, int], source: str = "<config>", overrides: Overrides = ()
) -> RunConfig:
    """Validate a raw mapping from :func:`read_raw` into a :class:`RunConfig`.

    Args:
        raw: the mapping, overrides applied.
        lines: dotted key -> YAML line, as :func:`read_raw` gives it.
        source: the file, named in errors.
        overrides: the ``key.path=value`` items applied to ``raw``; an error in a key one of them set
            names that ``--set`` option instead of the file.

    Raises:
        ConfigError: the first problem found, located in the file (and line) or the ``--set`` option.
    """
    try:
        return from_dict(raw)
    except ConfigError as exc:
        raise locate_error(exc, source, lines, overrides) from None


def from_dict(raw: dict[str, Any]) -> RunConfig:
    """Validate a plain mapping (as YAML gives it) into a :class:`RunConfig`."""
    raw = dict(raw)
    model_raw = raw.get("model", {})
    if not isinstance(model_raw, dict):
        raise ConfigError("model", f"expected a mapping, got {kind_of(model_raw)}")
    model_raw = dict(model_raw)
    settings_raw, variant_block = _take_variant_block(model_raw)
    raw["model"] = model_raw
    # The config's and the settings block's mistakes are reported together.
    errors: list[ConfigError] = []
    config = None
    try:
        config = build(RunConfig, raw, "")
    except ConfigError as error:
        errors.append(error)
    name = config.model.kind if config is not None else model_raw.get("kind", ModelConfig.kind)
    settings = None
    if isinstance(name, str):  # a kind that is no string is a type error reported above
        try:
            kind = kinds.resolve(name)
            if kind.settings is None:
                if settings_raw:
                    raise ConfigError(f"model.{variant_block}", f"kind '{name}' takes no settings")
            else:
                settings = build(kind.settings, settings_raw or {}, f"model.{kind.block}")
        except ConfigError as error:
            errors.append(error)
    found = collect(errors)
    if found is not None:
        raise found
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, settings=settings))
    return _check_consistency(config)


def _take_variant_block(model_raw: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """Pop the ``model.<kind>`` settings block; a block for another kind is an error."""
    kind = model_raw.get("kind", ModelConfig.kind)
    own = kinds.block_of(kind) if isinstance(kind, str) else None
    found = None
    for name in list(model_raw):
        if name in kinds.blocks([kind]):
            if name != own:
                raise ConfigError(f"model.{name}", f"settings for kind '{name}', but model.kind is '{kind}'")
            found = model_raw.pop(name)
            if found is not None and not isinstance(found, dict):
                raise ConfigError(f"model.{name}", f"expected a mapping of settings, got {kind_of(found)}")
    return found, (own if found is not None else None)


def _check_consistency(config: RunConfig) -> RunConfig:
    """Settings that are valid alone but contradict each other; returns the config with its training
    controls (optimizers, schedules, early stopping) in canonical form."""
    if config.model.network not in NETWORKS:
        raise ConfigError("model.network", choice_problem(config.model.network, sorted(NETWORKS)))
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
    if config.data.name == "folder" and not config.data.path:
        raise ConfigError("data.path", "data.name 'folder' needs data.path (a folder of class sub-folders)")
    _check_image_options(config.data)
    v = config.data.validation
    if isinstance(v, float) and not v < 1:
        raise ConfigError("data.validation", f"a fraction must be below 1, got {v}")
    if config.probe.strategy == "frozen" and config.probe.every != ProbeConfig.every:
        raise ConfigError("probe.every", "only applies to probe.strategy 'alternating', not 'frozen'")
    config = resolve_controls(config)
    if not config.name or "/" in config.name or config.name in (".", "..") or "\0" in config.name:
        raise ConfigError("name", f"expected a plain directory name, got {config.name!r}")
    _check_contradictions(config)
    return config


#: The model kind that measures an encoder trained elsewhere, and the keys only it reads.
PRETRAINED = kinds.PRETRAINED
PRETRAINED_KEYS = ("encoder", "output", "decoder", "input_range", "imports")
_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _check_pretrained(config: RunConfig) -> None:
    """Kind 'pretrained' needs an encoder and trains only the probe; its keys mean nothing elsewhere."""
    model = config.model
    if model.kind != PRETRAINED:
        for key in PRETRAINED_KEYS:
            if getattr(model, key) != getattr(ModelConfig, key):
                raise ConfigError(f"model.{key}", f"only applies to model.kind '{PRETRAINED}'")
        return
    if not model.encoder:
        raise ConfigError(
            "model.encoder", "kind 'pretrained' needs the path of a saved Keras encoder (.keras or .h5)"
        )
    for key in ("encoder", "decoder"):
        value = getattr(model, key)
        if value is not None and ("\0" in value or not value.strip()):
            raise ConfigError(f"model.{key}", f"expected a file system path, got {value!r}")
    for i, name in enumerate(model.imports):
        if not _MODULE_NAME.match(name):
            raise ConfigError(
                f"model.imports[{i}]", f"expected a module name such as my_layers, got {name!r}"
            )
    if config.probe.strategy != "frozen":
        raise ConfigError(
            "probe.strategy",
            "kind 'pretrained' trains only the probe on the frozen encoder: use probe.strategy 'frozen'",
        )


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
    _check_pretrained(config)


_MAX_SEED = 2**32 - 1


def _check_image_options(data: DataConfig) -> None:
    """The image-folder keys: a size of two, a fraction below 1, and only where an image folder is read."""
    if data.image_size is not None and len(data.image_size) != 2:
        raise ConfigError("data.image_size", f"expected [height, width], got {list(data.image_size)}")
    if not data.test < 1:
        raise ConfigError("data.test", f"a fraction must be below 1, got {data.test}")
    if data.name != "folder" and data.test != DataConfig.test:
        raise ConfigError(
            "data.test", "only applies to data.name 'folder' (the others have their own test split)"
        )
    for key in ("image_size", "color"):
        if getattr(data, key) is not None and data.name != "folder" and data.unlabeled is None:
            raise ConfigError(
                f"data.{key}",
                "only applies to image folders (data.name 'folder', or a data.unlabeled folder)",
            )
    if data.unlabeled is not None and ("\0" in data.unlabeled or not data.unlabeled.strip()):
        raise ConfigError("data.unlabeled", f"expected a file system path, got {data.unlabeled!r}")


def _check_activation(name: str) -> None:
    # keras.activations.get is case-sensitive: "Relu" fails to build a layer, so it fails here.
    if name not in ACTIVATIONS:
        raise ConfigError("model.activation", choice_problem(name, ACTIVATIONS, what="activation"))


# --------------------------------------------------------------------------------------------------
# Overrides and YAML line numbers


def _apply_override(raw: dict[str, Any], item: str) -> str:
    """``a.b.c=value``: the value is parsed as a YAML scalar or flow list (``[2, 3]``); returns ``a.b.c``."""
    if "=" not in item:
        raise ConfigError("", f"override {item!r} is not of the form key.path=value", "--set")
    dotted, _, text = item.partition("=")
    dotted = dotted.strip()
    parts = dotted.split(".")
    if parts[0] == "grid" and len(parts) > 2:  # grid's keys are themselves dotted: grid.model.kind=[...]
        parts = ["grid", ".".join(parts[1:])]
    where = f"--set {item}"
    if not all(parts):
        raise ConfigError(dotted, "empty part in the override's key", where)
    try:
        value = _yaml_load(text) if text.strip() else None
    except yaml.YAMLError:
        raise ConfigError(dotted, f"cannot parse override value {text!r} as YAML", where) from None
    node = raw
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(".".join(parts[: i + 1]), f"is {kind_of(child)}, not a mapping of keys", where)
        node = child
    node[parts[-1]] = value
    return dotted


def _within(key: str, dotted: str) -> bool:
    """Whether ``key`` is ``dotted`` or lies below it (``dotted.x``, ``dotted[0]``)."""
    return key == dotted or key.startswith((f"{dotted}.", f"{dotted}["))


def _override_of(key: str, overrides: Overrides) -> str | None:
    """The last ``--set`` item that set ``key``, a key below it or one above it, if any."""
    for item in reversed(overrides):
        dotted = item.partition("=")[0].strip()
        if "=" in item and (_within(key, dotted) or (key and _within(dotted, key))):
            return item
    return None


def locate_error(
    error: ConfigError, source: str, lines: dict[str, int], overrides: Overrides = ()
) -> ConfigError:
    """Name where a key's bad value came from: the ``--set`` option that set it, or the file's line."""
    if isinstance(error, ConfigErrors):  # each mistake where it came from, in file order
        located = [locate_error(e, source, lines, overrides) for e in error.errors]
        return ConfigErrors(sorted(located, key=file_order))
    item = _override_of(error.key, overrides)
    if item is not None:
        return ConfigError(error.key, error.problem, f"--set {item}")
    return error.located(source, line_of(lines, error.key))


def file_order(error: ConfigError) -> tuple[int, int]:
    """Sort key of located errors: the file's by line, then those of ``--set`` options and unknown lines."""
    if error.line is not None:
        return (0, error.line)
    return (1, 0)


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
            key = join_key(prefix, str(key_node.value))
            lines[key] = key_node.start_mark.line + 1
            lines.update(_key_lines(value_node, key))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[f"{prefix}[{i}]"] = item.start_mark.line + 1
    return lines


def locate(error: ConfigError, path: str | Path, overrides: Overrides = ()) -> ConfigError:
    """Name where a key's value came from in an error raised without it (e.g. by data): the ``--set``
    option among ``overrides`` that set the key, else the config file and the key's line in it."""
    if error.source is not None:
        return error
    try:
        lines = _key_lines(yaml.compose(Path(path).read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        lines = {}
    return locate_error(error, str(path), lines, overrides)


def line_of(lines: dict[str, int], key: str) -> int | None:
    """The YAML line of ``key`` or, failing that, of the nearest key above it that has one."""
    while key:
        if key in lines:
            return lines[key] if lines[key] != SET_BY_OVERRIDE else None
        if key.endswith("]"):  # a list item (grid.model.kind[2]): the list's line
            key = key[: key.rindex("[")]
        else:
            key = key.rsplit(".", 1)[0] if "." in key else ""
    return None


# --------------------------------------------------------------------------------------------------
# Writing back


def to_dict(config: RunConfig) -> dict[str, Any]:
    """A plain mapping of every setting (defaults filled in), as written to a run's ``config.yaml``."""
    out = _plain(config)
    settings = out["model"].pop("settings")
    if settings is not None:
        out["model"][kinds.block_of(config.model.kind)] = settings
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
