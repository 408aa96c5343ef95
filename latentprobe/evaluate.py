"""Eval of a saved run: how good is its latent space? Reloads the models (no retraining) and reads the
latent space several ways, writing ``eval.json``, plots and TensorBoard data.

- Re-measures the test split with :func:`latentprobe.metrics.measure` (it reproduces summary.json).
- Offline probes (linear, MLP, kNN) at several label budgets, on class-balanced subsets of the train
  part saved under ``RUN_DIR/eval/budgets.npz`` (:mod:`latentprobe.budgets`), scored on test.
- k-means clustering accuracy (Hungarian matching) and NMI; per-class accuracy and the confusion matrix.
- Controls: chance, the same probes on a randomly initialised encoder of the same architecture, and on
  the raw inputs reduced by PCA (fitted on train) to the latent size.
- The online-offline gap: the probe trained during ``train`` against a linear probe refit here on the
  same labeled subset.
- Latent statistics (:mod:`latentprobe.latent_stats`) plus the model's own ``latent_statistics`` hook.
- Plots (:mod:`latentprobe.plots`) as PNG under ``RUN_DIR/plots`` and as TensorBoard images under
  ``RUN_DIR/tb/eval``, with the embedding projector (:mod:`latentprobe.projector`) beside them.

Nothing is fitted on the test split. It never edits summary.json.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from latentprobe import budgets as budgets_mod
from latentprobe import config as config_mod
from latentprobe import data as data_mod
from latentprobe import latent_stats, models, plots, probing, projector, rundir
from latentprobe.errors import RunDirError, UserError
from latentprobe.metrics import chance_accuracy, encode, measure
from latentprobe.models import MODELS
from latentprobe.text_table import align_columns

SCHEMA_VERSION = 2
EVAL_DIR = "eval"
PLOTS_DIR = "plots"
TB_EVAL_DIR = "tb/eval"
BUDGETS_FILE = "budgets.npz"
#: Feature sets probed: the run's encoder, then the two controls.
FEATURES = ("encoder", "random_encoder", "pca")
#: Test points drawn in the latent scatter (PCA/direct); t-SNE takes fewer, it is slow.
SCATTER_POINTS = 5000
TSNE_POINTS = 2000
#: Train examples the PCA control is fitted on at most (its components barely move beyond this).
PCA_MAX_TRAIN = 10000
RECONSTRUCTIONS = 20
#: Test inputs the model's own ``latent_statistics`` hook sees at most.
VARIANT_STATS_POINTS = 10000
MANIFOLD_STEPS = 15


@dataclass(frozen=True)
class EvalOptions:
    """What eval computes; the defaults keep an MNIST eval under a minute on 2 CPU cores."""

    budgets: tuple[int | str, ...] = budgets_mod.DEFAULT_BUDGETS
    probes: tuple[str, ...] = probing.PROBES
    k: int = 10
    seed: int = 0
    controls: bool = True
    tsne: bool = False
    projector: bool = True
    probe_settings: probing.ProbeSettings = field(default_factory=probing.ProbeSettings)


def parse_budgets(text: str) -> tuple[int | str, ...]:
    """``"10,100,all"`` -> ``(10, 100, "all")``; raises UserError naming the bad item."""
    out: list[int | str] = []
    for item in (part.strip() for part in text.split(",")):
        if item == budgets_mod.ALL:
            out.append(item)
        elif item.isdigit() and int(item) > 0:
            out.append(int(item))
        else:
            raise UserError(f"--budgets: {item!r} is not a positive number of labels per class or 'all'")
    if not out or len(set(out)) != len(out):
        raise UserError(f"--budgets: expected distinct budgets, got {text!r}")
    return tuple(out)


def parse_probes(text: str) -> tuple[str, ...]:
    """``"linear,knn"`` -> ``("linear", "knn")``; raises UserError for an unknown probe."""
    out = tuple(part.strip() for part in text.split(","))
    for item in out:
        if item not in probing.PROBES:
            raise UserError(
                f"--probes: unknown probe {item!r} (expected any of: {', '.join(probing.PROBES)})"
            )
    return out


def load_run(run_dir: Path) -> tuple[config_mod.RunConfig, Any, keras.Model, dict[str, Any]]:
    """Read a complete run back: its config, the rebuilt model, the probe head and its summary."""
    run_dir = Path(run_dir)
    rundir.check_complete(run_dir)
    summary = rundir.read_summary(run_dir)
    cfg = config_mod.load(run_dir / rundir.CONFIG)
    encoder = _load_model(run_dir / rundir.ENCODER)
    decoder = _load_model(run_dir / rundir.DECODER)
    head = _load_model(run_dir / rundir.PROBE)
    model = MODELS[cfg.model.kind](encoder, decoder, cfg.model.reconstruction_loss, cfg.model.settings)
    return cfg, model, head, summary


def _load_model(path: Path) -> keras.Model:
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # a truncated or foreign file: say which, not a Keras traceback
        raise RunDirError(f"{path}: cannot load the saved model ({type(exc).__name__}: {exc})") from None


def evaluate(run_dir: Path, options: EvalOptions | None = None) -> dict[str, Any]:
    """Evaluate a saved run and write ``RUN_DIR/eval.json``, plots and TensorBoard data.

    Returns:
        The eval report (also written to eval.json).
    """
    from threadpoolctl import threadpool_limits

    # One BLAS/OpenMP thread: next to TensorFlow's own pool (and on a busy machine) the default threads
    # spin-wait on each other; a softmax regression on MNIST latents took 98 s with 2 threads, 5 s with 1.
    with threadpool_limits(1):
        return _evaluate(Path(run_dir), options or EvalOptions())


def _evaluate(run_dir: Path, options: EvalOptions) -> dict[str, Any]:
    settings = probing.ProbeSettings(
        **{**asdict(options.probe_settings), "k": options.k, "seed": options.seed}
    )
    started = time.perf_counter()
    timing: dict[str, float] = {}
    clock = _Clock(timing)
    cfg, model, head, summary = load_run(run_dir)
    splits = data_mod.load(cfg.data, cfg.seed)
    recorded = summary.get("data", {}).get("sha256")
    if recorded and recorded != splits.sha256:
        raise RunDirError(
            f"{run_dir}: the data differs from the data the run was trained on "
            f"(sha256 {splits.sha256[:12]}... != {recorded[:12]}...)"
        )
    clock.lap("load")
    test = measure(model, head, splits.test.x, splits.test.y)
    test["chance_accuracy"] = chance_accuracy(
        splits.train.y[splits.labeled_idx], splits.test.y, splits.num_classes
    )
    reference = summary["metrics"]["test"]

    features = {"encoder": (encode(model, splits.train.x), encode(model, splits.test.x))}
    if options.controls:
        features["random_encoder"] = _random_encoder_features(cfg, splits, options.seed)
        features["pca"] = _pca_features(splits, cfg.model.latent, options.seed)
    clock.lap("features")

    subsets = budgets_mod.load_or_select_budgets(
        run_dir / EVAL_DIR / BUDGETS_FILE,
        splits.train.y,
        splits.train_index,
        options.budgets,
        splits.sha256,
        options.seed,
    )
    y_train, y_test, k = splits.train.y, splits.test.y, splits.num_classes
    rows, main_prediction = [], None
    for name, (z_train, z_test) in features.items():
        for probe in options.probes:
            for budget, idx in subsets.items():
                predicted = probing.fit_predict(probe, z_train[idx], y_train[idx], z_test, settings)
                rows.append(
                    {
                        "features": name,
                        "probe": probe,
                        "budget": budget,
                        "labels": len(idx),
                        "accuracy": probing.accuracy(y_test, predicted),
                    }
                )
                if (name, probe, budget) == ("encoder", _main_probe(options), _main_budget(subsets)):
                    main_prediction = predicted
    clock.lap("probes")
    clustering = {
        name: probing.score_clustering(z_train, y_train, z_test, y_test, k, settings)
        for name, (z_train, z_test) in features.items()
    }
    clock.lap("clustering")
    z_train, z_test = features["encoder"]
    online_offline = _online_offline_gap(z_train, z_test, splits, test["probe_accuracy"], settings, rows)
    online_offline["online_head"] = cfg.probe.head
    latent = _latent_statistics(model, z_train, z_test, splits)
    clock.lap("latent_statistics")

    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run_dir": str(run_dir.resolve()),
        "options": _describe_options(options),
        "metrics": {"test": test},
        "summary_difference": {
            name: abs(value - reference[name]) for name, value in test.items() if name in reference
        },
        "chance_accuracy": test["chance_accuracy"],
        "probes": rows,
        "clustering": clustering,
        "main_probe": {"features": "encoder", "probe": _main_probe(options), "budget": _main_budget(subsets)},
        "per_class_accuracy": probing.per_class_accuracy(y_test, main_prediction, k),
        "confusion_matrix": probing.confusion(y_test, main_prediction, k).tolist(),
        "online_offline": online_offline,
        "latent": latent,
        "budgets": {
            "file": f"{EVAL_DIR}/{BUDGETS_FILE}",
            "eval_seed": options.seed,
            "labels": {name: len(idx) for name, idx in subsets.items()},
        },
        "data": {"name": splits.name, "sha256": splits.sha256, "test_size": len(splits.test.y)},
    }
    report["metrics"]["eval"] = headline_metrics(report)
    report["plots"] = _write_plots(run_dir, model, features, splits, report, options)
    clock.lap("plots")
    if options.projector:
        x_sprite = splits.test.x if splits.is_image else None
        config_path = projector.write_projector(run_dir / TB_EVAL_DIR, z_test, y_test, x_sprite)
        report["projector"] = str(config_path.relative_to(run_dir))
        clock.lap("projector")
    timing["total_seconds"] = time.perf_counter() - started
    report["timing"] = timing
    rundir.write_json(run_dir / rundir.EVAL, report)
    return report


class _Clock:
    def __init__(self, timing: dict[str, float]):
        self.timing = timing
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timing[f"{name}_seconds"] = now - self.last
        self.last = now


def _main_probe(options: EvalOptions) -> str:
    return "linear" if "linear" in options.probes else options.probes[0]


def _main_budget(subsets: dict[str, np.ndarray]) -> str:
    return max(subsets, key=lambda name: len(subsets[name]))


def _describe_options(options: EvalOptions) -> dict[str, Any]:
    return {
        "budgets": [budgets_mod.budget_name(b) for b in options.budgets],
        "probes": list(options.probes),
        "k": options.k,
        "seed": options.seed,
        "controls": options.controls,
        "tsne": options.tsne,
        "mlp_hidden": list(options.probe_settings.mlp_hidden),
        "knn_max_train": options.probe_settings.knn_max_train,
        "kmeans_max_train": options.probe_settings.kmeans_max_train,
    }


def headline_metrics(report: dict[str, Any]) -> dict[str, float]:
    """Flat ``name -> number`` view of a report, as ``compare`` shows it (``eval/<name>``).

    The encoder's probes are ``<probe>@<budget>``; the controls' ``<features>/<probe>@<budget>``.
    """
    flat: dict[str, float] = {}
    for row in report["probes"]:
        prefix = "" if row["features"] == "encoder" else f"{row['features']}/"
        flat[f"{prefix}{row['probe']}@{row['budget']}"] = row["accuracy"]
    for name, scores in report["clustering"].items():
        prefix = "" if name == "encoder" else f"{name}/"
        for metric, value in scores.items():
            flat[f"{prefix}{metric}"] = value
    gap = report["online_offline"]
    flat["offline_linear_accuracy"] = gap["offline_linear_accuracy"]
    flat["online_offline_gap"] = gap["gap"]
    flat["active_units"] = float(report["latent"]["active_units"])
    return flat


def _random_encoder_features(cfg: Any, splits: data_mod.Splits, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Latents of an untrained model of the same architecture, initialised under a fixed seed."""
    keras.utils.set_random_seed(seed)
    random_model = models.build(cfg.model, cfg.model.latent, splits.input_shape, splits.num_classes)
    return encode(random_model, splits.train.x), encode(random_model, splits.test.x)


def _pca_features(splits: data_mod.Splits, latent: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw inputs projected onto their first ``latent`` principal components, fitted on train."""
    from sklearn.decomposition import PCA

    x_train = splits.train.x.reshape(len(splits.train.x), -1)
    x_test = splits.test.x.reshape(len(splits.test.x), -1)
    fit_rows = x_train
    if len(x_train) > PCA_MAX_TRAIN:
        fit_rows = x_train[
            np.random.default_rng([seed, 9]).choice(len(x_train), PCA_MAX_TRAIN, replace=False)
        ]
    n_components = min(latent, *fit_rows.shape)
    pca = PCA(n_components, svd_solver="randomized", random_state=seed).fit(fit_rows)
    return pca.transform(x_train).astype(np.float32), pca.transform(x_test).astype(np.float32)


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
        predicted = probing.fit_predict("linear", z_train[idx], splits.train.y[idx], z_test, settings)
        offline = probing.accuracy(splits.test.y, predicted)
    return {
        "online_probe_accuracy": online,
        "offline_linear_accuracy": offline,
        "gap": offline - online,
        "labels": len(idx),
    }


def _latent_statistics(
    model: Any, z_train: np.ndarray, z_test: np.ndarray, splits: data_mod.Splits
) -> dict[str, Any]:
    stats = latent_stats.describe_latents(z_test)
    if z_train.shape[1] == 2:
        stats["area_share"] = latent_stats.class_area_share(z_train, splits.train.y, splits.num_classes)
    stats["variant"] = model.latent_statistics(splits.test.x[:VARIANT_STATS_POINTS])
    return stats


# ---- plots and TensorBoard images ----


def _write_plots(
    run_dir: Path,
    model: Any,
    features: dict[str, tuple[np.ndarray, np.ndarray]],
    splits: data_mod.Splits,
    report: dict[str, Any],
    options: EvalOptions,
) -> list[str]:
    out = run_dir / PLOTS_DIR
    z_train, z_test = features["encoder"]
    y_test = splits.test.y
    shown = np.random.default_rng([options.seed, 10]).permutation(len(z_test))[:SCATTER_POINTS]
    paths = []
    if z_test.shape[1] == 2:
        paths.append(
            plots.plot_latent_scatter(z_test[shown], y_test[shown], "test latents", out / "latent.png")
        )
    else:
        from sklearn.decomposition import PCA

        pca = PCA(2, random_state=options.seed).fit(z_train[:PCA_MAX_TRAIN])
        title = f"test latents, PCA of {z_test.shape[1]} dimensions (fitted on train)"
        paths.append(
            plots.plot_latent_scatter(
                pca.transform(z_test[shown]), y_test[shown], title, out / "latent.png", axes="PC"
            )
        )
    if options.tsne:
        from sklearn.manifold import TSNE

        few = shown[:TSNE_POINTS]
        embedded = TSNE(2, random_state=options.seed, init="pca").fit_transform(z_test[few])
        title = f"test latents, t-SNE of {len(few)} points"
        paths.append(
            plots.plot_latent_scatter(embedded, y_test[few], title, out / "latent_tsne.png", "t-SNE ")
        )
    if splits.is_image:
        x = splits.test.x[:RECONSTRUCTIONS]
        paths.append(plots.plot_reconstructions(x, model.predict_on_batch(x), out / "reconstructions.png"))
        if z_test.shape[1] == 2:
            paths.append(_plot_manifold(model, z_train, out / "manifold.png"))
    paths.append(
        plots.plot_budget_curve(
            report["probes"],
            report["chance_accuracy"],
            out / "label_budget.png",
            len(z_train),
            splits.num_classes,
        )
    )
    main = report["main_probe"]
    title = f"{main['features']} / {main['probe']} probe, {main['budget']} labels"
    paths.append(plots.plot_confusion(np.array(report["confusion_matrix"]), title, out / "confusion.png"))
    _write_tensorboard_images(run_dir / TB_EVAL_DIR, paths)
    return [str(Path(p).relative_to(run_dir)) for p in paths]


def _plot_manifold(model: Any, z_train: np.ndarray, path: Path) -> Path:
    """Decode a grid over the 2-d box holding the train codes' central mass (seed 004's sweep)."""
    bounds = latent_stats.latent_bounds(z_train, 5.0, 95.0)
    xs = np.linspace(bounds[0, 0], bounds[1, 0], MANIFOLD_STEPS)
    ys = np.linspace(bounds[1, 1], bounds[0, 1], MANIFOLD_STEPS)  # top row: largest z2
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(np.float32)
    images = np.asarray(model.decoder.predict_on_batch(grid))
    images = images.reshape(MANIFOLD_STEPS, MANIFOLD_STEPS, *images.shape[1:])
    return plots.plot_image_grid(images, "decoder over the latent plane (z1 across, z2 down)", path)


def _write_tensorboard_images(log_dir: Path, paths: list[Path]) -> None:
    """Each PNG as a TensorBoard image summary named after its file."""
    import tensorflow as tf

    # A re-eval replaces the images rather than stacking a second set at the same step.
    for old in Path(log_dir).glob("events.out.tfevents.*"):
        old.unlink()
    writer = tf.summary.create_file_writer(str(log_dir))
    try:
        with writer.as_default():
            for path in paths:
                image = tf.image.decode_png(tf.io.read_file(str(path)), channels=4)
                tf.summary.image(Path(path).stem, image[None], step=0)
    finally:
        writer.close()


# ---- the terminal table ----


def render_report(report: dict[str, Any]) -> str:
    """A compact table: accuracy per probe and budget for the encoder and the controls, then the rest."""
    rows = report["probes"]
    feature_names = [f for f in FEATURES if any(r["features"] == f for r in rows)]
    cells: dict[tuple[str, str, str], float] = {
        (r["probe"], r["budget"], r["features"]): r["accuracy"] for r in rows
    }
    keys = list(dict.fromkeys((r["probe"], r["budget"]) for r in rows))
    header = ["probe@labels/class", *feature_names]
    lines = [header]
    for probe, budget in keys:
        lines.append([f"{probe}@{budget}", *(_fmt(cells.get((probe, budget, f))) for f in feature_names)])
    for metric in ("kmeans_accuracy", "nmi"):
        lines.append([metric, *(_fmt(report["clustering"].get(f, {}).get(metric)) for f in feature_names)])
    text = align_columns([lines])
    gap = report["online_offline"]
    latent = report["latent"]
    text += [
        f"chance {report['chance_accuracy']:.4f}"
        f"   test/probe_accuracy (online) {gap['online_probe_accuracy']:.4f}"
        f"   offline linear on the same {gap['labels']} labels {gap['offline_linear_accuracy']:.4f}"
        f"   gap {gap['gap']:+.4f}",
        f"active units {latent['active_units']}/{len(latent['active'])}   "
        f"test/reconstruction_loss {report['metrics']['test'].get('reconstruction_loss', float('nan')):.4f}",
    ]
    if "area_share" in latent:
        shares = " ".join(f"{k}:{s:.2f}" for k, s in enumerate(latent["area_share"]["share"]))
        text.append(f"latent area share per class  {shares}")
    return "\n".join(text) + "\n"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
