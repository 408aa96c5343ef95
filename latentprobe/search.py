"""A search: a ``search:`` block whose trials Optuna samples, trains through the study's executors and prunes.

A config with ``search:`` describes trials instead of a grid::

    search:
      trials: 24
      objective: val/probe_accuracy    # a validation metric (a test metric is an error)
      direction: maximize
      sampler: tpe                     # tpe | random | grid | qmc
      pruner: median                   # none | median | hyperband (or {median: {n_startup_trials: 2}})
      space:
        model.latent: {int: [2, 16], log: true}
        train.learning_rate: {float: [1.0e-4, 1.0e-2], log: true}
        model.vae.beta: {float: [0.1, 10], log: true}   # sampled only for trials of kind vae
        model.kind: [ae, vae]                           # a list: categorical

Every trial is an ordinary run directory ``output.dir/<name>/trial-NNNN``. The driver asks Optuna for a
trial whenever a worker is free (so the sampler learns from every trial finished so far) and tells it how
the trial ended; the worker reports the objective after every epoch and stops a trial the pruner gives up
on (summary.json: ``status: pruned`` and the ``epoch``). Optuna's storage is a journal file in the study
directory (``optuna.journal``): appended under a file lock, so the driver and the workers (on any node
that sees the directory) share it, and a killed study loses nothing but the unfinished epochs. Running the
command again continues: trials Optuna still holds as running resume from their checkpoints, then new
trials are asked until there are ``trials``. ``search.json`` (rebuilt from the run directories) lists each
trial's values, status and objective.

Checking a search (``validate``) imports neither TensorFlow nor Optuna; Optuna is imported only to run one.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from latentprobe import config as config_mod
from latentprobe import grid as grid_mod
from latentprobe import rundir
from latentprobe.errors import ConfigError, RunDirError, UserError

SEARCH = "search"
SAMPLERS = ("tpe", "random", "grid", "qmc")
PRUNERS = ("none", "median", "hyperband")
DIRECTIONS = ("maximize", "minimize")
#: search.json: the search's spec and its trials (a study directory holds it instead of study.json).
RECORD = "search.json"
#: Optuna's journal storage, in the study directory.
JOURNAL = "optuna.journal"
RECORD_SCHEMA_VERSION = 1
PRUNED = rundir.STATUS_PRUNED
#: How a trial can end for good (an interrupted one resumes).
FINISHED = ("completed", PRUNED, "failed")
MISSING = "search: running a search needs Optuna: pip install 'latentprobe[search]'"
KEYS = ("trials", "objective", "direction", "sampler", "pruner", "space")
#: Each pruner's settings (``pruner: {median: {n_startup_trials: 2}}``) and their defaults: the median rule
#: waits for 5 finished trials and judges from epoch 3 on (the first epochs' probe accuracy is noisy).
PRUNER_SETTINGS: dict[str, dict[str, int]] = {
    "none": {},
    "median": {"n_startup_trials": 5, "n_warmup_steps": 2, "interval_steps": 1},
    "hyperband": {"min_resource": 1, "reduction_factor": 3},
}


@dataclasses.dataclass(frozen=True)
class Param:
    """One dimension of the space: an int or float range (``log`` scale, ``step``) or a list of choices."""

    key: str
    kind: str  # int | float | categorical
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    @property
    def variant(self) -> str | None:
        """The model kind whose settings this is (``model.vae.beta``: vae), else None."""
        parts = self.key.split(".")
        if len(parts) >= 3 and parts[0] == "model" and parts[1] in grid_mod.VARIANT_KINDS:
            return parts[1]
        return None

    def grid_values(self) -> list[Any]:
        """Every value (for the grid sampler): the choices, or an int range's integers."""
        if self.kind == "categorical":
            return list(self.choices)
        step = int(self.step or 1)
        return list(range(int(self.low), int(self.high) + 1, step))

    def to_json(self) -> Any:
        if self.kind == "categorical":
            return list(self.choices)
        out: dict[str, Any] = {self.kind: [self.low, self.high]}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out


@dataclasses.dataclass(frozen=True)
class SearchSpec:
    trials: int
    objective: str
    direction: str
    sampler: str
    pruner: str
    pruner_settings: dict[str, int]
    space: tuple[Param, ...]

    @property
    def metric(self) -> str:
        """The objective's name in summary.json's ``metrics.val`` (``probe_accuracy``)."""
        return self.objective.split("/", 1)[1]

    def to_json(self) -> dict[str, Any]:
        return {
            "trials": self.trials,
            "objective": self.objective,
            "direction": self.direction,
            "sampler": self.sampler,
            "pruner": {self.pruner: self.pruner_settings} if self.pruner_settings else self.pruner,
            "space": {p.key: p.to_json() for p in self.space},
        }


@dataclasses.dataclass(frozen=True)
class Search:
    """A checked search: its spec, the config around it (raw, without ``search:``), where it lives."""

    spec: SearchSpec
    base: dict[str, Any]
    source: str
    lines: dict[str, int]
    overrides: tuple[str, ...]
    name: str
    study_dir: Path
    seed: int
    example: config_mod.RunConfig  # the config of the space's first values: what every trial shares

    def config(self, values: dict[str, Any]) -> config_mod.RunConfig:
        """The validated config of a trial with these values.

        Raises:
            ConfigError: the values make no valid config (naming ``search.space.<key>``).
        """
        return _trial_config(self.base, values, self.source, self.lines, self.overrides)


# --------------------------------------------------------------------------------------------------
# Reading and checking (no TensorFlow, no Optuna)


def has_search(config_path: Path, overrides: Sequence[str] = ()) -> bool:
    """Whether the config file holds a ``search:`` block (an unreadable file: False, the study says why)."""
    try:
        raw, _ = config_mod.read_raw(config_mod.read_file(Path(config_path), str(config_path)), overrides)
    except ConfigError:
        return False
    return SEARCH in raw


def load(config_path: Path, overrides: Sequence[str] = (), seeds: int | None = None) -> Search:
    """Read and check a config with a ``search:`` block: the spec, and the space's ends as configs.

    Raises:
        ConfigError: naming the file, the ``search.`` key and its line (UserError: ``--seeds``).
    """
    source = str(config_path)
    raw, lines = config_mod.read_raw(config_mod.read_file(Path(config_path), source), overrides, source)

    def error(key: str, problem: str) -> ConfigError:
        return config_mod.locate_error(ConfigError(key, problem), source, lines, overrides)

    if seeds is not None:
        raise UserError("--seeds: a search samples its trials; give seed in search.space instead")
    base = copy.deepcopy(raw)
    block = base.pop(SEARCH)
    if grid_mod.GRID in base:
        raise error(grid_mod.GRID, "a config holds a grid or a search, not both")
    for key in grid_mod.SHORTHANDS:
        if isinstance(grid_mod._get_path(base, key), list):
            raise error(key, "a list here makes a grid; in a search, give it in search.space")
    spec = read_spec(block, error)
    example = _check_space(spec, base, source, lines, tuple(overrides), error)
    return Search(
        spec,
        base,
        source,
        lines,
        tuple(overrides),
        example.name,
        Path(example.output.dir) / example.name,
        example.seed,
        example,
    )


def read_spec(block: Any, error: Callable[[str, str], ConfigError]) -> SearchSpec:
    """The ``search:`` block's settings, each checked.

    Raises:
        ConfigError: from ``error(dotted key, problem)``.
    """
    if not isinstance(block, dict):
        raise error(
            SEARCH, f"expected a mapping (trials, objective, space, ...), got {grid_mod._kind(block)}"
        )
    for key in block:
        if key not in KEYS:
            raise error(f"{SEARCH}.{key}", f"not a search setting (expected one of: {', '.join(KEYS)})")
    trials = block.get("trials")
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise error(f"{SEARCH}.trials", f"expected a number of trials >= 1, got {grid_mod._show(trials)}")
    objective = block.get("objective", "val/probe_accuracy")
    if not isinstance(objective, str) or "/" not in objective:
        raise error(f"{SEARCH}.objective", "expected a validation metric such as val/probe_accuracy")
    split = objective.split("/", 1)[0]
    if split == "test":
        raise error(
            f"{SEARCH}.objective",
            f"{objective} is a test metric: a search chooses on validation metrics (val/...), "
            "the test split stays unseen until the best trial is reported",
        )
    if split != "val" or not objective.split("/", 1)[1]:
        raise error(f"{SEARCH}.objective", f"expected a validation metric (val/...), got {objective!r}")
    direction = block.get("direction", "maximize")
    sampler = block.get("sampler", "tpe")
    pruner, pruner_settings = _read_pruner(block.get("pruner", "none"), error)
    for key, value, choices in (
        ("direction", direction, DIRECTIONS),
        ("sampler", sampler, SAMPLERS),
    ):
        if value not in choices:
            raise error(
                f"{SEARCH}.{key}", f"expected one of {', '.join(choices)}, got {grid_mod._show(value)}"
            )
    space_raw = block.get("space")
    if not isinstance(space_raw, dict) or not space_raw:
        raise error(f"{SEARCH}.space", "expected a mapping of dotted config keys to ranges or lists")
    space = tuple(_read_param(key, value, error) for key, value in space_raw.items())
    if sampler == "grid":
        for param in space:
            if param.kind == "float":
                raise error(f"{SEARCH}.space.{param.key}", "the grid sampler takes lists and int ranges only")
    return SearchSpec(trials, objective, direction, sampler, pruner, pruner_settings, space)


def _read_pruner(value: Any, error: Callable[[str, str], ConfigError]) -> tuple[str, dict[str, int]]:
    """``median`` or ``{median: {n_startup_trials: 2}}``: the name and every setting (defaults filled)."""
    key = f"{SEARCH}.pruner"
    settings: Any = {}
    if isinstance(value, dict) and len(value) == 1:
        value, settings = next(iter(value.items()))
        settings = {} if settings is None else settings
    if value not in PRUNERS:
        raise error(key, f"expected one of {', '.join(PRUNERS)}, got {grid_mod._show(value)}")
    if not isinstance(settings, dict):
        raise error(f"{key}.{value}", f"expected a mapping of settings, got {grid_mod._kind(settings)}")
    known = PRUNER_SETTINGS[value]
    out = dict(known)
    for name, number in settings.items():
        if name not in known:
            expected = ", ".join(known) or "none"
            raise error(
                f"{key}.{value}.{name}", f"not a setting of the {value} pruner (expected: {expected})"
            )
        low = 0 if name == "n_warmup_steps" else 1
        if isinstance(number, bool) or not isinstance(number, int) or number < low:
            raise error(
                f"{key}.{value}.{name}", f"expected an integer >= {low}, got {grid_mod._show(number)}"
            )
        out[name] = number
    return value, out


def _read_param(key: Any, value: Any, error: Callable[[str, str], ConfigError]) -> Param:
    label = f"{SEARCH}.space.{key}"
    if not isinstance(key, str) or not key or not all(key.split(".")):
        raise error(label, "expected a dotted config key such as model.latent")
    if key in grid_mod.FIXED or key.startswith("output.") or key == "name":
        raise error(label, "cannot vary: the search lives in output.dir/name")
    defaults = config_mod.to_dict(config_mod.from_dict({}))
    if not grid_mod._is_config_key(key, defaults, grid_mod.VARIANT_KINDS):
        raise error(label, grid_mod._unknown_key_problem(key, defaults).replace("'grid.", "'search.space."))
    if isinstance(value, list):
        if not value:
            raise error(label, "the list of choices is empty")
        return Param(key, "categorical", choices=tuple(value))
    if not isinstance(value, dict):
        raise error(label, f"expected {{int: [low, high]}}, {{float: [low, high]}} or a list, got {value!r}")
    kinds = [k for k in ("int", "float") if k in value]
    extra = set(value) - {"int", "float", "log", "step"}
    if len(kinds) != 1 or extra:
        raise error(label, "expected one of int: [low, high] or float: [low, high] (with log, step)")
    kind = kinds[0]
    bounds = value[kind]
    number = int if kind == "int" else (int, float)
    if (
        not isinstance(bounds, list)
        or len(bounds) != 2
        or any(isinstance(b, bool) or not isinstance(b, number) for b in bounds)
    ):
        raise error(f"{label}.{kind}", f"expected [low, high] of {kind}s, got {grid_mod._show(bounds)}")
    low, high = bounds
    if not low < high:
        raise error(f"{label}.{kind}", f"expected low < high, got [{low}, {high}]")
    log = value.get("log", False)
    if not isinstance(log, bool):
        raise error(f"{label}.log", f"expected true or false, got {grid_mod._show(log)}")
    if log and low <= 0:
        raise error(f"{label}.{kind}", f"a log scale needs low > 0, got {low}")
    step = value.get("step")
    if step is not None and (isinstance(step, bool) or not isinstance(step, number) or step <= 0):
        raise error(f"{label}.step", f"expected a positive {kind}, got {grid_mod._show(step)}")
    if step is not None and log:
        raise error(f"{label}.step", "a log scale takes no step")
    return Param(
        key, kind, float(low) if kind == "float" else low, float(high) if kind == "float" else high, log, step
    )


def _check_space(
    spec: SearchSpec,
    base: dict[str, Any],
    source: str,
    lines: dict[str, int],
    overrides: tuple[str, ...],
    error: Callable[[str, str], ConfigError],
) -> config_mod.RunConfig:
    """Every end of every range and every choice must make a valid config (with the others' first values).

    Returns:
        The config of every dimension's first value: its name, seed and output dir are the search's.
    """
    kinds = _possible_kinds(spec, base)
    for param in spec.space:
        if param.variant is not None and param.variant not in kinds:
            raise error(
                f"{SEARCH}.space.{param.key}",
                f"a setting of kind '{param.variant}', but no trial has model.kind '{param.variant}' "
                f"({', '.join(sorted(map(str, kinds)))})",
            )
    first = {p.key: _ends(p)[0] for p in spec.space}
    example = None
    for param in spec.space:
        for value in _ends(param):
            values = dict(first)
            values[param.key] = value
            if param.variant is not None:
                values["model.kind"] = param.variant  # a variant's setting is checked on its own kind
            cfg = _trial_config(base, values, source, lines, overrides)
            if example is None:
                example = cfg
    assert example is not None
    return example


def _ends(param: Param) -> list[Any]:
    return list(param.choices) if param.kind == "categorical" else [param.low, param.high]


def _possible_kinds(spec: SearchSpec, base: dict[str, Any]) -> set[Any]:
    for param in spec.space:
        if param.key == "model.kind":
            return set(param.choices)
    kind = grid_mod._get_path(base, "model.kind")
    return {kind if kind is not None else config_mod.ModelConfig.kind}


def _trial_config(
    base: dict[str, Any],
    values: dict[str, Any],
    source: str,
    lines: dict[str, int],
    overrides: Sequence[str],
) -> config_mod.RunConfig:
    raw = copy.deepcopy(base)
    kind = values.get("model.kind", grid_mod._get_path(raw, "model.kind") or config_mod.ModelConfig.kind)
    if "model.kind" in values and isinstance(raw.get("model"), dict):
        for other in grid_mod.VARIANT_KINDS:  # the settings of the kinds this trial is not
            if other != kind:
                raw["model"].pop(other, None)
    for key, value in values.items():
        parts = key.split(".")
        if (
            len(parts) >= 3
            and parts[0] == "model"
            and parts[1] in grid_mod.VARIANT_KINDS
            and parts[1] != kind
        ):
            continue  # another kind's setting: this trial has none
        grid_mod._set_path(raw, key, value)
    try:
        return grid_mod.expand_grid(raw, lines, source, grid_mod.VARIANT_KINDS, overrides).runs[0].config
    except ConfigError as exc:
        for key, value in values.items():
            if exc.key == key or exc.key.startswith(key + "."):
                label = f"{SEARCH}.space.{key}"
                line = config_mod.line_of(lines, label)
                raise ConfigError(
                    label, f"{exc.problem} (at {grid_mod._show(value)})", source, line
                ) from None
        raise


def count_trials(spec: SearchSpec) -> int:
    """How many trials the search trains: ``trials``, or fewer when the grid sampler's grid is smaller."""
    if spec.sampler != "grid":
        return spec.trials
    return min(spec.trials, math.prod(len(p.grid_values()) for p in spec.space))


def describe(search: Search) -> str:
    """``validate``'s line: the trials, the sampler, the pruner and the space."""
    spec = search.spec
    dims = ", ".join(p.key for p in spec.space)
    return (
        f"{search.source}: ok (search: {count_trials(spec)} trial(s), {spec.sampler} sampler, "
        f"pruner {spec.pruner}, {spec.direction} {spec.objective} over {dims})"
    )


# --------------------------------------------------------------------------------------------------
# Optuna (imported only here)


def import_optuna() -> Any:
    """Optuna, quiet; a UserError with the install line when it is missing."""
    try:
        import optuna
    except ImportError:
        raise UserError(MISSING) from None
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna


def open_storage(study_dir: Path) -> Any:
    """The study directory's journal storage (created on first use)."""
    optuna = import_optuna()
    from optuna.storages import JournalStorage

    try:
        from optuna.storages.journal import JournalFileBackend
    except ImportError:  # Optuna < 4
        from optuna.storages import JournalFileStorage as JournalFileBackend
    Path(study_dir).mkdir(parents=True, exist_ok=True)
    del optuna
    return JournalStorage(JournalFileBackend(str(Path(study_dir) / JOURNAL)))


def make_sampler(spec: SearchSpec, seed: int) -> Any:
    optuna = import_optuna()
    samplers = optuna.samplers
    if spec.sampler == "random":
        return samplers.RandomSampler(seed=seed)
    if spec.sampler == "grid":
        return samplers.GridSampler({p.key: p.grid_values() for p in spec.space}, seed=seed)
    if spec.sampler == "qmc":
        return samplers.QMCSampler(seed=seed)
    return samplers.TPESampler(seed=seed)


def make_pruner(name: str, settings: dict[str, int], epochs: int) -> Any:
    """Optuna's median pruner, or hyperband (up to ``epochs`` epochs), with the block's settings."""
    optuna = import_optuna()
    if name == "median":
        return optuna.pruners.MedianPruner(**settings)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(max_resource=max(1, epochs), **settings)
    return optuna.pruners.NopPruner()


def suggest(trial: Any, search: Search) -> dict[str, Any]:
    """The trial's values, define-by-run: a variant's settings only for trials of that kind."""
    values: dict[str, Any] = {}
    for param in [p for p in search.spec.space if p.variant is None]:
        values[param.key] = _suggest_one(trial, param)
    kind = values.get("model.kind", search.example.model.kind)
    for param in [p for p in search.spec.space if p.variant is not None]:
        if param.variant == kind:
            values[param.key] = _suggest_one(trial, param)
    return values


def _suggest_one(trial: Any, param: Param) -> Any:
    if param.kind == "categorical":
        return trial.suggest_categorical(param.key, list(param.choices))
    if param.kind == "int":
        return trial.suggest_int(param.key, param.low, param.high, step=int(param.step or 1), log=param.log)
    return trial.suggest_float(param.key, param.low, param.high, step=param.step, log=param.log)


class TrialPruned(Exception):
    """Raised in a run's epoch loop when the pruner gives its trial up: the run ends ``pruned``."""

    run_status = PRUNED

    def __init__(self, epoch: int, value: float, objective: str):
        self.stopped_after_epoch = epoch
        super().__init__(f"pruned after epoch {epoch} ({objective} {value:.4f})")


def epoch_reporter(info: dict[str, Any], run_dir: Path) -> Callable[[str], None]:
    """In the worker: a run's progress callback that reports the objective to Optuna after every epoch
    and raises :class:`TrialPruned` when the pruner says so.

    The epoch's metrics are read from the checkpoint the epoch loop has just written, so the loop itself
    knows nothing of searches. ``info`` is the task's ``search`` entry (storage, study, trial, pruner).
    """
    from latentprobe import checkpoint

    optuna = import_optuna()
    storage = open_storage(Path(info["study_dir"]))
    study = optuna.load_study(
        study_name=info["study"],
        storage=storage,
        pruner=make_pruner(info["pruner"], info["pruner_settings"], info["epochs"]),
    )
    trial = optuna.trial.Trial(study, info["trial_id"])
    objective = info["objective"]

    def report(_line: str) -> None:
        state = checkpoint.read_state(run_dir)
        if state is None:
            return
        values = state["history"].get(objective) or [None]
        value, epoch = values[-1], state["epoch"]
        if value is None or not math.isfinite(value):
            return
        trial.report(float(value), epoch)
        if trial.should_prune():
            raise TrialPruned(epoch, float(value), objective)

    return report


# --------------------------------------------------------------------------------------------------
# The driver


@dataclasses.dataclass
class TrialRun:
    number: int
    trial_id: int
    values: dict[str, Any]
    run_dir: Path
    status: str = "pending"
    reason: str | None = None
    value: float | None = None
    epoch: int | None = None

    @property
    def name(self) -> str:
        return self.run_dir.name


def trial_name(number: int) -> str:
    return f"trial-{number:04d}"


class TrialFeed:
    """The tasks of a search, made one at a time as the executor takes them (``popleft``).

    Trials Optuna holds as running (a killed session's) come first, to resume; then new trials are asked
    until the search has ``trials``. An executor reads it like its deque of tasks.
    """

    def __init__(self, search: Search, study: Any, threads: int):
        from latentprobe.executors import Task

        self._task = Task
        self.search = search
        self.study = study
        self.threads = threads
        self.runs: dict[str, TrialRun] = {}
        self._resume: list[TrialRun] = []
        self._total = count_trials(search.spec)
        self._asked = 0
        optuna = import_optuna()
        running = optuna.trial.TrialState.RUNNING
        for frozen in study.get_trials(deepcopy=False):
            run = TrialRun(
                frozen.number,
                frozen._trial_id,
                dict(frozen.params),
                search.study_dir / trial_name(frozen.number),
            )
            self.runs[run.name] = run
            if frozen.state == running:
                self._resume.append(run)
        self._existing = len(self.runs)
        # A sample task (the first values' config) for the executors' "may a run use a GPU" question.
        self._sample = Task("sample", config_mod.to_dict(search.example), "", threads=threads)

    def __iter__(self) -> Iterator[Any]:
        return iter([self._sample])

    def __len__(self) -> int:
        return len(self._resume) + max(0, self._total - self._existing - self._asked)

    def __bool__(self) -> bool:
        return len(self) > 0

    def popleft(self) -> Any:
        if self._resume:
            run = self._resume.pop(0)
            resume = (run.run_dir / rundir.CONFIG).is_file()
            cfg = self.search.config(run.values)
        else:
            optuna = import_optuna()
            trial = self.study.ask()
            self._asked += 1
            try:
                values = suggest(trial, self.search)
                cfg = self.search.config(values)
            except ConfigError as exc:  # values that make no valid config (e.g. a hidden size too small)
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
                run = TrialRun(
                    trial.number,
                    trial._trial_id,
                    trial.params,
                    self.search.study_dir / trial_name(trial.number),
                )
                run.status, run.reason = "failed", str(exc)
                self.runs[run.name] = run
                return self.popleft() if self else self._empty()
            run = TrialRun(
                trial.number, trial._trial_id, values, self.search.study_dir / trial_name(trial.number)
            )
            self.runs[run.name] = run
            resume = False
        run.status = "running"
        epochs = cfg.train.epochs + (cfg.probe.epochs if cfg.probe.strategy == "frozen" else 0)
        info = {
            "study_dir": str(self.search.study_dir),
            "study": self.search.name,
            "trial_id": run.trial_id,
            "objective": self.search.spec.objective,
            "pruner": self.search.spec.pruner,
            "pruner_settings": self.search.spec.pruner_settings,
            "epochs": epochs,
        }
        return self._task(
            run.name, config_mod.to_dict(cfg), str(run.run_dir), resume, self.threads, search=info
        )

    def _empty(self) -> Any:
        raise IndexError("no trial left")


def run_search(search: Search, executor: Any, out: Callable[..., None]) -> tuple[list[TrialRun], bool]:
    """Train the search's trials not yet done on ``executor``; keep search.json current.

    Returns:
        The trials, and whether any failed.
    """
    optuna = import_optuna()
    from latentprobe.study import _lock

    study_dir = search.study_dir
    with _lock(study_dir):
        storage = open_storage(study_dir)
        epochs = search.example.train.epochs
        study = optuna.create_study(
            study_name=search.name,
            storage=storage,
            load_if_exists=True,
            direction=search.spec.direction,
            sampler=make_sampler(search.spec, search.seed),
            pruner=make_pruner(search.spec.pruner, search.spec.pruner_settings, epochs),
        )
        earlier = len(study.get_trials(deepcopy=False))
        if earlier:  # a continued search: a sampler seeded as before would draw the first trials again
            study.sampler = make_sampler(search.spec, search.seed + earlier)
        # The same search may be given more trials; anything else of it is another search.
        spec_json = {k: v for k, v in search.spec.to_json().items() if k != "trials"}
        if "spec" not in study.user_attrs:
            study.set_user_attr("spec", spec_json)
        elif study.user_attrs["spec"] != spec_json:
            raise RunDirError(
                f"{study_dir}: holds a search of another search: block; give it another name or output.dir"
            )
        feed = TrialFeed(search, study, executor.threads)
        _settle_finished(feed, study, search.spec.objective)
        write_record(search, feed.runs.values())
        total = count_trials(search.spec)
        before = sum(r.status in FINISHED for r in feed.runs.values())
        out(f"search: {total} trials, {before} done before", err=True)
        failed = False
        try:
            for event in executor.run(feed):
                run = feed.runs[event.name]
                if not hasattr(event, "status"):  # RunStarted
                    continue
                _tell(study, run, event.status, event.reason, search.spec.objective)
                failed = failed or run.status == "failed"
                done = sum(r.status in FINISHED for r in feed.runs.values())
                out(f"[{done}/{total}] {_event_line(search, run)}", err=True)
                write_record(search, feed.runs.values())
        except KeyboardInterrupt:
            for run in feed.runs.values():
                if run.status == "running":
                    run.status = "interrupted"
            write_record(search, feed.runs.values())
            raise
        return sorted(feed.runs.values(), key=lambda r: r.number), failed


def _settle_finished(feed: TrialFeed, study: Any, objective: str) -> None:
    """Trials a killed driver never told Optuna about but whose runs ended: tell it now (not retrained)."""
    for run in list(feed._resume):
        summary = _read_summary(run.run_dir)
        if summary.get("status") in (rundir.STATUS_COMPLETED, PRUNED):
            _tell(study, run, summary["status"], summary.get("reason"), objective)
            feed._resume.remove(run)
    for run in feed.runs.values():
        if run.status == "pending":  # finished in an earlier session
            _read_outcome(run, objective)


def _tell(study: Any, run: TrialRun, status: str, reason: str | None, objective: str) -> None:
    optuna = import_optuna()
    state = optuna.trial.TrialState
    run.status, run.reason = status, reason
    _read_outcome(run, objective)
    if status == "interrupted":
        return  # stays running in Optuna: the next session resumes it
    try:
        if status == "completed" and run.value is not None:
            study.tell(run.number, run.value)
        elif status == PRUNED:
            study.tell(run.number, state=state.PRUNED)
        else:
            if status == "completed":
                run.status, run.reason = "failed", f"summary.json has no {objective}"
            study.tell(run.number, state=state.FAIL)
    except (RuntimeError, ValueError):  # told already (a resumed session)
        pass


def _read_outcome(run: TrialRun, objective: str) -> None:
    """The trial's status, objective and epoch from its run directory (the truth)."""
    summary = _read_summary(run.run_dir)
    if not summary:
        return
    status = summary.get("status")
    run.status = status if status in ("completed", PRUNED, "failed", "interrupted") else run.status
    run.reason = summary.get("reason", run.reason)
    history = summary.get("history") or {}
    epochs = history.get("epoch") or []
    run.epoch = summary.get("epoch") if status != "completed" else (epochs[-1] if epochs else None)
    run.value = None
    if status == "completed":
        run.value = _number((summary.get("metrics", {}).get("val") or {}).get(objective.split("/", 1)[1]))
    elif status == PRUNED:  # its last reported objective
        finite = [v for v in history.get(objective) or [] if _number(v) is not None]
        run.value = float(finite[-1]) if finite else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _read_summary(run_dir: Path) -> dict[str, Any]:
    try:
        return rundir.read_json(run_dir / rundir.SUMMARY)
    except RunDirError:
        return {}


def _event_line(search: Search, run: TrialRun) -> str:
    shown = "  ".join(f"{k}={_short(v)}" for k, v in run.values.items())
    if run.status == "completed":
        return f"{run.name}: completed  {search.spec.objective} {run.value:.4f}  ({shown})"
    if run.status == PRUNED:
        return f"{run.name}: pruned after epoch {run.epoch}  ({shown})"
    return f"{run.name}: {run.status}: {run.reason}"


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_record(search: Search, runs: Any) -> Path:
    """Write ``search.json``: the spec and every trial's values, status, objective and epoch."""
    ordered = sorted(runs, key=lambda r: r.number)
    best = _best(search.spec.direction, ordered)
    path = search.study_dir / RECORD
    rundir.write_json(
        path,
        {
            "schema_version": RECORD_SCHEMA_VERSION,
            "name": search.name,
            "search": search.spec.to_json(),
            "best": best.name if best else None,
            "trials": [
                {
                    "number": r.number,
                    "dir": r.name,
                    "values": r.values,
                    "status": r.status,
                    "reason": r.reason if r.status not in ("completed",) else None,
                    "value": r.value,
                    "epoch": r.epoch,
                }
                for r in ordered
            ],
        },
    )
    return path


def _best(direction: str, runs: Sequence[TrialRun]) -> TrialRun | None:
    done = [r for r in runs if r.status == "completed" and r.value is not None]
    if not done:
        return None
    return (max if direction == "maximize" else min)(done, key=lambda r: r.value)


def train_search(
    config_path: Path,
    overrides: Sequence[str],
    jobs: int | None,
    threads: int | None,
    executor: str,
    address: str | None,
    out: Callable[..., None],
) -> int:
    """``latentprobe train CONFIG`` for a config with ``search:``; the exit code as ``train_study``'s."""
    import contextlib

    from latentprobe import executors, tracking
    from latentprobe.errors import error_lines
    from latentprobe.study import check_data, check_devices

    with contextlib.ExitStack() as stack:
        try:
            search = load(config_path, overrides)
            import_optuna()
            one = grid_mod.Grid((), {}, [grid_mod.GridRun("example", {}, search.example)])
            check_devices(one, config_path, overrides)
            chosen = stack.enter_context(executors.create(executor, jobs, threads, address))
            chosen.warm_up(count_trials(search.spec), search.example.train.device != "cpu")
            check_data(one, config_path, overrides)
            tracking.prepare(search.example.output.mlflow, search.name)
            trials, failed = run_search(search, chosen, out)
        except UserError as exc:
            for line in error_lines(exc):
                out(line, err=True)
            return 2
        except KeyboardInterrupt:
            out("interrupted: the same command continues the search", err=True)
            return 130
    best = _best(search.spec.direction, trials)
    counts = {s: sum(r.status == s for r in trials) for s in ("completed", PRUNED, "failed")}
    out(
        f"{search.study_dir}: {counts['completed']} completed, {counts[PRUNED]} pruned, "
        f"{counts['failed']} failed"
    )
    if best is not None:
        out(f"best: {best.run_dir}  {search.spec.objective} {best.value:.4f}  " + _values(best.values))
    return 1 if failed else 0


def _values(values: dict[str, Any]) -> str:
    return "  ".join(f"{k}={_short(v)}" for k, v in values.items())
