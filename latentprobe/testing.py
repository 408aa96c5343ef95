"""Checks for a model variant's author: ``check_variant`` is to a variant what scikit-learn's
``check_estimator`` is to an estimator.

Call it from your plug-in's pytest::

    from latentprobe.testing import check_variant
    from my_package import ContractiveAutoencoder

    def test_contractive_keeps_latentprobe_rules(tmp_path):
        check_variant(ContractiveAutoencoder, {"weight": 0.1}, tmp_path=tmp_path)

It trains tiny real runs on the bundled 8x8 digits (latent 2, 2 epochs, XLA as ``train.jit_compile``'s
default: 10-15 s in all on 2 cores) and raises an ``AssertionError`` that names the rule the variant
broke and how:

- ``loss convention``: one plain SGD step (learning rate 1) moves the weights by minus the gradient of
  reconstruction + sum of weight x raw term, with the weights the ``regularizers`` hook declares, and the
  logged ``loss`` is that total (a variant that adds a term it does not declare fails);
- ``determinism``: two runs with the same seed give the same history, to the last bit;
- ``resume``: a run stopped after epoch 1 and resumed from its checkpoint ends as the uninterrupted run;
- ``save and load``: the saved run, rebuilt as ``eval`` rebuilds it, reproduces summary.json's test
  metrics, and ``encoder.keras`` loads with plain ``keras.models.load_model``;
- ``probe freeze``: training the probe (the frozen strategy's probe phase) never moves the encoder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from latentprobe import components, config, kinds, pixels, rundir, train
from latentprobe import data as data_mod
from latentprobe.models.autoencoder import Autoencoder

RULES = ("loss convention", "determinism", "resume", "save and load", "probe freeze")


class VariantCheckError(AssertionError):
    """A rule a variant broke; the message starts with the rule's name."""


def check_variant(
    variant: type[Autoencoder] | str,
    settings: Any = None,
    *,
    weights: Mapping[str, float] | None = None,
    rules: tuple[str, ...] = RULES,
    tmp_path: str | Path | None = None,
    model: Mapping[str, Any] | None = None,
) -> None:
    """Check that a variant keeps latentprobe's rules; raise an ``AssertionError`` naming a broken one.

    Args:
        variant: the variant class (a subclass of ``latentprobe.models.Autoencoder``), or a ``model.kind``
            string (a built-in kind, an installed one, an import path).
        settings: the variant's settings block, as a mapping (as the config would give it) or an
            instance of its ``Settings`` dataclass; None for the defaults. It is checked as a config is.
        weights: optionally, the weight you expect each term to carry with these settings
            (``{"contractive_loss": 0.1}``); checked against what ``regularizers`` declares.
        rules: the rules to check (default: all of ``RULES``).
        tmp_path: where the check's runs go (pytest's ``tmp_path``); a temporary directory otherwise.
        model: other ``model`` keys of the tiny config (``{"hidden": [32], "latent": 3}``).

    Raises:
        AssertionError: ``"<rule>: <what went wrong>"``.
    """
    unknown = sorted(set(rules) - set(RULES))
    if unknown:
        raise ValueError(f"unknown rules {unknown}; the rules are {list(RULES)}")
    with _kind_of(variant) as kind, _directory(tmp_path) as directory:
        cfg = _tiny_config(kind, settings, directory, model or {})
        if "loss convention" in rules:
            check_loss_convention(cfg, weights)
        run_rules = {"determinism", "resume", "save and load"} & set(rules)
        if run_rules:
            _check_runs(cfg, directory, run_rules)
        if "probe freeze" in rules:
            check_probe_freeze(cfg)


# -- the rules -------------------------------------------------------------------------------------


def check_loss_convention(cfg: config.RunConfig, weights: Mapping[str, float] | None = None) -> None:
    """One SGD step minimised reconstruction + sum of declared weight x logged raw term (the rule
    ``loss convention``); a variant without a reconstruction (the supervised baseline) has nothing here."""
    model = components.build_model(cfg, (8, 8, 1), 10, seed=cfg.seed)
    if "reconstruction_loss" not in model.all_terms:
        return
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0, momentum=0.0))
    variables = model.encoder.trainable_variables + model.decoder.trainable_variables
    model.optimizer.build(variables)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.random((16, 8, 8, 1)).astype("float32"))
    y = tf.constant(np.arange(16) % 10, tf.int32)
    # The base class's update; a variant with its own train_step (extra phases, other networks) keeps
    # the rule in its reconstruction update, ``fit_batch``, which its train_step calls.
    own_step = type(model).train_step is not Autoencoder.train_step
    batch = (x, x[:8], y[:8]) if model.uses_labels else x

    def step():
        return model.fit_batch(x)[0] if own_step else model.train_step(batch)

    state = [v.numpy().copy() for v in model.variables]  # weights and seed generator states
    before = [v.numpy().copy() for v in variables]
    logs = {name: float(value) for name, value in step().items()}
    updates = [b - v.numpy() for b, v in zip(before, variables, strict=True)]
    for v, value in zip(model.variables, state, strict=True):
        v.assign(value)
    with tf.GradientTape() as tape:
        terms, codes = model.forward(x, training=True)
        declared = model.regularizers(x, codes, training=True)  # for the weights: Python numbers
        total = terms["reconstruction_loss"] + sum(
            r.weight * terms[name] for name, r in declared.items() if r.weight
        )
        if model.losses:
            total = total + sum(model.losses)
    gradients = tape.gradient(total, variables)

    rule = "loss convention"
    undeclared = sorted(set(declared) - set(model.all_terms))
    _expect(not undeclared, rule, f"regularizers returns {undeclared}, which logged_terms does not list")
    for name, expected in (weights or {}).items():
        _expect(
            name in declared, rule, f"regularizers declares no term {name!r} (it declares {sorted(declared)})"
        )
        _expect(
            float(declared[name].weight) == float(expected),
            rule,
            f"regularizers declares weight {declared[name].weight} for {name!r}, expected {expected}",
        )
    for name in ("reconstruction_loss", *declared):
        _expect(
            np.isclose(float(terms[name]), logs[name], rtol=1e-5, atol=1e-6),
            rule,
            f"the logged {name} ({logs[name]:.6g}) is not the term the hooks give ({float(terms[name]):.6g})",
        )
    recomputed = logs["reconstruction_loss"] + sum(
        r.weight * logs[n] for n, r in declared.items() if r.weight
    )
    _expect(
        np.isclose(logs["loss"], recomputed, rtol=1e-5, atol=1e-6) or bool(model.losses),
        rule,
        f"the logged loss {logs['loss']:.6g} is not reconstruction + sum of weight x raw term "
        f"({recomputed:.6g}); form the total only in total_loss, from the terms regularizers declares",
    )
    for variable, update, gradient in zip(variables, updates, gradients, strict=True):
        expected = np.zeros_like(update) if gradient is None else np.asarray(gradient)
        if not np.allclose(update, expected, rtol=1e-3, atol=1e-4):
            worst = float(np.max(np.abs(update - expected)))
            raise VariantCheckError(
                f"{rule}: the step did not minimise reconstruction + sum of weight x raw term (the update "
                f"of {variable.path} differs from that total's gradient by up to {worst:.3g}); declare every "
                "term the loss adds, with its weight, in regularizers, and change nothing after it"
            )


def _check_runs(cfg: config.RunConfig, directory: Path, rules: set[str]) -> None:
    """``determinism``, ``resume`` and ``save and load``, on two tiny runs of two epochs."""
    splits = data_mod.load(cfg.data, cfg.seed)
    reference_dir, stopped_dir = directory / "reference", directory / "stopped"
    for path in (reference_dir, stopped_dir):
        path.mkdir(parents=True)
    reference = train.run_one(cfg, reference_dir, splits)

    def stop_after_first_epoch(line: str) -> None:
        if line.startswith("epoch 1/"):
            raise KeyboardInterrupt  # what Ctrl-C raises: the run ends as interrupted, resumable

    if rules & {"determinism", "resume"}:
        with contextlib.suppress(KeyboardInterrupt):
            train.run_one(cfg, stopped_dir, splits, progress=stop_after_first_epoch)
        state = rundir.read_json(stopped_dir / rundir.CHECKPOINTS / rundir.CHECKPOINT_STATE)
        if "determinism" in rules:
            first = {k: v[:1] for k, v in reference["history"].items()}
            _expect(
                state["history"] == first,
                "determinism",
                f"two runs with seed {cfg.seed} differ after epoch 1: "
                f"{_difference(state['history'], first)}; "
                "draw every random number from the seed (keras.random.SeedGenerator(seed) in __init__)",
            )
        if "resume" in rules:
            resumed = train.resume(stopped_dir)
            for part in ("history", "metrics"):
                _expect(
                    resumed[part] == reference[part],
                    "resume",
                    f"a run resumed after epoch 1 ends with other {part} than the uninterrupted run: "
                    f"{_difference(resumed[part], reference[part])}; keep every state that changes in "
                    "training in variables of the model (a checkpoint saves model.variables and every "
                    "keras Optimizer attribute)",
                )
    if "save and load" in rules:
        check_save_and_load(cfg, reference_dir, reference, splits)


def check_save_and_load(cfg: config.RunConfig, run_dir: Path, summary: dict, splits: Any) -> None:
    """The saved run, rebuilt as eval rebuilds it, reproduces its test metrics (rule ``save and load``)."""
    from latentprobe.metrics import measure

    rule = "save and load"
    try:
        model, head = components.restore_model(cfg, run_dir, splits.input_shape, splits.num_classes)
    except Exception as exc:
        raise VariantCheckError(f"{rule}: the saved run does not load: {exc}") from None
    test = measure(model, head, splits.test.x, splits.test.y, scale=splits.test.scale)
    expected = {k: v for k, v in summary["metrics"]["test"].items() if k in test}
    got = {k: test[k] for k in expected}
    _expect(
        all(np.isclose(got[k], expected[k], rtol=1e-5, atol=1e-6) for k in expected),
        rule,
        f"the run rebuilt from its saved files measures {got} on test, summary.json says {expected}; "
        "build every weight in the encoder and decoder networks (build_from_config), where saving finds them",
    )
    try:
        encoder = keras.models.load_model(run_dir / rundir.ENCODER, compile=False)
    except Exception as exc:
        raise VariantCheckError(
            f"{rule}: keras.models.load_model cannot load encoder.keras ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:200]}); register custom layers with "
            "@keras.saving.register_keras_serializable"
        ) from None
    x = pixels.scale_array(splits.test.x[:32], splits.test.scale)  # stored bytes as the encoder reads them
    saved, built = encoder(x, training=False), model.encoder(x, training=False)
    for name in built:
        _expect(
            np.allclose(np.asarray(saved[name]), np.asarray(built[name]), rtol=1e-5, atol=1e-6),
            rule,
            f"encoder.keras gives other {name!r} than the model rebuilt from the run",
        )


def check_probe_freeze(cfg: config.RunConfig) -> None:
    """The frozen strategy's probe phase leaves every encoder weight as it was (rule ``probe freeze``)."""
    cfg = dataclasses.replace(
        cfg,
        probe=dataclasses.replace(cfg.probe, strategy="frozen", every="step", epochs=1),
        train=dataclasses.replace(cfg.train, epochs=1),
    )
    splits = data_mod.load(cfg.data, cfg.seed)
    train.seed_everything(cfg.seed)
    parts = components.build_components(cfg, splits)
    after_autoencoder = None
    for record in parts.strategy.run():
        if record.phase == "autoencoder":
            after_autoencoder = [v.numpy().copy() for v in parts.model.encoder.weights]
    _expect(after_autoencoder is not None, "probe freeze", "the frozen strategy ran no autoencoder phase")
    for variable, before in zip(parts.model.encoder.weights, after_autoencoder, strict=True):
        _expect(
            np.array_equal(variable.numpy(), before),
            "probe freeze",
            f"training the probe moved the encoder's {variable.path}; the probe must read "
            "ops.stop_gradient codes, and probe_features must change no variable",
        )


# -- helpers ---------------------------------------------------------------------------------------


def _expect(condition: bool, rule: str, message: str) -> None:
    if not condition:
        raise VariantCheckError(f"{rule}: {message}")


def _difference(got: Any, expected: Any) -> str:
    if isinstance(got, dict) and isinstance(expected, dict):
        for key in sorted(set(got) | set(expected)):
            if got.get(key) != expected.get(key):
                return f"{key} is {got.get(key)}, expected {expected.get(key)}"
    return f"{got} against {expected}"


def _tiny_config(kind: str, settings: Any, directory: Path, model: Mapping[str, Any]) -> config.RunConfig:
    block = kinds.resolve(kind).block
    raw_model: dict[str, Any] = {"kind": kind, "latent": 2, "hidden": [16], **model}
    if settings is not None:
        if dataclasses.is_dataclass(settings) and not isinstance(settings, type):
            settings = config._plain(settings)
        raw_model[block] = dict(settings)
    raw = {
        "name": "check",
        "seed": 0,
        "data": {"name": "digits", "limit": 400, "validation": 0.1},
        "model": raw_model,
        "probe": {"strategy": "alternating", "learning_rate": 0.01, "epochs": 1},
        # XLA, as a config trains by default: the graph path without it can differ in a last bit between
        # two runs in one process (a VAE's logged elbo_loss with beta 2), which XLA's code does not.
        "train": {"epochs": 2, "batch_size": 64, "learning_rate": 0.003, "jit_compile": True},
        "output": {"dir": str(directory)},
    }
    return config.from_dict(raw)


@contextlib.contextmanager
def _kind_of(variant: type[Autoencoder] | str) -> Iterator[str]:
    """A ``model.kind`` for ``variant``: a string as it is; a class by its import path, registered in this
    process for the check (a class defined in a test function has no import path that finds it)."""
    if isinstance(variant, str):
        kinds.resolve(variant)  # a ConfigError here names the kind
        yield variant
        return
    if not (isinstance(variant, type) and issubclass(variant, Autoencoder)):
        raise TypeError(f"check_variant takes a subclass of latentprobe.models.Autoencoder, got {variant!r}")
    with kinds.registered(variant) as kind:
        yield kind


@contextlib.contextmanager
def _directory(path: str | Path | None) -> Iterator[Path]:
    if path is not None:  # kept, for a look after a failure; a new directory per call
        Path(path).mkdir(parents=True, exist_ok=True)
        yield Path(tempfile.mkdtemp(prefix="check_variant-", dir=path))
        return
    with tempfile.TemporaryDirectory(prefix="check_variant-") as tmp:
        yield Path(tmp)
