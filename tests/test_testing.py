"""``latentprobe.testing.check_variant``: the built-in variants keep every rule; a variant that breaks one
fails it, and the error names the rule."""

from __future__ import annotations

import time
from typing import ClassVar

import keras
import pytest
from keras import ops

from latentprobe.models import MODELS, Autoencoder, Regularizer
from latentprobe.testing import RULES, check_variant

#: Settings away from the defaults, so a weight left at its default shows.
SETTINGS = {
    "dae": {"std": 0.2},
    "vae": {"beta": 2.0},
    "sparse": {"weight_decay": 0.01},
    "aae": {"discriminator_hidden": [8], "semi_supervised": True},
}
#: The VAE (seeded noise, a weighted term, a logged statistic) in the default run, which stays short (about
#: 15 s on 2 idle cores); every kind with ``-m slow``.
FAST = ("vae",)


@pytest.mark.parametrize(
    "kind", [k if k in FAST else pytest.param(k, marks=pytest.mark.slow) for k in sorted(MODELS)]
)
def test_every_built_in_variant_keeps_every_rule(kind, tmp_path):
    check_variant(MODELS[kind], SETTINGS.get(kind), tmp_path=tmp_path)


def test_a_kind_string_and_expected_weights_are_checked(tmp_path):
    check_variant("vae", {"beta": 2.0}, weights={"kl_loss": 2.0}, rules=("loss convention",))
    with pytest.raises(
        AssertionError, match=r"loss convention: regularizers declares weight 2.0 for 'kl_loss', expected 1.0"
    ):
        check_variant("vae", {"beta": 2.0}, weights={"kl_loss": 1.0}, rules=("loss convention",))


class UndeclaredTerm(Autoencoder):
    """Wrong: its loss adds a penalty on the code that ``regularizers`` does not declare."""

    def total_loss(self, data_loss, regularizers):
        return super().total_loss(data_loss, regularizers) + 0.5 * self._code_penalty

    def forward(self, x, training=False):
        codes = self.encode(x, training=training)
        self._code_penalty = ops.mean(ops.sum(ops.square(codes["z"]), axis=-1))
        return super().forward(x, training=training)


class UnseededNoise(Autoencoder):
    """Wrong: its noise generator is seeded from the clock, not the run's seed, so two runs differ."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seed_generator = keras.random.SeedGenerator(time.time_ns() % 2**31)

    def corrupt(self, x, training=False):
        if not training:
            return x
        return x + 0.1 * keras.random.normal(ops.shape(x), seed=self.seed_generator)


class DeclaredTerm(Autoencoder):
    """Right: the same penalty, declared with its weight."""

    logged_terms: ClassVar[tuple[str, ...]] = ("code_loss",)

    def regularizers(self, x, codes, training=False):
        return {"code_loss": Regularizer(0.5, ops.mean(ops.sum(ops.square(codes["z"]), axis=-1)))}


def test_a_variant_whose_loss_adds_an_undeclared_term_fails_the_loss_convention():
    with pytest.raises(AssertionError, match=r"^loss convention: the logged loss .* is not reconstruction"):
        check_variant(UndeclaredTerm, rules=("loss convention",))
    check_variant(DeclaredTerm, rules=("loss convention",))


@pytest.mark.slow
def test_a_variant_with_unseeded_noise_fails_determinism(tmp_path):
    with pytest.raises(AssertionError, match=r"^determinism: two runs with seed 0 differ after epoch 1"):
        check_variant(UnseededNoise, rules=("determinism",), tmp_path=tmp_path)
    check_variant(Autoencoder, rules=("determinism",), tmp_path=tmp_path)  # a second check, same tmp_path


def test_unknown_rules_are_refused():
    with pytest.raises(ValueError, match="unknown rules"):
        check_variant("ae", rules=("speed",))
    assert "probe freeze" in RULES


class WeightOutsideTheNetworks(Autoencoder):
    """Wrong: a running mean of the codes (centring them, like batch norm) lives on the model, not in the
    encoder network the run saves, so the saved run loses it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        width = self.encoder.output["z"].shape[-1]
        self.code_mean = self.add_weight(shape=(width,), initializer="zeros", trainable=False, name="mean")

    def encode(self, x, training=False):
        codes = dict(self.encoder(x, training=training))
        if training:
            self.code_mean.assign(0.5 * self.code_mean + 0.5 * ops.mean(codes["z"], axis=0))
        codes["z"] = codes["z"] - self.code_mean
        return codes


@pytest.mark.slow
def test_a_weight_the_saved_networks_do_not_hold_fails_save_and_load(tmp_path):
    with pytest.raises(
        AssertionError, match=r"^save and load: the run rebuilt from its saved files measures"
    ):
        check_variant(WeightOutsideTheNetworks, rules=("save and load",), tmp_path=tmp_path)
