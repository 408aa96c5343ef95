"""Model kinds: the one place ``model.kind`` is resolved, for the config, the grid, train, eval and workers.

A kind is one of three things:

- a built-in kind (``ae``, ``vae``, ...): its settings class comes from the TF-free table
  :data:`latentprobe.settings.VARIANT_SETTINGS`, its model class from ``latentprobe.models.MODELS``;
- a kind an installed package registers under the entry-point group ``latentprobe.models``
  (``contractive = "latentprobe_contractive:ContractiveAutoencoder"`` in its pyproject.toml);
- an import path ``package.module:ClassName`` (a module installed or in the current directory).

Checking a config whose kinds are all built in imports no TensorFlow. A plug-in kind is resolved by
importing its class (which imports Keras): its ``Settings`` dataclass is a class attribute.

Each kind has a settings block ``model.<block>``: the kind's name for built-in and entry-point kinds; for
an import path, the class's own ``kind`` attribute (``kind = "contractive"``) when it declares one, else
the class name. Everything resolves from the config's string, so a spawned worker, a Ray task, ``eval``
and ``train --resume`` find a plug-in variant the same way the command that started the run did.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import importlib.metadata
import os
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latentprobe.errors import ConfigError
from latentprobe.settings import VARIANT_SETTINGS, choice_problem

#: The entry-point group installed packages register model kinds under.
ENTRY_POINT_GROUP = "latentprobe.models"
#: The kind of an encoder trained elsewhere (``model.encoder``): no variant class, no settings; nothing of
#: it trains (latentprobe.models.pretrained loads it).
PRETRAINED = "pretrained"
#: The config key every resolution error names.
KEY = "model.kind"


def saved_model_problem(path: str) -> str | None:
    """What stops Keras from reading the saved model at ``path`` that is seen without TensorFlow (a
    missing file, a .keras file that is no zip archive), or None. ``validate`` and the pretrained kind's
    loader both ask; only the loader can tell whether Keras reads what remains."""
    file = Path(path)
    if not file.exists():
        return f"{path}: no such file"
    if file.suffix == ".keras" and file.is_file() and not zipfile.is_zipfile(file):
        return f"{path}: not a Keras model (a .keras file is a zip archive; this is not one)"
    return None


@dataclass(frozen=True)
class Kind:
    """A resolved ``model.kind``.

    Attributes:
        name: the value of ``model.kind`` as the config gives it.
        block: the key of its settings block under ``model``.
        settings: its settings dataclass, or None when it takes no settings.
        source: ``builtin``, ``entry point <dist>``, or ``import path``.
        cls: the model class for a plug-in kind (None for a built-in one until :meth:`load`).
    """

    name: str
    block: str
    settings: type | None
    source: str
    cls: type | None = None

    def load(self) -> type:
        """The model class (imports TensorFlow)."""
        if self.cls is not None:
            return self.cls
        from latentprobe.models import MODELS

        return MODELS[self.name]


def is_import_path(kind: str) -> bool:
    """Whether ``kind`` is written as ``package.module:ClassName``."""
    return ":" in kind


@functools.cache
def entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    """The kinds installed packages register (group ``latentprobe.models``), by name; nothing imported.

    A name that is also a built-in kind is left out (the built-in wins).
    """
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in VARIANT_SETTINGS:
            found.setdefault(ep.name, ep)
    return found


def names() -> list[str]:
    """Every kind a config can name without an import path: built-in, then installed, sorted."""
    return sorted([*VARIANT_SETTINGS, PRETRAINED]) + sorted(entry_points())


def blocks(kinds: Any = ()) -> set[str]:
    """The settings block names a config may hold: every named kind's, and those of ``kinds`` (the
    values of ``model.kind`` in the config) that resolve; one that does not is reported elsewhere."""
    found = set(VARIANT_SETTINGS) | set(entry_points())
    for kind in kinds:
        if isinstance(kind, str) and is_import_path(kind):
            try:
                found.add(resolve(kind).block)
            except ConfigError:
                pass
    return found


def block_of(kind: str) -> str:
    """The settings block name of a kind that resolves; the kind itself otherwise."""
    try:
        return resolve(kind).block
    except ConfigError:
        return kind


@functools.cache
def resolve(kind: str) -> Kind:
    """Resolve ``model.kind``: a built-in kind, an installed one, or an import path.

    Raises:
        ConfigError: naming ``model.kind``: an unknown name (with the closest one), a module that does
            not import, a missing class, a class that is no subclass of the base class ``Autoencoder``,
            or a ``Settings`` that is not a dataclass.
    """
    if kind in VARIANT_SETTINGS:
        return Kind(kind, kind, VARIANT_SETTINGS[kind], "builtin")
    if kind == PRETRAINED:
        return Kind(kind, kind, None, "builtin")
    if kind in entry_points():
        ep = entry_points()[kind]
        dist = getattr(ep.dist, "name", None) or "an installed package"
        cls = _check_class(_load_entry_point(ep, dist), f"entry point {kind!r} of {dist} ({ep.value})")
        return Kind(kind, kind, _settings_of(cls, kind), f"entry point of {dist}", cls)
    if is_import_path(kind):
        cls = _check_class(_REGISTERED[kind] if kind in _REGISTERED else _import(kind), repr(kind))
        block = cls.__dict__.get("kind") or cls.__name__
        other = entry_points().get(block)
        if block in VARIANT_SETTINGS or (other is not None and other.value.replace(" ", "") != kind):
            raise ConfigError(KEY, f"{kind!r} declares kind {block!r}, which names another kind")
        return Kind(kind, block, _settings_of(cls, kind), "import path", cls)
    problem = choice_problem(kind, names())  # ends "(expected one of: ...)"
    raise ConfigError(KEY, problem[:-1] + ", or an import path package.module:ClassName)")


#: Classes :func:`registered` makes resolvable in this process, by import path.
_REGISTERED: dict[str, type] = {}


@contextlib.contextmanager
def registered(cls: type) -> Iterator[str]:
    """Make ``cls`` resolvable in this process under its import path (``module:QualName``), for the block.

    For tests (``latentprobe.testing.check_variant``): a class defined in a function has no import path
    that finds it. Runs started here work; another process (a worker, a later ``eval``) will not find it.
    """
    kind = f"{cls.__module__}:{cls.__qualname__}"
    previous = _REGISTERED.get(kind)
    _REGISTERED[kind] = cls
    resolve.cache_clear()
    try:
        yield kind
    finally:
        if previous is None:
            del _REGISTERED[kind]
        else:
            _REGISTERED[kind] = previous
        resolve.cache_clear()


def cache_clear() -> None:
    """Forget resolved kinds and installed entry points (after installing a plug-in in this process)."""
    resolve.cache_clear()
    entry_points.cache_clear()


def _quiet_tensorflow() -> None:
    """A plug-in's module imports Keras: start TensorFlow first, without its start-up lines on stderr."""
    from latentprobe.runtime import import_tensorflow

    import_tensorflow()


def _load_entry_point(ep: importlib.metadata.EntryPoint, dist: str) -> Any:
    _quiet_tensorflow()
    try:
        return ep.load()
    except Exception as exc:  # an installed plug-in that fails to import: one line, not a traceback
        raise ConfigError(
            KEY, f"entry point {ep.name!r} of {dist} ({ep.value}) does not load: {_one_line(exc)}"
        ) from None


def _import(path: str) -> Any:
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute or ":" in attribute:
        raise ConfigError(KEY, f"expected an import path package.module:ClassName, got {path!r}")
    _quiet_tensorflow()
    try:
        module = _import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            KEY,
            f"cannot import module {module_name!r} of {path!r} ({exc}); install its package, or run "
            "from the directory that holds it",
        ) from None
    except Exception as exc:
        raise ConfigError(KEY, f"importing module {module_name!r} failed: {_one_line(exc)}") from None
    obj: Any = module
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise ConfigError(KEY, f"module {module_name!r} has no {attribute!r} (from {path!r})")
        obj = getattr(obj, part)
    return obj


def _import_module(name: str) -> Any:
    """Import ``name``; a module not found on the path is looked for in the current directory too, as
    ``python -m`` would (the ``latentprobe`` script does not put the current directory on the path)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        cwd = os.getcwd()
        top = name.split(".")[0]
        if exc.name != top or cwd in sys.path or "" in sys.path:
            raise
        sys.path.append(cwd)
        importlib.invalidate_caches()
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError:
            sys.path.remove(cwd)
            raise


def _check_class(obj: Any, what: str) -> type:
    from latentprobe.models.autoencoder import Autoencoder  # a plug-in kind: Keras is imported anyway

    if not (isinstance(obj, type) and issubclass(obj, Autoencoder)):
        shown = obj.__name__ if isinstance(obj, type) else type(obj).__name__ + " object"
        raise ConfigError(
            KEY, f"{what} is {shown}, not a subclass of latentprobe.models.Autoencoder (the variant base)"
        )
    return obj


def _settings_of(cls: type, kind: str) -> type | None:
    settings = getattr(cls, "Settings", None)
    if settings is not None and not (isinstance(settings, type) and dataclasses.is_dataclass(settings)):
        raise ConfigError(KEY, f"{cls.__name__}.Settings of {kind!r} is not a dataclass (or None)")
    return settings


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"
