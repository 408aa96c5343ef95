"""The run directory: its layout (every file and folder name, statuses, schema versions), atomic writes,
creating run dirs and reading runs back.

Layout of a run directory (``train`` writes all but ``eval/``, ``plots/`` and ``tb/eval/``)::

    config.yaml             the resolved config, written first
    labeled_subset.npz      which train examples the online probe saw
    checkpoints/            epoch-0003.npz (weights, optimizer slots) and state.json (the rest)
    tb/                     TensorBoard, one run: tags <split>/<name>, HParams, custom-scalars layout;
                            tb/eval/ from eval
    encoder.keras decoder.keras probe.keras
    summary.json            written last; its ``status`` says how the run ended
    eval.json eval/budgets.npz plots/   written by ``eval`` (tb/eval/ holds its images and the projector)

A study's directory holds ``study.json`` (its grid and runs) and its runs; an old-style sweep's parent
directory holds ``sweep.json``. :func:`find_runs` finds every run under directories such as these.
Imports no TensorFlow, so reading runs (``compare``)
stays fast.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import numpy as np

from latentprobe.errors import RunDirError

# ---- file and folder names ----

CONFIG = "config.yaml"
SUMMARY = "summary.json"
EVAL = "eval.json"
SWEEP = "sweep.json"
STUDY = "study.json"
ENCODER = "encoder.keras"
DECODER = "decoder.keras"
PROBE = "probe.keras"
LABELED_SUBSET = "labeled_subset.npz"

#: TensorBoard's log directory (one TensorBoard run), the splits' tag prefixes (``train/...``), and
#: eval's subdirectory (its images and the projector).
TB = "tb"
TB_TRAIN = "train"
TB_VAL = "val"
TB_TEST = "test"
TB_EVAL = "eval"

CHECKPOINTS = "checkpoints"
CHECKPOINT_STATE = "state.json"
#: Checkpoint weight files, ``epoch-0003.npz``; the glob finds them (older ones are deleted).
CHECKPOINT_WEIGHTS_GLOB = "epoch-*.npz"

EVAL_DIR = "eval"
BUDGETS = "budgets.npz"
PLOTS = "plots"

#: The embedding projector's files in ``tb/eval``; the config's name is TensorBoard's own
#: (``tensorboard.plugins.projector.metadata.PROJECTOR_FILENAME``, checked by a test).
PROJECTOR_TENSORS = "latents.tsv"
PROJECTOR_METADATA = "metadata.tsv"
PROJECTOR_SPRITE = "sprite.png"
PROJECTOR_CONFIG = "projector_config.pbtxt"

# In the order check_complete reports them: the config is written first, the models last.
REQUIRED_FILES = (CONFIG, SUMMARY, ENCODER, DECODER, PROBE)

# ---- statuses (summary.json's ``status``) ----

STATUS_COMPLETED = "completed"
STATUS_FAILED = "failed"
STATUS_INTERRUPTED = "interrupted"
#: A search's trial its pruner stopped early: it saved no models, so there is nothing to evaluate.
STATUS_PRUNED = "pruned"

# ---- schema versions ----

#: 2: the sparse kind logs its penalties raw and unweighted (``sparsity_loss``, ``weight_decay_loss``;
#: version 1 logged them multiplied by their weights, ``weight_decay_loss`` 0 without weight decay), and
#: ``environment.threads`` records TensorFlow's thread count.
SUMMARY_SCHEMA_VERSION = 2
#: summary.json versions this latentprobe reads (a version-1 sparse run's penalties are weighted).
SUPPORTED_SUMMARY_SCHEMA_VERSIONS = (1, 2)
EVAL_SCHEMA_VERSION = 2
CHECKPOINT_SCHEMA_VERSION = 1
SWEEP_SCHEMA_VERSION = 1
STUDY_SCHEMA_VERSION = 1


def checkpoint_weights(epoch: int) -> str:
    """The name of epoch ``epoch``'s checkpoint weights, ``epoch-0003.npz``."""
    return f"epoch-{epoch:04d}.npz"


def _to_json_value(obj: Any) -> Any:
    """``json.dumps`` default hook: numpy scalars/arrays to Python, paths to strings."""
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    # ndarray.tolist() gives nested lists, a numpy scalar's .tolist() the Python scalar.
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` atomically.

    The text goes to a temporary file in the same directory, is flushed and fsynced, then
    ``os.replace``-d over ``path``: a reader sees the old file or the new one, never half of one.
    numpy scalars and arrays are converted to Python values.
    """
    # Serialise first, so an unserialisable object leaves no temp file behind.
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_to_json_value) + "\n")


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file, fsynced, then renamed over ``path``)."""
    _write_atomically(path, "w", lambda f: f.write(text))


def write_npz(path: str | os.PathLike[str], /, **arrays: Any) -> None:
    """Write ``arrays`` as an uncompressed ``.npz`` to ``path`` atomically, as :func:`write_text` does."""
    _write_atomically(path, "wb", lambda f: np.savez(f, **arrays))


def _write_atomically(path: str | os.PathLike[str], mode: str, write: Callable[[IO[Any]], Any]) -> None:
    """Call ``write`` on a temporary file beside ``path``, fsync it, then ``os.replace`` it over ``path``.

    A reader sees the old file or the new one, never half of one; on any error the temporary file is
    removed and ``path`` is left as it was.
    """
    path = Path(path)
    file_mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if "b" not in mode else {})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates the file 0600; give it the mode a plain open() would.
        os.chmod(tmp_name, file_mode)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable where the platform allows syncing a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON object from ``path``.

    Raises:
        RunDirError: naming the path, if it is missing, unreadable, not JSON or not an object.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunDirError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise RunDirError(f"{path}: cannot read: {e}") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise RunDirError(f"{path}: invalid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    if not isinstance(obj, dict):
        raise RunDirError(f"{path}: expected a JSON object, got {type(obj).__name__}")
    return obj


def create_run_dir(parent: str | os.PathLike[str], base_name: str) -> Path:
    """Create and return a new, empty run directory ``parent/base_name``.

    If that exists, tries ``base_name-1``, ``base_name-2`` ... An existing directory is never
    reused; ``mkdir(exist_ok=False)`` makes this safe against a concurrent run taking the same name.
    """
    if not base_name or base_name in (".", "..") or "/" in base_name or os.sep in base_name:
        raise RunDirError(f"invalid run name {base_name!r}: must be a plain directory name")
    parent = Path(parent)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunDirError(f"{parent}: cannot create output directory: {e}") from None
    suffix = 0
    while True:
        candidate = parent / (base_name if suffix == 0 else f"{base_name}-{suffix}")
        try:
            candidate.mkdir(exist_ok=False)
        except FileExistsError:
            suffix += 1
            continue
        except OSError as e:
            raise RunDirError(f"{candidate}: cannot create run directory: {e}") from None
        return candidate


def read_summary(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check ``run_dir/summary.json`` (any status).

    Raises:
        RunDirError: if ``run_dir`` is no directory, has no summary, the summary is not valid
            JSON, or its ``schema_version`` is missing or unsupported.
    """
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise RunDirError(f"{run_dir}: no such directory")
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: not a directory")
    path = run_dir / SUMMARY
    if not path.exists() and (run_dir / CONFIG).exists():
        # config.yaml is written first, summary.json last: the run is still going or was killed.
        raise RunDirError(
            f"{run_dir}: incomplete run: no {SUMMARY} (still running, or killed; "
            f"`latentprobe train --resume {run_dir}` continues it)"
        )
    if not path.exists():
        raise RunDirError(f"{run_dir}: not a latentprobe run (no {SUMMARY})")
    summary = read_json(path)
    version = summary.get("schema_version")
    if version is None:
        raise RunDirError(f"{path}: no schema_version")
    if isinstance(version, bool) or version not in SUPPORTED_SUMMARY_SCHEMA_VERSIONS:
        supported = ", ".join(str(v) for v in SUPPORTED_SUMMARY_SCHEMA_VERSIONS)
        raise RunDirError(
            f"{path}: unsupported schema_version {version!r} (this latentprobe reads {supported})"
        )
    return summary


def check_complete(run_dir: str | os.PathLike[str]) -> None:
    """Check that ``run_dir`` is a finished run that ``eval`` can load.

    Raises:
        RunDirError: naming the first missing file among ``REQUIRED_FILES``, a bad summary, or
            ``run did not complete (status: ...)``.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: no such directory")
    for name in REQUIRED_FILES[:2]:
        if not (run_dir / name).exists():
            raise RunDirError(f"{run_dir}: incomplete run: missing {name}")
    summary = read_summary(run_dir)
    # A pretrained encoder measured without a decoder has no decoder.keras.
    pretrained = summary.get("pretrained")
    no_decoder = isinstance(pretrained, dict) and pretrained.get("decoder") is None
    for name in REQUIRED_FILES[2:]:
        if not (run_dir / name).exists() and not (name == DECODER and no_decoder):
            raise RunDirError(f"{run_dir}: incomplete run: missing {name}")
    status = summary.get("status")
    if status != STATUS_COMPLETED:
        raise RunDirError(f"{run_dir}: {describe_incomplete(summary)}")
    check_summary_fields(run_dir / SUMMARY, summary)


def check_summary_fields(path: Path, summary: dict[str, Any]) -> None:
    """A completed summary holds what eval reads of it: ``metrics.test``, an object of numbers.

    Raises:
        RunDirError: naming the file and the first missing or malformed field.
    """
    metrics = summary.get("metrics")
    if not isinstance(metrics, dict) or not isinstance(metrics.get("test"), dict):
        raise RunDirError(f"{path}: malformed: no 'metrics.test' object (not a completed run's summary)")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in metrics["test"].values()):
        raise RunDirError(f"{path}: malformed: 'metrics.test' holds a value that is not a number")


def describe_incomplete(summary: dict[str, Any]) -> str:
    """Why a run's summary is not a completed run's: its status, reason and where to resume."""
    text = f"run did not complete (status: {summary.get('status')})"
    if summary.get("reason"):
        text += f": {summary['reason']}"
    if summary.get("checkpoint_epoch"):
        text += f"; last checkpoint: epoch {summary['checkpoint_epoch']}"
    return text


def read_sweep(sweep_dir: str | os.PathLike[str]) -> list[Path]:
    """Return the run directories listed in ``sweep_dir/sweep.json``, in their order.

    Relative entries are resolved against ``sweep_dir``.

    Raises:
        RunDirError: if sweep.json is unreadable, has an unsupported schema or no list of runs.
    """
    sweep_dir = Path(sweep_dir)
    path = sweep_dir / SWEEP
    sweep = read_json(path)
    version = sweep.get("schema_version")
    if isinstance(version, bool) or version != SWEEP_SCHEMA_VERSION:
        raise RunDirError(f"{path}: missing or unsupported schema_version {version!r}")
    runs = sweep.get("runs")
    if not isinstance(runs, list) or not all(isinstance(r, str) and r for r in runs):
        raise RunDirError(f"{path}: 'runs' must be a list of run directory paths")
    return [sweep_dir / r for r in runs]  # an absolute r replaces sweep_dir


def is_run_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a run directory: it holds config.yaml (written first) or summary.json."""
    path = Path(path)
    return (path / CONFIG).is_file() or (path / SUMMARY).is_file()


def read_study(study_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check ``study_dir/study.json``: its schema version and its list of runs.

    Each run is ``{"name", "values", "dir", "status", "reason"}``; ``dir`` is relative to ``study_dir``
    and ``values`` holds the run's value of every key the grid varies.

    Raises:
        RunDirError: naming the file, if it is unreadable, of another schema, or its runs are malformed.
    """
    path = Path(study_dir) / STUDY
    study = read_json(path)
    version = study.get("schema_version")
    if isinstance(version, bool) or version != STUDY_SCHEMA_VERSION:
        raise RunDirError(f"{path}: missing or unsupported schema_version {version!r}")
    runs = study.get("runs")
    well_formed = isinstance(runs, list) and all(
        isinstance(r, dict)
        and isinstance(r.get("dir"), str)
        and r["dir"]
        and isinstance(r.get("values"), dict)
        for r in runs
    )
    if not well_formed:
        raise RunDirError(f"{path}: 'runs' must be a list of objects with a 'dir' and 'values'")
    return study


def read_study_runs(study_dir: str | os.PathLike[str]) -> list[tuple[Path, dict[str, Any]]]:
    """A study's runs in study.json's order: each run's directory and its grid values.

    Raises:
        RunDirError: as :func:`read_study`.
    """
    study_dir = Path(study_dir)
    return [(study_dir / r["dir"], dict(r["values"])) for r in read_study(study_dir)["runs"]]


def discover_runs(path: str | os.PathLike[str], on_skip: Callable[[str], None] | None = None) -> list[Path]:
    """Every run directory at or under ``path``, in a deterministic order.

    ``path`` itself if it is a run (:func:`is_run_dir`; complete or not); a study's runs in study.json's
    order, a sweep's in sweep.json's (listed runs are returned whether or not they exist, so that a
    run never started is reported, not skipped), then any other runs beside them; otherwise the
    subdirectories, in sorted order, searched the same way. A run's own subfolders (tb/, checkpoints/
    ...) and hidden folders are not searched.

    Args:
        on_skip: when given, a study.json or sweep.json that is not latentprobe's (malformed, another
            schema) or a folder that cannot be listed is skipped and described to it, and the search
            goes on (``eval /tmp``); when None, either is an error.

    Raises:
        RunDirError: ``path`` does not exist, is no directory, has no run under it, or (without
            ``on_skip``) holds a bad study.json or sweep.json.
    """
    path = Path(path)
    if not path.exists():
        raise RunDirError(f"{path}: no such directory")
    if not path.is_dir():
        hint = ""
        if path.suffix in (".keras", ".h5", ".hdf5"):
            hint = (
                " (a saved model: to probe an encoder, name it under model.kind: pretrained in a config, or"
                " call latentprobe.probe from Python)"
            )
        raise RunDirError(f"{path}: not a directory{hint}")
    runs = _runs_under(path, set(), on_skip)
    if not runs:
        raise RunDirError(f"{path}: not a latentprobe run and no run under it")
    return runs


def _runs_under(
    directory: Path, visited: set[Path], on_skip: Callable[[str], None] | None = None
) -> list[Path]:
    real = directory.resolve()
    if real in visited:  # a symlink loop, or a folder reached twice
        return []
    visited.add(real)
    if is_run_dir(directory):
        foreign = _not_ours(directory) if on_skip is not None else None
        if foreign is None:
            return [directory]
        on_skip(f"skipped: {directory}: not a latentprobe run ({foreign})")
        return []
    listed: list[Path] = []
    try:
        if (directory / STUDY).is_file():
            listed = [run for run, _ in read_study_runs(directory)]
        elif (directory / SWEEP).is_file():
            listed = read_sweep(directory)
    except RunDirError as e:
        if on_skip is None:
            raise
        on_skip(f"skipped: {e}")  # the message names the file; its folder is still searched
    try:
        children = sorted(directory.iterdir(), key=lambda p: p.name)
    except OSError as e:
        if on_skip is None:
            raise RunDirError(f"{directory}: cannot list: {e}") from None
        on_skip(f"skipped: {directory}: cannot list: {e.strerror or e}")
        return listed
    # A study's (or sweep's) own runs first, in its order; then runs beside them that it does not list
    # (an earlier study of another grid under the same name).
    found: list[Path] = list(listed)
    known = {run.resolve() for run in listed}
    for child in children:
        if child.resolve() in known:
            continue
        if not child.name.startswith(".") and _is_dir(child):
            found.extend(_runs_under(child, visited, on_skip))
    return found


def _not_ours(directory: Path) -> str | None:
    """Why a folder that looks like a run (a config.yaml or summary.json) is another tool's, or None.

    A run of ours has a summary.json with a schema version we read, or (still running, or killed) a
    config.yaml that is a latentprobe config.
    """
    if (directory / SUMMARY).is_file():
        try:
            read_summary(directory)
        except RunDirError as e:
            if not (directory / CONFIG).is_file():
                return str(e).removeprefix(f"{directory / SUMMARY}: ")
        return None
    from latentprobe import config as config_mod  # config imports nothing of rundir

    try:
        config_mod.load(directory / CONFIG)
    except RunDirError:
        return None
    except Exception as e:  # noqa: BLE001 - a ConfigError, or a file YAML cannot read
        return f"{CONFIG}: {str(e).removeprefix(str(directory / CONFIG)).lstrip(':0123456789 ')}"
    return None


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a folder we may not look into
        return False


def find_runs(
    paths: Iterable[str | os.PathLike[str]], on_skip: Callable[[str], None] | None = None
) -> list[Path]:
    """Every run at or under each of ``paths`` (see :func:`discover_runs`), in order, each once.

    A run given twice, or found both on its own and inside a study, appears where it is first found.
    ``on_skip``: as :func:`discover_runs` (what is not latentprobe's is skipped and described to it).

    Raises:
        RunDirError: for the first path that is no run and has none under it (or is unreadable).
    """
    return unique_runs(run for path in paths for run in discover_runs(path, on_skip))


def recorded_status(run_dir: str | os.PathLike[str]) -> str | None:
    """The ``status`` summary.json records, or None when it has none (no summary, an unreadable one)."""
    try:
        status = read_json(Path(run_dir) / SUMMARY).get("status")
    except RunDirError:
        return None
    return status if isinstance(status, str) else None


def unique_runs(runs: Iterable[Path]) -> list[Path]:
    """``runs`` without repeats (the same directory by any path), keeping the first of each."""
    seen: set[Path] = set()
    out = []
    for run in runs:
        real = Path(run).resolve()
        if real not in seen:
            seen.add(real)
            out.append(Path(run))
    return out
