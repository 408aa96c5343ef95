"""A study's grid: a top-level ``grid:`` mapping of dotted config keys to lists, expanded into runs.

The study is the product of the lists. ``model.latent: [...]`` and ``seed: [...]`` are shorthands for
grid axes over those keys. Every combination is validated as a full config (``config.from_dict``) before
anything trains; an error caused by a grid value names it (``grid.model.kind[2]: ...``) with the YAML line
of that list item. A variant's settings block (``model.vae: {...}``) applies to the runs of that kind.

Run directory names are ``<kind>-z<latent>-s<seed>`` plus one short tag per other varying key, in the
grid's order (``vae-z8-s0-labels100``): deterministic, so running a study again finds its runs, and
unique by construction (every name has one ``-``-separated segment per axis, tags hold no ``-``, and the
tags of one axis are distinct).

Imports no TensorFlow (``config.from_dict`` decides what it imports).
"""

from __future__ import annotations

import copy
import dataclasses
import decimal
import difflib
import json
import re
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

from latentprobe import config as config_mod
from latentprobe import kinds as kinds_mod
from latentprobe.config import RunConfig
from latentprobe.errors import ConfigError, ConfigErrors

GRID = "grid"
#: The list shorthands of today's configs: a list under these keys is a grid axis over them.
SHORTHANDS = ("model.latent", "seed")
#: Keys a study cannot vary: they decide where the study itself lives.
FIXED = ("name", "output", "output.dir")
#: Short tags for long key names in run directory names.
ABBREVIATIONS = {
    "learning_rate": "lr",
    "batch_size": "bs",
    "epochs": "ep",
    "validation": "val",
    "reconstruction_loss": "recon",
    "activation": "act",
}


@dataclasses.dataclass(frozen=True)
class GridRun:
    """One combination: its directory name, the values of the varying keys, the validated config."""

    name: str
    values: dict[str, Any]
    config: RunConfig


@dataclasses.dataclass(frozen=True)
class Grid:
    """The expanded study: the varying dotted keys (in order), every axis's values, one run each."""

    keys: tuple[str, ...]
    axes: dict[str, list[Any]]
    runs: list[GridRun]

    def to_json(self) -> dict[str, list[Any]]:
        """The axes as plain JSON (for study.json)."""
        return {key: list(values) for key, values in self.axes.items()}


@dataclasses.dataclass(frozen=True)
class _Axis:
    key: str  # the config key it varies
    label: str  # how errors name it: grid.model.kind or, for a shorthand, model.latent
    values: list[Any]


def expand_grid(
    raw: dict[str, Any],
    lines: dict[str, int] | None = None,
    source: str = "<config>",
    variant_kinds: Collection[str] = (),
    overrides: Sequence[str] = (),
) -> Grid:
    """Expand a raw config mapping (as YAML gives it) with an optional ``grid:`` into validated runs.

    Args:
        raw: the config mapping; it is not modified.
        lines: dotted key (``grid.model.kind[2]``, ``model.vae``) -> 1-based YAML line, for errors.
        source: the config file's name, for errors.
        variant_kinds: settings block names to know beyond those of ``latentprobe.kinds`` (every
            built-in and installed kind, and the kinds the config names).
        overrides: the ``--set`` items applied to ``raw``: an error in a key one of them set names it.

    Raises:
        ConfigError: the first problem found, naming the file, the key (``grid.model.kind[2]`` for a
            grid value) and the line.
    """
    lines = lines or {}

    def error(key: str, problem: str, line_key: str | None = None) -> ConfigError:
        located = config_mod.locate_error(ConfigError(line_key or key, problem), source, lines, overrides)
        return ConfigError(key, problem, located.source, located.line)

    if not isinstance(raw, dict):
        raise error("", f"expected a mapping of keys at the top level, got {_kind(raw)}")
    base = copy.deepcopy(raw)
    axes = _read_axes(base, error, set(variant_kinds))
    mentioned = [_get_path(base, "model.kind")] + [v for a in axes if a.key == "model.kind" for v in a.values]
    variant_kinds = set(variant_kinds) | kinds_mod.blocks(mentioned)
    blocks = _take_variant_blocks(base, variant_kinds, error)
    defaults = config_mod.to_dict(config_mod.from_dict({}))
    for axis in axes:
        if not _is_config_key(axis.key, defaults, variant_kinds):
            raise error(axis.label, _unknown_key_problem(axis.key, defaults))

    combos = _product([axis.values for axis in axes])
    # Only well-formed kinds (a kind that is no string is reported by validation below).
    kinds = {
        kind
        for kind in (_value_at(_with_values(base, axes, combo), "model.kind", defaults) for combo in combos)
        if isinstance(kind, str)
    }
    # The settings block each run's kind reads (its own name, or an import path's class's kind).
    run_blocks = {kinds_mod.block_of(kind) for kind in kinds}
    # An unknown kind (a typo) is named by validation below, before a block without runs is.
    for kind in blocks if run_blocks <= {*variant_kinds, config_mod.PRETRAINED} else ():
        if kind not in run_blocks:
            present = ", ".join(sorted(map(str, kinds)))
            raise error(
                f"model.{kind}", f"settings for kind '{kind}', but no run has model.kind '{kind}' ({present})"
            )
    for axis in axes:
        parts = axis.key.split(".")
        if len(parts) >= 2 and parts[0] == "model" and parts[1] in variant_kinds and run_blocks != {parts[1]}:
            other = ", ".join(sorted(k for k in map(str, kinds) if kinds_mod.block_of(k) != parts[1]))
            raise error(
                axis.label, f"varies a setting of kind '{parts[1]}', but runs of kind {other} have none"
            )

    configs, unused = [], []
    for index, combo in enumerate(combos):
        run_raw = _with_values(base, axes, combo)
        kind = _value_at(run_raw, "model.kind", defaults)
        block = kinds_mod.block_of(kind) if isinstance(kind, str) else None
        if block in blocks and isinstance(run_raw.get("model"), dict):
            run_raw["model"][block] = _merge_block(blocks[block], run_raw["model"].get(block))
        unused.append(_drop_pretrained_keys(run_raw, kind, config_mod.PRETRAINED in kinds))
        try:
            configs.append(config_mod.from_dict(run_raw))
        except ConfigErrors as exc:  # every mistake, each where it came from, in file order
            located = [_locate(e, axes, combo, index, error) for e in exc.errors]
            raise ConfigErrors(sorted(located, key=config_mod.file_order)) from None
        except ConfigError as exc:
            raise _locate(exc, axes, combo, index, error) from None
    configs, combos, unused = _distinct(configs, combos, unused)

    varying = [axis for axis in axes if len(axis.values) > 1]
    names = _run_names(configs, varying, combos, [axes.index(a) for a in varying], unused)
    runs = [
        GridRun(
            name,
            {axis.key: None if axis.key in skip else combo[axes.index(axis)] for axis in varying},
            cfg,
        )
        for name, combo, cfg, skip in zip(names, combos, configs, unused, strict=True)
    ]
    return Grid(tuple(a.key for a in varying), {a.key: list(a.values) for a in axes}, runs)


def load(path: str | Path, overrides: Sequence[str] = (), seeds: int | None = None) -> Grid:
    """The study a config file describes, with ``--set`` overrides and ``train --seeds N``, validated.

    Raises:
        ConfigError: the first problem, naming the file and line, or the ``--set`` / ``--seeds`` option.
    """
    source = str(path)
    raw, lines = config_mod.read_raw(config_mod.read_file(Path(path), source), overrides, source)
    if seeds is not None:
        raw = with_seed_count(raw, seeds)
    return expand_grid(raw, lines, source, (), overrides)


def with_seed_count(raw: dict[str, Any], count: int, source: str = "--seeds") -> dict[str, Any]:
    """``train --seeds N``: the config run under N seeds counting up from its own (a grid over ``seed``).

    Raises:
        ConfigError: ``count`` is below 1, or the config already varies the seed.
    """
    if count < 1:
        raise ConfigError("seed", f"expected a number of seeds >= 1, got {count}", source)
    grid = raw.get(GRID) if isinstance(raw.get(GRID), dict) else {}
    seed = raw.get("seed", 0)
    if "seed" in grid or isinstance(seed, list):
        shown = grid.get("seed", seed)
        raise ConfigError(
            "seed", f"expected a single seed in the config to count up from, got {shown}", source
        )
    if isinstance(seed, bool) or not isinstance(seed, int):
        return raw  # from_dict reports the bad seed itself
    out = dict(raw)
    out["seed"] = seed if count == 1 else list(range(seed, seed + count))
    return out


# --------------------------------------------------------------------------------------------------
# Axes


def _read_axes(base: dict[str, Any], error: Any, variant_kinds: set[str]) -> list[_Axis]:
    grid = base.pop(GRID, None)
    if grid is None:
        grid = {}
    if not isinstance(grid, dict):
        raise error(GRID, f"expected a mapping of dotted keys to lists of values, got {_kind(grid)}")
    axes = []
    for key, values in grid.items():
        label = f"{GRID}.{key}"
        if not isinstance(key, str) or not key or not all(key.split(".")):
            raise error(label, "expected a dotted config key such as model.kind")
        if key in FIXED or key.startswith("output."):
            raise error(label, "cannot vary: the study lives in output.dir/name")
        axes.append(_axis(key, label, values, error))
    for key in SHORTHANDS:
        value = _get_path(base, key)
        if isinstance(value, list):
            if any(a.key == key for a in axes):
                raise error(key, f"a list here and {GRID}.{key} too; give the values in one place")
            axes.append(_axis(key, key, value, error))
        if any(a.key == key for a in axes) and _has_path(base, key):
            _del_path(base, key)
    return axes


def _axis(key: str, label: str, values: Any, error: Any) -> _Axis:
    if not isinstance(values, list):
        raise error(label, f"expected a list of values, got {_kind(values)}")
    if not values:
        raise error(label, "the list of values is empty")
    seen: dict[str, int] = {}
    for i, value in enumerate(values):
        token = _canonical(value)
        if token in seen:
            raise error(
                f"{label}[{i}]",
                f"the value {_show(value)} repeats item {seen[token]}",
                line_key=f"{label}[{i}]",
            )
        seen[token] = i
    return _Axis(key, label, list(values))


def _take_variant_blocks(base: dict[str, Any], kinds: Collection[str], error: Any) -> dict[str, Any]:
    """Pop every ``model.<kind>`` settings block; each is put back into the runs of that kind."""
    model = base.get("model")
    if not isinstance(model, dict):
        return {}
    blocks = {}
    for name in list(model):
        if name in kinds:
            blocks[name] = model.pop(name)
    return blocks


def _merge_block(block: Any, from_grid: Any) -> Any:
    if isinstance(block, dict) and isinstance(from_grid, dict):
        return {**block, **from_grid}
    return block if from_grid is None else from_grid


#: ``train.<block>`` and ``probe.<block>`` mappings whose keys depend on their content (an optimizer's
#: arguments, a schedule's settings): a grid may vary a key inside them.
CONTROL_BLOCKS = ("optimizer", "schedule", "early_stopping")


def _is_config_key(key: str, defaults: dict[str, Any], variant_kinds: Collection[str]) -> bool:
    parts = key.split(".")
    if len(parts) >= 2 and parts[0] == "model" and parts[1] in variant_kinds:
        return True  # the variant's own settings: from_dict checks the names inside the block
    if len(parts) >= 3 and parts[0] in ("train", "probe") and parts[1] in CONTROL_BLOCKS:
        return True  # inside an optimizer, schedule or early-stopping mapping: from_dict checks them
    node: Any = defaults
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _unknown_key_problem(key: str, defaults: dict[str, Any]) -> str:
    known = [".".join(p) for p in _paths(defaults)]
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"; did you mean '{GRID}.{close[0]}'?" if close else ""
    return f"not a config key{hint}"


def _paths(node: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterable[tuple[str, ...]]:
    for key, value in node.items():
        yield (*prefix, key)
        if isinstance(value, dict):
            yield from _paths(value, (*prefix, key))


# --------------------------------------------------------------------------------------------------
# Combinations


def _product(lists: list[list[Any]]) -> list[tuple[Any, ...]]:
    combos: list[tuple[Any, ...]] = [()]
    for values in lists:
        combos = [(*combo, value) for combo in combos for value in values]
    return combos


def _with_values(base: dict[str, Any], axes: list[_Axis], combo: tuple[Any, ...]) -> dict[str, Any]:
    run_raw = copy.deepcopy(base)
    for axis, value in zip(axes, combo, strict=True):
        _set_path(run_raw, axis.key, copy.deepcopy(value))
    return run_raw


def _locate(
    exc: ConfigError, axes: list[_Axis], combo: tuple[Any, ...], index: int, error: Any
) -> ConfigError:
    """Name the grid value behind a config error, or the combination when no single value is."""
    for axis, value in zip(axes, combo, strict=True):
        if exc.key == axis.key or exc.key.startswith((axis.key + ".", axis.key + "[")):
            item = f"{axis.label}[{axis.values.index(value)}]"
            return error(item + exc.key[len(axis.key) :], exc.problem, line_key=item)
    problem = exc.problem
    if index > 0 and axes:  # the first combination fails only on errors of the config itself
        shown = ", ".join(f"{axis.key}={_show(value)}" for axis, value in zip(axes, combo, strict=True))
        problem += f" (in the run with {shown})"
    return error(exc.key, problem)


def _drop_pretrained_keys(run_raw: dict[str, Any], kind: Any, any_pretrained: bool) -> frozenset[str]:
    """Keys a run does not read, taken out of its raw config; returns them as dotted keys.

    A pretrained run takes its latent size from its encoder (``model.latent`` is not read); in a study
    that has pretrained runs, the other kinds' runs do not read ``model.encoder`` and its kin.
    """
    model = run_raw.get("model")
    if not isinstance(model, dict):
        return frozenset()
    if kind == config_mod.PRETRAINED:
        keys = ("latent",)
    elif any_pretrained:
        keys = config_mod.PRETRAINED_KEYS
    else:
        return frozenset()
    for key in keys:
        model.pop(key, None)
    return frozenset(f"model.{key}" for key in keys)


def _distinct(
    configs: list[RunConfig], combos: list[tuple[Any, ...]], unused: list[frozenset[str]]
) -> tuple[list[RunConfig], list[tuple[Any, ...]], list[frozenset[str]]]:
    """The first of each set of equal configs: combinations that differ only in keys their runs do not
    read (an ``ae`` run of a grid over ``model.encoder``) are one run."""
    seen: set[str] = set()
    keep = []
    for i, cfg in enumerate(configs):
        token = json.dumps(config_mod.to_dict(cfg), sort_keys=True, default=str)
        if token not in seen:
            seen.add(token)
            keep.append(i)
    return [configs[i] for i in keep], [combos[i] for i in keep], [unused[i] for i in keep]


# --------------------------------------------------------------------------------------------------
# Run directory names


def _run_names(
    configs: list[RunConfig],
    varying: list[_Axis],
    combos: list[tuple[Any, ...]],
    positions: list[int],
    unused: list[frozenset[str]],
) -> list[str]:
    untagged = ("model.kind", "model.latent", "seed", "model.encoder")
    tagged = [a for a in varying if a.key not in untagged]
    titles = _titles([a.key for a in tagged])
    tags_by_axis = {a.key: _axis_tags(a, titles[a.key]) for a in tagged}
    # A kind by its settings block's name (an import path's class's kind), unless two kinds share one.
    shown = {cfg.model.kind: kinds_mod.block_of(cfg.model.kind) for cfg in configs}
    if len(set(shown.values())) < len(shown):
        shown = {kind: kind for kind in shown}
    encoders = next((a for a in varying if a.key == "model.encoder"), None)
    names = []
    for cfg, combo, skip in zip(configs, combos, unused, strict=True):
        parts = [_sanitize(shown[cfg.model.kind]), _code_segment(cfg, encoders), f"s{cfg.seed}"]
        for axis in tagged:
            if axis.key in skip:  # a key this run does not read: its value is no part of its name
                continue
            value = combo[positions[varying.index(axis)]]
            parts.append(tags_by_axis[axis.key][axis.values.index(value)])
        names.append("-".join(parts))
    assert len(set(names)) == len(names), names  # guaranteed: one segment per axis, distinct per axis
    return names


def run_name(cfg: RunConfig) -> str:
    """A single run's directory name: ``<kind>-z<latent>-s<seed>``; ``pretrained-<encoder stem>-s<seed>``."""
    return "-".join([_sanitize(kinds_mod.block_of(cfg.model.kind)), _code_segment(cfg, None), f"s{cfg.seed}"])


def _code_segment(cfg: RunConfig, encoders: _Axis | None) -> str:
    """``z<latent>``; for a pretrained run, its encoder file's stem (``my_encoder`` for
    ``models/my_encoder.keras``). Where a grid's encoders share a stem, their position in the list is
    added (``encoder0``, ``encoder1``), so every encoder gets a directory of its own."""
    if cfg.model.kind != config_mod.PRETRAINED or not cfg.model.encoder:
        return f"z{cfg.model.latent}"
    stem = _stem(cfg.model.encoder)
    if encoders is not None:
        stems = [_stem(v) if isinstance(v, str) else "" for v in encoders.values]
        if len({s.lower() for s in stems}) < len(stems) or not all(stems):
            return f"{stem}{encoders.values.index(cfg.model.encoder)}"
    return stem


def _stem(path: str) -> str:
    stem = Path(path.rstrip("/")).name
    for suffix in (".keras", ".h5", ".hdf5"):
        stem = stem.removesuffix(suffix)
    return _sanitize(stem) or "encoder"


def _titles(keys: list[str]) -> dict[str, str]:
    """A short name per key: its last part (abbreviated); with its section where two would clash."""
    short = {key: ABBREVIATIONS.get(key.rsplit(".", 1)[-1], key.rsplit(".", 1)[-1]) for key in keys}
    clash = {s for s in short.values() if list(short.values()).count(s) > 1}
    return {
        key: _sanitize("_".join(key.split(".")[-2:-1] + [s]) if s in clash else s) for key, s in short.items()
    }


def _axis_tags(axis: _Axis, title: str) -> list[str]:
    """One tag per value: ``labels100``, ``lr0.001``, ``hidden128x64``, ``frozen``; distinct per axis.

    Words stand alone (``frozen``, ``sgd``) unless the axis mixes them with numbers (``labelsall``).
    """
    words = all(isinstance(v, str) for v in axis.values)
    tags = [_sanitize(v) if words else _tag(title, v) for v in axis.values]
    # Distinct ignoring case too: macOS and Windows file systems would see one directory.
    if len({t.lower() for t in tags}) < len(tags) or any(not t for t in tags):
        tags = [f"{title}{i}" for i in range(len(axis.values))]  # e.g. mappings: number the values
    return tags


def _tag(title: str, value: Any) -> str:
    if isinstance(value, bool):
        return title if value else f"no{title}"
    if value is None:
        return f"{title}none"
    if isinstance(value, (int, float)):
        return f"{title}{_number(value)}"
    if isinstance(value, str):
        return f"{title}{_sanitize(value)}"
    if isinstance(value, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    ):
        return f"{title}{'x'.join(_number(v) for v in value)}"
    return ""


def _number(value: int | float) -> str:
    # No "-" (it separates the name's segments): 1e-05 -> 0.00001, 1e+30 stays, -1 -> neg1.
    text = format(value, "g") if isinstance(value, float) else str(value)
    if "e-" in text:
        text = format(decimal.Decimal(repr(value)), "f")
    return text.replace("-", "neg")


def _sanitize(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+]", "_", text)[:40]


# --------------------------------------------------------------------------------------------------
# Paths in a raw mapping


_MISSING = object()


def _lookup(raw: dict[str, Any], key: str) -> Any:
    """The value at dotted ``key`` in nested mappings, or ``_MISSING``."""
    node: Any = raw
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _get_path(raw: dict[str, Any], key: str) -> Any:
    value = _lookup(raw, key)
    return None if value is _MISSING else value


def _has_path(raw: dict[str, Any], key: str) -> bool:
    return _lookup(raw, key) is not _MISSING


def _set_path(raw: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}  # a non-mapping here is replaced; from_dict would have rejected it anyway
        node = node[part]
    node[parts[-1]] = value


def _del_path(raw: dict[str, Any], key: str) -> None:
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        node = node[part]
    del node[parts[-1]]


def _value_at(raw: dict[str, Any], key: str, defaults: dict[str, Any]) -> Any:
    return _get_path(raw, key) if _has_path(raw, key) else _get_path(defaults, key)


def _canonical(value: Any) -> str:
    """A comparable token: 1 and 1.0 are the same setting; lists and mappings compare by content."""

    def normal(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, list):
            return [normal(x) for x in v]
        if isinstance(v, dict):
            return {str(k): normal(x) for k, x in v.items()}
        return v

    return json.dumps(normal(value), sort_keys=True, default=str)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "null"
    return json.dumps(value, default=str) if isinstance(value, (list, dict)) else str(value)


def _kind(value: Any) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", type(None): "nothing"}
    return names.get(type(value), _show(value))
