"""The loss convention: every variant minimises reconstruction + sum of weight x logged raw term, with the
weights its config declares.

``check_minimised_loss`` recomputes the total from a step's logged terms and the weights taken from the
config, and compares it with what the step actually minimised: one plain SGD step (learning rate 1, no
momentum) moves each weight by minus the gradient of the minimised loss, so the update must equal the
gradient of the recomputed total. A variant whose loss is not what it declares (a weight applied outside
``regularizers``, a total patched after the hook) fails here the moment it is registered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from latentprobe import config, models
from latentprobe.models import MODELS, losses
from latentprobe.models.adversarial import AdversarialAutoencoder
from latentprobe.models.autoencoder import Regularizer
from latentprobe.models.supervised import SupervisedClassifier
from latentprobe.models.vae import VariationalAutoencoder

#: Each kind's loss as config settings -> {logged term: weight}: the data term (weight 1) and every
#: regularisation term. A kind registered in ``MODELS`` needs an entry here.
WEIGHTS: dict[str, Callable[[Any], dict[str, float]]] = {
    "ae": lambda s: {"reconstruction_loss": 1.0},
    "dae": lambda s: {"reconstruction_loss": 1.0},
    "vae": lambda s: {"reconstruction_loss": 1.0, "kl_loss": s.beta},
    "sparse": lambda s: {
        "reconstruction_loss": 1.0,
        "sparsity_loss": s.beta if s.penalty == "kl" else s.weight,
        "weight_decay_loss": s.weight_decay,
    },
    # The reconstruction phase, the one ``model.optimizer`` takes; the adversarial phases have their own.
    "aae": lambda s: {"reconstruction_loss": 1.0},
    "supervised": lambda s: {"classification_loss": 1.0},
}

#: Settings away from the defaults, so a weight left at 1 (or at its default) shows.
SETTINGS: dict[str, tuple[str, dict | None]] = {
    "dae": ("dae", {"noise": "gaussian", "std": 0.2}),
    "dae-mask": ("dae", {"noise": "mask", "fraction": 0.4}),
    "vae": ("vae", {"beta": 4.0}),
    "sparse": ("sparse", {"rho": 0.1, "beta": 4.0, "weight_decay": 0.01}),
    "sparse-l1": ("sparse", {"penalty": "l1", "weight": 0.5, "weight_decay": 0.02}),
    "aae": ("aae", {"noise_std": 0.1, "discriminator_hidden": [8]}),
    "aae-semi": ("aae", {"semi_supervised": True, "noise_std": 0.1, "discriminator_hidden": [8]}),
}


def model_config(name: str):
    kind, settings = SETTINGS.get(name, (name, None))
    raw = {"kind": kind, "latent": 3, "hidden": [16]}
    if settings is not None:
        raw[kind] = settings
    return config.from_dict({"model": raw}).model


def compile_sgd(model):
    """Plain SGD, learning rate 1, no momentum: a step moves each weight by minus its gradient."""
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0, momentum=0.0))
    model.optimizer.build(model.encoder.trainable_variables + model.decoder.trainable_variables)
    return model


def data():
    rng = np.random.default_rng(0)
    x = rng.random((16, 8, 8, 1)).astype("float32")
    y = np.arange(16) % 10
    return x, x[:8], y[:8]


def step_and_terms(model, x, x_labeled, y_labeled) -> tuple[Callable, Callable]:
    """The model's update on one batch (returning its logs), and a rerun of the terms it logs (tensors)."""
    if isinstance(model, SupervisedClassifier):
        return (
            lambda: model.train_step((x, x_labeled, y_labeled)),
            lambda: model.classification_terms(x_labeled, y_labeled, training=True),
        )
    if isinstance(model, AdversarialAutoencoder):  # its reconstruction phase: the base class's update
        return lambda: model.fit_batch(x)[0], lambda: model.forward(x, training=True)[0]
    batch = (x, x_labeled, y_labeled) if model.uses_labels else x
    return lambda: model.train_step(batch), lambda: model.forward(x, training=True)[0]


def check_minimised_loss(model, weights: Mapping[str, float]) -> None:
    """Assert one SGD step of ``model`` minimised ``sum(weights[t] * logged t)``, with raw logged terms.

    The model must be compiled with ``compile_sgd``. The step's update is set against the gradient of the
    total recomputed from a rerun of the logged terms, at the weights and random draws (the seed
    generators' states) of the step.
    """
    x, x_labeled, y_labeled = data()
    step, rerun_terms = step_and_terms(model, x, x_labeled, y_labeled)
    assert not model.losses, "the check does not cover the layers' own losses"
    variables = model.encoder.trainable_variables + model.decoder.trainable_variables
    state = [v.numpy().copy() for v in model.variables]  # weights and seed generator states
    before = [v.numpy().copy() for v in variables]

    logs = {name: float(value) for name, value in step().items()}
    updates = [b - v.numpy() for b, v in zip(before, variables, strict=True)]
    missing = sorted(set(weights) - set(logs))
    assert not missing, f"{type(model).__name__} does not log {missing}"

    for v, value in zip(model.variables, state, strict=True):
        v.assign(value)
    with tf.GradientTape() as tape:
        terms = rerun_terms()
        total = sum(weight * terms[name] for name, weight in weights.items())
    gradients = tape.gradient(total, variables)

    for name in weights:  # the rerun is the logged step
        assert float(terms[name]) == pytest.approx(logs[name], rel=1e-5), name
    for variable, update, gradient in zip(variables, updates, gradients, strict=True):
        expected = np.zeros_like(update) if gradient is None else gradient.numpy()
        np.testing.assert_allclose(
            update,
            expected,
            rtol=1e-3,
            atol=1e-4,
            err_msg=f"the step did not minimise the declared total (variable {variable.path})",
        )
    recomputed = sum(weight * logs[name] for name, weight in weights.items())
    assert logs["loss"] == pytest.approx(recomputed, rel=1e-5), "the logged loss is not the declared total"


def check_variant(name: str) -> None:
    cfg = model_config(name)
    if cfg.kind not in WEIGHTS:
        pytest.fail(
            f"model kind {cfg.kind!r} is registered in MODELS but has no entry in WEIGHTS "
            "(tests/test_loss_convention.py): declare its loss terms and their config weights there"
        )
    model = compile_sgd(models.build(cfg, 3, (8, 8, 1), 10, seed=7))
    check_minimised_loss(model, WEIGHTS[cfg.kind](cfg.settings))


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_every_registered_kind_minimises_the_total_of_its_logged_terms_and_config_weights(kind):
    check_variant(kind)


@pytest.mark.parametrize("name", ["dae-mask", "sparse-l1", "aae-semi"])
def test_optional_parts_minimise_the_declared_total(name):
    check_variant(name)


# -- variants written the natural way, right and wrong --------------------------------------------

TC_WEIGHT = 5.0


def stand_in_tc(codes):
    """A stand-in for the total correlation: any differentiable term on the code will do here."""
    return ops.mean(ops.sum(ops.square(codes["z_mean"]), axis=-1))


class TCVAE(VariationalAutoencoder):
    """Right: an extra term declared in the hook with its weight, logged raw."""

    logged_terms = ("kl_loss", "tc_loss", "elbo_loss")

    def regularizers(self, x, codes, training=False):
        return {
            **super().regularizers(x, codes, training),
            "tc_loss": Regularizer(TC_WEIGHT, stand_in_tc(codes)),
        }


class WeightOutsideTheHookTCVAE(TCVAE):
    """Wrong: the term is weighted before it reaches the hook, so the logged value is not raw."""

    def regularizers(self, x, codes, training=False):
        weighted = TC_WEIGHT * stand_in_tc(codes)
        return {
            **VariationalAutoencoder.regularizers(self, x, codes, training),
            "tc_loss": Regularizer(1.0, weighted),
        }


class PatchedVAE(VariationalAutoencoder):
    """The old convention, right on its own: the KL declared at weight 1 and the total patched by
    ``(beta - 1) x KL`` after the hook."""

    def regularizers(self, x, codes, training=False):
        return {
            "kl_loss": Regularizer(1.0, ops.mean(losses.gaussian_kl(codes["z_mean"], codes["z_log_var"])))
        }

    def forward(self, x, training=False):
        terms, codes = super().forward(x, training=training)
        terms["loss"] = terms["loss"] + (self.settings.beta - 1.0) * terms["kl_loss"]
        return terms, codes


class TCVAEOnPatchedVAE(PatchedVAE):
    """Wrong: a beta-TCVAE written the natural way on top of it (KL at 1, TC at beta) inherits the patch
    and trains on reconstruction + beta KL + beta TC."""

    logged_terms = ("kl_loss", "tc_loss", "elbo_loss")

    def regularizers(self, x, codes, training=False):
        kl = ops.mean(losses.gaussian_kl(codes["z_mean"], codes["z_log_var"]))
        return {
            "kl_loss": Regularizer(1.0, kl),
            "tc_loss": Regularizer(self.settings.beta, stand_in_tc(codes)),
        }


def build_vae_like(cls, beta: float = 4.0):
    cfg = config.from_dict(
        {"model": {"kind": "vae", "latent": 3, "hidden": [16], "vae": {"beta": beta}}}
    ).model
    return compile_sgd(cls.build_from_config(cfg, 3, (8, 8, 1), 10, seed=7)), cfg.settings


def test_a_term_declared_with_its_weight_in_the_hook_passes():
    model, s = build_vae_like(TCVAE)
    check_minimised_loss(model, {"reconstruction_loss": 1.0, "kl_loss": s.beta, "tc_loss": TC_WEIGHT})
    model, s = build_vae_like(PatchedVAE)  # patched, but minimising what it declares
    check_minimised_loss(model, {"reconstruction_loss": 1.0, "kl_loss": s.beta})


def test_a_weight_applied_outside_the_hook_fails_the_check():
    model, s = build_vae_like(WeightOutsideTheHookTCVAE)
    with pytest.raises(AssertionError, match="did not minimise the declared total"):
        check_minimised_loss(model, {"reconstruction_loss": 1.0, "kl_loss": s.beta, "tc_loss": TC_WEIGHT})


def test_a_variant_inheriting_a_patched_total_fails_the_check():
    model, s = build_vae_like(TCVAEOnPatchedVAE)
    with pytest.raises(AssertionError, match="did not minimise the declared total"):
        check_minimised_loss(model, {"reconstruction_loss": 1.0, "kl_loss": 1.0, "tc_loss": s.beta})


def test_a_hook_cannot_replace_the_loss():
    class Sneaky(VariationalAutoencoder):
        def logged_statistics(self, x, terms, codes):
            return {"loss": terms["reconstruction_loss"]}

    model, _ = build_vae_like(Sneaky)
    with pytest.raises(ValueError, match=r"logged_statistics returned \['loss'\]"):
        model.compute_terms(data()[0])
