"""latentprobe from Python: :func:`probe` reads the latent space of an encoder held in memory.

The same measurements as ``latentprobe eval`` (:mod:`latentprobe.evaluation`), on arrays instead of a
run directory: offline probes at label budgets, the controls (a randomly initialised copy of the
encoder, PCA, raw inputs), clustering, per-class accuracy and latent statistics. Nothing is written
unless ``out`` is given.
"""

from __future__ import annotations

import hashlib
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: Inputs per call of the encoder.
BATCH = 1024


def probe(
    encoder: Callable[[Any], Any],
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    output: str | int | None = None,
    budgets: Sequence[int | str] = (10, 100, "all"),
    probes: Sequence[str] = ("linear", "mlp", "knn"),
    controls: bool = True,
    k: int = 10,
    seed: int = 0,
    tune: bool = True,
    cache_dir: str | Path | None = None,
    out: str | Path | None = None,
) -> dict[str, Any]:
    """How good is this encoder's latent space? Probe its codes of ``x_train`` / ``x_test``.

    Every probe, budget subset and clustering is fitted on the train arrays only and scored on the test
    arrays. The labeled subsets are class-balanced and drawn by ``seed`` from the train arrays.

    Args:
        encoder: a Keras model, or any callable from a batch of inputs to codes (a NumPy array or tensor
            of shape (batch, ...), flattened to (batch, latent); or a dict or list of them, with
            ``output`` naming the code). It is called on batches of ``x_train`` and ``x_test`` as they
            are: scale them as the encoder expects. A Keras model whose input is the flattened shape of
            the arrays' examples is fed them flattened.
        x_train, y_train: the train arrays: inputs (n, ...) and class labels (n,) of any sortable type.
        x_test, y_test: the test arrays; every test label must occur in ``y_train``.
        output: the code among the encoder's outputs: a dict key or list index; None for its only one.
        budgets: labeled examples per class for the probes, or ``"all"``.
        probes: any of ``linear`` (softmax regression), ``mlp`` (one hidden layer), ``knn``.
        controls: also probe a randomly initialised copy of a Keras encoder (when Keras can clone it),
            the inputs reduced by PCA to the latent size, and the raw inputs.
        k: the kNN probe's neighbours when not tuned.
        seed: draws the budgets' subsets, the random encoder's weights and the probes' randomness.
        tune: choose each probe's regularisation (linear C, kNN k, MLP L2 alpha) by stratified k-fold
            cross-validation on the labels it is given, as ``eval`` does; False keeps the fixed settings
            (C = 1 with 200 iterations, ``k``, alpha 1e-4).
        cache_dir: a folder to keep the PCA and raw-input controls' results in, reused by a later call
            on the same arrays and options; None keeps them in this process only.
        out: a directory to write ``eval.json`` and the figures to (``plots/``); None writes nothing.

    Returns:
        The report, as ``eval.json`` holds it for a run: ``probes`` (one row per features, probe and
        budget: ``labels``, ``accuracy``), ``metrics.eval`` (flat headline numbers such as
        ``linear@all``, ``pca/linear@all``), ``clustering``, ``chance_accuracy``, ``main_probe``,
        ``per_class_accuracy``, ``confusion_matrix``, ``latent``, ``budgets``, ``class_names``, ``options``,
        ``timing``.

    Raises:
        ValueError: arrays that do not fit together, an unknown probe or budget, or an encoder whose
            codes are not (batch, features) after flattening (the message says which).
    """
    from threadpoolctl import threadpool_limits

    from latentprobe.evaluation import options as options_mod

    x_train, x_test = np.asarray(x_train), np.asarray(x_test)
    classes, y_train_i, y_test_i = _encode_labels(np.asarray(y_train), np.asarray(y_test))
    _check_arrays(x_train, y_train_i, x_test, y_test_i)
    try:
        options = options_mod.EvalOptions(
            budgets=options_mod.parse_budgets(",".join(str(b) for b in budgets)),
            probes=options_mod.parse_probes(",".join(probes)),
            k=k,
            seed=seed,
            controls=controls,
            projector=False,
            tune=tune,
        )
    except Exception as exc:  # a UserError of the CLI's option parsing: here, a bad argument
        raise ValueError(str(exc).replace("--", "")) from None
    with threadpool_limits(1):  # as eval: one BLAS thread next to TensorFlow's pool
        return _probe(encoder, output, x_train, y_train_i, x_test, y_test_i, classes, options, out, cache_dir)


def _probe(
    encoder: Any,
    output: str | int | None,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    classes: np.ndarray,
    options: Any,
    out: str | Path | None,
    cache_dir: str | Path | None = None,
) -> dict[str, Any]:
    from latentprobe import rundir
    from latentprobe.errors import ConfigError
    from latentprobe.evaluation import budgets as budgets_mod
    from latentprobe.evaluation import controls as controls_mod
    from latentprobe.evaluation.options import describe_options, probe_settings
    from latentprobe.evaluation.report import headline_metrics
    from latentprobe.evaluation.run import Labels, _Clock, read_latent_space
    from latentprobe.metrics import chance_accuracy
    from latentprobe.models import pretrained

    clock = _Clock()
    try:
        flatten = pretrained.feeds_flattened(encoder, x_train.shape[1:], key="encoder")
    except ConfigError as exc:
        raise ValueError(exc.problem) from None
    mapping = pretrained.InputMapping("unit", flatten)
    model = pretrained.PretrainedEncoder(encoder, None, output=output, mapping=mapping, freeze=False)
    sha256 = _sha256(x_train, y_train)
    features = {"encoder": (_codes(model, x_train), _codes(model, x_test))}
    latent = features["encoder"][0].shape[1]
    if options.controls:
        random = _random_codes(model, x_train, x_test, options.seed)
        if random is not None:
            features["random_encoder"] = random
        # The arrays as the encoder is fed them (scale 1: nothing divided).
        inputs = types.SimpleNamespace(
            train=types.SimpleNamespace(x=x_train, scale=1.0), test=types.SimpleNamespace(x=x_test, scale=1.0)
        )
        features["pca"] = lambda: controls_mod.pca_features(inputs, latent, options.seed)
        features["pixels"] = lambda: controls_mod.pixel_features(inputs)
    clock.lap("features")
    train_index = np.arange(len(y_train), dtype=np.int64)
    subsets = {
        budgets_mod.budget_name(b): budgets_mod.select_budget(y_train, train_index, b, sha256, options.seed)
        for b in options.budgets
    }
    settings = probe_settings(options)
    num_classes = len(classes)
    labels = Labels(y_train, y_test, num_classes, ("arrays", sha256, _sha256(x_test, y_test)))
    cache = None if cache_dir is None else Path(cache_dir)
    read = read_latent_space(features, labels, subsets, options, settings, clock, cache)
    report: dict[str, Any] = {
        "schema_version": rundir.EVAL_SCHEMA_VERSION,
        "options": describe_options(options),
        "chance_accuracy": chance_accuracy(y_train, y_test, num_classes),
        **read,
        "budgets": {"eval_seed": options.seed, "labels": {n: len(i) for n, i in subsets.items()}},
        # The name of each class (its label as text), in the order of the confusion matrix's rows.
        "class_names": [str(c) for c in classes.tolist()],
        "data": {"sha256": sha256, "train_size": len(y_train), "test_size": len(y_test)},
        "encoder": {"latent": latent, "output": output, "fed_flattened": flatten},
    }
    report["metrics"] = {"eval": headline_metrics(report)}
    if out is not None:
        report["plots"] = _write(Path(out), model, features["encoder"], x_test, y_test, num_classes, report)
    report["timing"] = clock.total()
    if out is not None:
        rundir.write_json(Path(out) / rundir.EVAL, report)
    return report


def _encode_labels(y_train: np.ndarray, y_test: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class labels of any type -> 0..K-1 by their sorted values in ``y_train``."""
    if y_train.ndim != 1 or y_test.ndim != 1:
        raise ValueError(f"labels must be 1-d, got y_train {y_train.shape} and y_test {y_test.shape}")
    classes = np.unique(y_train)
    unknown = np.setdiff1d(np.unique(y_test), classes)
    if len(unknown):
        raise ValueError(f"y_test holds classes that y_train does not: {unknown[:5].tolist()}")
    if len(classes) < 2:
        raise ValueError(f"y_train holds {len(classes)} class; a probe needs at least 2")
    return classes, np.searchsorted(classes, y_train), np.searchsorted(classes, y_test)


def _check_arrays(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> None:
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise ValueError(
            f"inputs and labels differ in length: x_train {len(x_train)}, y_train {len(y_train)}, "
            f"x_test {len(x_test)}, y_test {len(y_test)}"
        )
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(f"x_train's examples have shape {x_train.shape[1:]}, x_test's {x_test.shape[1:]}")


def _codes(model: Any, x: np.ndarray) -> np.ndarray:
    """The encoder's codes of ``x``, batch by batch, as float32 (n, latent)."""
    import keras

    from latentprobe.errors import ConfigError
    from latentprobe.models import pretrained

    parts = []
    is_keras = isinstance(model.encoder, keras.Model)
    for start in range(0, len(x), BATCH):
        batch = np.asarray(model.mapping.apply(x[start : start + BATCH].astype(np.float32, copy=False)))
        n = len(batch)
        if is_keras:
            # Every call the same shape: Keras's predict function is traced once, not per batch size.
            padded = np.concatenate([batch, np.zeros((BATCH - n, *batch.shape[1:]), batch.dtype)])
            outputs = model.encoder.predict_on_batch(padded)
        else:
            outputs = model.encoder(batch)
        try:
            z = keras.ops.convert_to_numpy(pretrained.select_output(outputs, model.output_key, "output"))
        except ConfigError as exc:
            raise ValueError(f"output: {exc.problem}") from None
        z = np.asarray(z)[:n] if is_keras else np.asarray(z)
        if z.ndim < 2 or z.shape[0] != n:
            raise ValueError(
                f"the encoder's codes have shape {z.shape} for {n} inputs: "
                "not (batch, features) after flattening"
            )
        parts.append(z.reshape(n, -1).astype(np.float32))
    return np.concatenate(parts)


def _random_codes(model: Any, x_train: np.ndarray, x_test: np.ndarray, seed: int) -> tuple | None:
    clone = model.reinitialized(seed)
    if clone is None:
        return None
    return _codes(clone, x_train), _codes(clone, x_test)


def _sha256(x: np.ndarray, y: np.ndarray) -> str:
    digest = hashlib.sha256()
    for array in (x, y):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _write(
    out: Path,
    model: Any,
    encoder_features: tuple[np.ndarray, np.ndarray],
    x_test: np.ndarray,
    y_test: np.ndarray,
    num_classes: int,
    report: dict[str, Any],
) -> list[str]:
    """The figures eval draws that need no decoder, under ``out/plots``."""
    from latentprobe import rundir
    from latentprobe.evaluation import figures

    out.mkdir(parents=True, exist_ok=True)
    z_train, z_test = encoder_features
    data = types.SimpleNamespace(
        test=types.SimpleNamespace(x=x_test, y=y_test, scale=1.0),
        num_classes=num_classes,
        is_image=False,
        class_names=report["class_names"],
    )
    paths = figures.write_figures(
        out / rundir.PLOTS, model, z_train, z_test, data, report, report["options"]["seed"], False
    )
    return [str(Path(p).relative_to(out)) for p in paths]
