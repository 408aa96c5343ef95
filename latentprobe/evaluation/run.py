"""eval's orchestrator: ``evaluate(RUN_DIR)`` reads a saved run's latent space several ways.

Its steps, in order: load the run (config, rebuilt model, data), compute the features (the encoder's and
the controls'), fit the offline probes at each label budget, cluster, measure the online-offline gap,
describe the latents, draw the figures, write the projector, then ``eval.json``. Nothing is fitted on the
test split; summary.json is never edited; the global random state (Python, NumPy, TensorFlow, Keras) is
left as it was: every draw derives from the eval seed.

The steps that read a latent space from its features alone (probes at the label budgets, clustering, the
main probe's per-class accuracy and confusion matrix, latent statistics) are :func:`read_latent_space`,
shared by ``evaluate(RUN_DIR)`` and the in-memory :func:`latentprobe.api.probe`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from latentprobe import components, pixels, rundir
from latentprobe import config as config_mod
from latentprobe import data as data_mod
from latentprobe.errors import RunDirError
from latentprobe.evaluation import budgets as budgets_mod
from latentprobe.evaluation import controls, figures, latent_stats, probing, projector
from latentprobe.evaluation.options import EvalOptions, describe_options, main_probe, probe_settings
from latentprobe.evaluation.report import headline_metrics
from latentprobe.metrics import chance_accuracy, encode, measure
from latentprobe.models import pretrained
from latentprobe.tensorboard_log import write_image_files

#: Feature values (rows x dimensions, summed over the fits) below which the probes are fitted in this
#: process: starting worker processes takes longer than fitting them (the bundled digits).
PARALLEL_MIN_WORK = 2_000_000
#: Test inputs the model's own ``latent_statistics`` hook sees at most.
VARIANT_STATS_POINTS = 10000

#: ``name -> (train, test)`` features, or a function computing them (a data-only control, computed only
#: when its results are not cached).
Features = dict[str, "tuple[np.ndarray, np.ndarray] | Callable[[], tuple[np.ndarray, np.ndarray]]"]


@dataclass(frozen=True)
class Labels:
    """The labels a latent space is read against, and what identifies their split.

    Attributes:
        y_train: labels of the train part (probes, budgets and clustering are fitted on it only).
        y_test: labels of the test split (only ever scored on).
        num_classes: K.
        split_key: identifies the data split; results of a feature set computed from the data alone
            (``controls.DATA_ONLY``) are cached and reused across evals with the same key.
    """

    y_train: np.ndarray
    y_test: np.ndarray
    num_classes: int
    split_key: tuple[str, ...]

    @classmethod
    def of(cls, splits: data_mod.Splits) -> Labels:
        return cls(splits.train.y, splits.test.y, splits.num_classes, controls.split_key(splits))


@dataclass(frozen=True)
class LoadedRun:
    """A complete run read back: its config, summary, data and rebuilt models."""

    cfg: config_mod.RunConfig
    summary: dict[str, Any]
    splits: data_mod.Splits
    model: Any
    head: keras.Model


def evaluate(run_dir: Path, options: EvalOptions | None = None) -> dict[str, Any]:
    """Evaluate a saved run and write ``RUN_DIR/eval.json``, plots and TensorBoard data.

    Returns:
        The eval report (also written to eval.json).

    Raises:
        RunDirError: the run is incomplete, a saved file cannot be read, or the data changed.
    """
    from threadpoolctl import threadpool_limits

    # One BLAS/OpenMP thread: next to TensorFlow's own pool (and on a busy machine) the default threads
    # spin-wait on each other; a softmax regression on MNIST latents took 98 s with 2 threads, 5 s with 1.
    with threadpool_limits(1):
        return _evaluate(Path(run_dir), options or EvalOptions())


def _evaluate(run_dir: Path, options: EvalOptions) -> dict[str, Any]:
    settings = probe_settings(options)
    clock = _Clock()
    run = load_run(run_dir)
    clock.lap("load")
    test = _measure_test(run)
    features = _features(run, options)
    clock.lap("features")
    subsets = _budgets(run_dir, run.splits, options)
    cache = controls.cache_dir_for(run_dir) if options.cache else None
    read = read_latent_space(features, Labels.of(run.splits), subsets, options, settings, clock, cache)
    z_train, z_test = features["encoder"]
    gap = _online_offline_gap(z_train, z_test, run.splits, test["probe_accuracy"], settings, read["probes"])
    gap["online_head"] = run.cfg.probe.head
    read["latent"]["variant"] = run.model.latent_statistics(
        pixels.scale_array(run.splits.test.x[:VARIANT_STATS_POINTS], run.splits.test.scale)
    )
    clock.lap("latent_statistics")
    report = _report(run_dir, run, options, test, read, subsets, gap)
    report["plots"] = _plots(run_dir, run, features["encoder"], report, options)
    clock.lap("plots")
    if options.projector:
        report["projector"] = _projector(run_dir, run.splits, z_test)
        clock.lap("projector")
    report["timing"] = clock.total()
    rundir.write_json(run_dir / rundir.EVAL, report)
    return report


# ---- the steps ----


def load_run(run_dir: Path) -> LoadedRun:
    """Read a complete run back: its config and summary, its data (checked against the run's), and its
    model and probe head rebuilt through the registry with the saved weights.

    Raises:
        RunDirError: the run is incomplete, a saved model cannot be loaded, or the data changed.
    """
    run_dir = Path(run_dir)
    rundir.check_complete(run_dir)
    summary = rundir.read_summary(run_dir)
    cfg = config_mod.load(run_dir / rundir.CONFIG)
    splits = data_mod.load(cfg.data, cfg.seed)
    recorded = (summary.get("data") or {}).get("sha256") if isinstance(summary.get("data"), dict) else None
    if recorded and recorded != splits.sha256:
        raise RunDirError(
            f"{run_dir}: the data differs from the data the run was trained on "
            f"(sha256 {splits.sha256[:12]}... != {recorded[:12]}...)"
        )
    model, head = components.restore_model(cfg, run_dir, splits.input_shape, splits.num_classes)
    pretrained.adapt(model, splits.train.x, splits.train.scale)
    return LoadedRun(cfg, summary, splits, model, head)


def _measure_test(run: LoadedRun) -> dict[str, float]:
    """The test split's metrics as ``train`` measured them (summary.json), plus chance."""
    splits = run.splits
    test = measure(run.model, run.head, splits.test.x, splits.test.y, scale=splits.test.scale)
    test["chance_accuracy"] = chance_accuracy(
        splits.train.y[splits.labeled_idx], splits.test.y, splits.num_classes
    )
    return test


def _features(run: LoadedRun, options: EvalOptions) -> Features:
    """(train, test) features per feature set: the encoder's latents, then the controls'."""
    splits = run.splits
    features = {
        "encoder": (
            encode(run.model, splits.train.x, scale=splits.train.scale),
            encode(run.model, splits.test.x, scale=splits.test.scale),
        )
    }
    if options.controls:
        random = controls.random_encoder_features(run.cfg, splits, options.seed, run.model)
        if random is not None:
            features["random_encoder"] = random
        latent = features["encoder"][0].shape[1]
        features["pca"] = lambda: controls.pca_features(splits, latent, options.seed)
        features["pixels"] = lambda: controls.pixel_features(splits)
    return features


def _budgets(run_dir: Path, splits: data_mod.Splits, options: EvalOptions) -> dict[str, np.ndarray]:
    """The label budgets' subsets of the train part, saved under ``RUN_DIR/eval/budgets.npz``."""
    return budgets_mod.load_or_select_budgets(
        run_dir / rundir.EVAL_DIR / rundir.BUDGETS,
        splits.train.y,
        splits.train_index,
        options.budgets,
        splits.sha256,
        options.seed,
    )


def read_latent_space(
    features: Features,
    labels: Labels,
    subsets: dict[str, np.ndarray],
    options: EvalOptions,
    settings: probing.ProbeSettings,
    clock: _Clock | None = None,
    cache: Path | None = None,
) -> dict[str, Any]:
    """Read the encoder's latent space and the controls' from their features alone.

    Args:
        features: ``name -> (train, test)`` features (or a function computing them); ``encoder`` first,
            then any controls.
        labels: the train part's and the test split's labels.
        subsets: each label budget's indices into the train part (class-balanced, from train only).
        clock: laps ``probes`` and ``clustering`` when given, and times each feature set's probes.
        cache: the folder keeping the data-only controls' results (``controls.DATA_ONLY``); None keeps
            them in this process only.

    Returns:
        ``probes`` (one row per feature set, probe and budget), ``clustering``, ``main_probe``,
        ``per_class_accuracy`` and ``confusion_matrix`` (of the main probe), ``latent`` (statistics of
        the encoder's test latents).
    """
    clock = clock or _Clock()
    features = dict(features)
    latent_size = features["encoder"][0].shape[1]
    keys = {
        name: controls.cache_key(
            name,
            latent_size if name == "pca" else None,
            labels.split_key,
            _digest(subsets),
            options.probes,
            settings,
        )
        for name in features
        if name in controls.DATA_ONLY
    }
    rows, main_prediction = _offline_probes(features, subsets, labels, options, settings, keys, cache, clock)
    clock.lap("probes")
    clustering = _clustering(features, labels, settings, keys, cache)
    clock.lap("clustering")
    z_train, z_test = features["encoder"]
    latent = latent_stats.describe_latents(z_test)
    if z_train.shape[1] == 2:
        latent["area_share"] = latent_stats.class_area_share(z_train, labels.y_train, labels.num_classes)
    k = labels.num_classes
    return {
        "probes": rows,
        "clustering": clustering,
        "main_probe": {"features": "encoder", "probe": main_probe(options), "budget": _main_budget(subsets)},
        "per_class_accuracy": probing.per_class_accuracy(labels.y_test, main_prediction, k),
        "confusion_matrix": probing.confusion(labels.y_test, main_prediction, k).tolist(),
        "latent": latent,
    }


def _offline_probes(
    features: Features,
    subsets: dict[str, np.ndarray],
    labels: Labels,
    options: EvalOptions,
    settings: probing.ProbeSettings,
    keys: dict[str, str],
    cache: Path | None,
    clock: _Clock,
) -> tuple[list[dict[str, Any]], np.ndarray | None]:
    """Every probe on every feature set at every budget, scored on test.

    A data-only control's fits are read from the cache when there (``keys``); the other fits run in
    ``options.workers`` processes at once.

    Returns:
        One row per fit, and the main probe's test predictions (the encoder's, at the largest budget).
    """
    y_train, y_test = labels.y_train, labels.y_test
    main = ("encoder", main_probe(options), _main_budget(subsets))
    fits: dict[tuple[str, str, str], probing.ProbeFit] = {}
    cached: set[str] = set()
    tasks = []
    for name in features:
        hit = controls.read_cached(cache, keys[name]) if name in keys else None
        if hit is not None:
            fits.update(_fits_from_cache(name, hit))
            cached.add(name)
            continue
        z_train, z_test = _resolve(features, name)
        for probe in options.probes:
            for budget, idx in subsets.items():
                tasks.append(((name, probe, budget), probe, z_train[idx], y_train[idx], z_test))
    # The dearest first, so that the workers finish together.
    tasks.sort(key=lambda t: -len(t[3]) * t[2].shape[1] * (3 if t[1] == "mlp" else 1))
    for key, fit, (seconds, cpu) in _fit_tasks(tasks, settings, _workers(options)):
        fits[key] = fit
        part = f"{key[0]}/{key[1]}"
        clock.parts[part] = clock.parts.get(part, 0.0) + seconds
        clock.parts_cpu[part] = clock.parts_cpu.get(part, 0.0) + cpu
    for name in cached:
        clock.parts[f"{name}/cached"] = clock.parts_cpu[f"{name}/cached"] = 0.0
    for name in keys:
        if name not in cached:
            _write_fits(cache, keys[name], name, fits)
    rows, main_prediction = [], None
    for name in features:
        for probe in options.probes:
            for budget in subsets:
                fit = fits[name, probe, budget]
                rows.append(
                    {
                        "features": name,
                        "probe": probe,
                        "budget": budget,
                        "labels": len(subsets[budget]),
                        "accuracy": probing.accuracy(y_test, fit.prediction),
                        **fit.describe(),
                    }
                )
                if (name, probe, budget) == main:
                    main_prediction = fit.prediction
    return rows, main_prediction


def _fit_tasks(tasks: list, settings: probing.ProbeSettings, workers: int) -> list:
    """``(key, fit, seconds)`` of each task ``(key, probe, z_train, y_train, z_test)``, in ``workers``
    processes (joblib's loky, one BLAS thread each) when more than one and the work is large enough.
    A fit is the same computation in any process, so the results do not depend on ``workers``."""
    work = sum(len(z) * z.shape[1] for _, _, z, _, _ in tasks)
    if workers <= 1 or len(tasks) <= 1 or work < PARALLEL_MIN_WORK:
        return [probing.fit_timed(key, probe, z, y, zt, settings) for key, probe, z, y, zt in tasks]
    from joblib import Parallel, delayed

    return Parallel(n_jobs=min(workers, len(tasks)), backend="loky", inner_max_num_threads=1)(
        delayed(probing.fit_timed)(key, probe, z, y, zt, settings) for key, probe, z, y, zt in tasks
    )


def _workers(options: EvalOptions) -> int:
    """Processes for the probes: ``options.workers``, else the cores this process may use (an
    ``eval --jobs N`` worker's share, as its thread limit says)."""
    if options.workers > 0:
        return options.workers
    from latentprobe.evaluation.batch import threads_per_worker

    limit = os.environ.get("OMP_NUM_THREADS", "")
    cores = threads_per_worker(1)
    return min(cores, int(limit)) if limit.isdigit() and int(limit) > 0 else cores


def _resolve(features: Features, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A feature set's (train, test) features, computed now (and kept) if given as a function."""
    value = features[name]
    if callable(value):
        value = features[name] = value()
    return value


def _digest(subsets: dict[str, np.ndarray]) -> str:
    import hashlib

    digest = hashlib.sha256()
    for name in sorted(subsets):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(subsets[name], dtype=np.int64).tobytes())
    return digest.hexdigest()


def _fits_from_cache(name: str, hit: dict[str, Any]) -> dict[tuple[str, str, str], probing.ProbeFit]:
    out = {}
    for entry in hit["meta"]["fits"]:
        prediction = hit["arrays"][f"{entry['probe']}__{entry['budget']}"]
        out[name, entry["probe"], entry["budget"]] = probing.ProbeFit(
            prediction, entry["chosen"], entry["converged"], entry["n_iter"], entry["tuning"]
        )
    return out


def _write_fits(cache: Path | None, key: str, name: str, fits: dict) -> None:
    mine = {(probe, budget): fit for (n, probe, budget), fit in fits.items() if n == name}
    meta = {
        "features": name,
        "fits": [{"probe": p, "budget": b, **fit.describe()} for (p, b), fit in mine.items()],
    }
    arrays = {f"{p}__{b}": fit.prediction for (p, b), fit in mine.items()}
    controls.write_cached(cache, key, meta, arrays)


def _clustering(
    features: Features,
    labels: Labels,
    settings: probing.ProbeSettings,
    keys: dict[str, str],
    cache: Path | None,
) -> dict[str, dict[str, float]]:
    """k-means accuracy and NMI per feature set (a data-only control's from the cache when there)."""
    scores = {}
    for name in features:
        key = f"{keys[name]}-clustering" if name in keys else None
        hit = controls.read_cached(cache, key) if key else None
        if hit is not None:
            scores[name] = hit["meta"]
            continue
        z_train, z_test = _resolve(features, name)
        scores[name] = probing.score_clustering(
            z_train, labels.y_train, z_test, labels.y_test, labels.num_classes, settings
        )
        if key:
            controls.write_cached(cache, key, scores[name], {})
    return scores


def _online_offline_gap(
    z_train: np.ndarray,
    z_test: np.ndarray,
    splits: data_mod.Splits,
    online: float,
    settings: probing.ProbeSettings,
    rows: list[dict[str, Any]],
) -> dict[str, Any]:
    """The probe trained during ``train`` against a linear probe refit here on the same labeled subset."""
    idx = splits.labeled_idx
    reuse = [
        r["accuracy"]
        for r in rows
        if (r["features"], r["probe"], r["budget"]) == ("encoder", "linear", budgets_mod.ALL)
    ]
    if len(idx) == len(splits.train.y) and reuse:
        offline = reuse[0]
    else:
        fit = probing.fit_probe("linear", z_train[idx], splits.train.y[idx], z_test, settings)
        offline = probing.accuracy(splits.test.y, fit.prediction)
    return {
        "online_probe_accuracy": online,
        "offline_linear_accuracy": offline,
        "gap": offline - online,
        "labels": len(idx),
    }


def _report(
    run_dir: Path,
    run: LoadedRun,
    options: EvalOptions,
    test: dict[str, float],
    read: dict[str, Any],
    subsets: dict[str, np.ndarray],
    gap: dict[str, Any],
) -> dict[str, Any]:
    """The report as eval.json holds it (figures, projector and timing are added after)."""
    splits = run.splits
    reference = run.summary["metrics"]["test"]
    report: dict[str, Any] = {
        "schema_version": rundir.EVAL_SCHEMA_VERSION,
        "run_dir": str(run_dir.resolve()),
        "options": describe_options(options),
        "metrics": {"test": test},
        "summary_difference": {
            name: abs(value - reference[name]) for name, value in test.items() if name in reference
        },
        "chance_accuracy": test["chance_accuracy"],
        "probes": read["probes"],
        "clustering": read["clustering"],
        "main_probe": read["main_probe"],
        # The name of each class, in the order of per_class_accuracy, the confusion matrix's rows and
        # columns and latent.area_share.
        "class_names": list(splits.class_names),
        "per_class_accuracy": read["per_class_accuracy"],
        "confusion_matrix": read["confusion_matrix"],
        "online_offline": gap,
        "latent": read["latent"],
        "budgets": {
            "file": f"{rundir.EVAL_DIR}/{rundir.BUDGETS}",
            "eval_seed": options.seed,
            "labels": {name: len(idx) for name, idx in subsets.items()},
        },
        "data": {"name": splits.name, "sha256": splits.sha256, "test_size": len(splits.test.y)},
    }
    report["metrics"]["eval"] = headline_metrics(report)
    return report


def _plots(
    run_dir: Path,
    run: LoadedRun,
    encoder_features: tuple[np.ndarray, np.ndarray],
    report: dict[str, Any],
    options: EvalOptions,
) -> list[str]:
    """Draw the figures as PNG under ``RUN_DIR/plots`` and log them as TensorBoard images (``tb/eval``)."""
    z_train, z_test = encoder_features
    paths = figures.write_figures(
        run_dir / rundir.PLOTS, run.model, z_train, z_test, run.splits, report, options.seed, options.tsne
    )
    write_image_files(run_dir / rundir.TB / rundir.TB_EVAL, paths)
    return [str(Path(p).relative_to(run_dir)) for p in paths]


def _projector(run_dir: Path, splits: data_mod.Splits, z_test: np.ndarray) -> str:
    """The test latents for TensorBoard's projector, beside eval's images; returns the config's path."""
    x_sprite = pixels.scale_array(splits.test.x, splits.test.scale) if splits.is_image else None
    path = projector.write_projector(
        run_dir / rundir.TB / rundir.TB_EVAL, z_test, splits.test.y, x_sprite, splits.class_names
    )
    return str(path.relative_to(run_dir))


def _main_budget(subsets: dict[str, np.ndarray]) -> str:
    return max(subsets, key=lambda name: len(subsets[name]))


class _Clock:
    """Seconds per step (``<step>_seconds``) and in total."""

    def __init__(self) -> None:
        self.timing: dict[str, float] = {}
        self.parts: dict[str, float] = {}  # seconds of each feature set's probe family, summed over fits
        self.parts_cpu: dict[str, float] = {}  # the same in CPU seconds (of the process that fitted)
        self.started = self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timing[f"{name}_seconds"] = now - self.last
        self.last = now

    def total(self) -> dict[str, float]:
        parts = {}
        if self.parts:
            parts = {"probe_fit_seconds": dict(self.parts), "probe_fit_cpu_seconds": dict(self.parts_cpu)}
        return {**self.timing, "total_seconds": time.perf_counter() - self.started, **parts}
