"""The variational autoencoder (Kingma and Welling 2014, "Auto-Encoding Variational Bayes"; seeds 001, 004).

The encoder gives ``z_mean`` and ``z_log_var``, the log-VARIANCE (not log-sigma: the bug the VAE notebook
describes), and the decoder reads ``z = z_mean + exp(0.5 * z_log_var) * eps``. The loss is the negative
ELBO: reconstruction summed over input dimensions plus ``beta`` times the KL to N(0, I) summed over
latent dimensions, both averaged over the batch. Out of training the decoder reads ``z_mean``, so test
metrics are deterministic (``eval`` reproduces ``summary.json``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import keras
from keras import ops

from latentprobe.models import losses
from latentprobe.models.autoencoder import Autoencoder, Regularizer
from latentprobe.settings import VAESettings


def sample(z_mean, z_log_var, eps):
    """The reparametrised sample: the scale is the standard deviation exp(0.5 * log_var)."""
    return z_mean + ops.exp(0.5 * z_log_var) * eps


class VariationalAutoencoder(Autoencoder):
    """VAE with loss ``reconstruction + beta * kl`` (the negative ELBO for beta 1, logged: ``elbo_loss``)."""

    Settings: ClassVar[type] = VAESettings
    logged_terms: ClassVar[tuple[str, ...]] = ("kl_loss", "elbo_loss")

    def __init__(self, encoder, decoder, reconstruction_loss="bce", settings=None, seed=None, **kwargs):
        super().__init__(encoder, decoder, reconstruction_loss, settings or VAESettings(), seed, **kwargs)
        # Noise and samples draw from this. Only the variants that draw make one: a model's variables
        # are what its checkpoint holds.
        self.seed_generator = keras.random.SeedGenerator(seed)

    @classmethod
    def encoder_outputs(cls, latent: int, num_classes: int, settings: Any) -> dict[str, int]:
        return {"z_mean": latent, "z_log_var": latent}

    def encode(self, x, training: bool = False, draw: bool | None = None) -> dict[str, Any]:
        """Codes; ``z`` is a sample in training (or when ``draw``), else ``z_mean``."""
        codes = dict(self.encoder(x, training=training))
        if training if draw is None else draw:
            eps = keras.random.normal(ops.shape(codes["z_mean"]), seed=self.seed_generator)
            codes["z"] = sample(codes["z_mean"], codes["z_log_var"], eps)
        else:
            codes["z"] = codes["z_mean"]
        return codes

    def regularizers(self, x, codes: dict[str, Any], training: bool = False) -> dict[str, Regularizer]:
        kl = ops.mean(losses.gaussian_kl(codes["z_mean"], codes["z_log_var"]))
        return {"kl_loss": Regularizer(self.settings.beta, kl)}

    def logged_statistics(self, x, terms: Mapping[str, Any], codes: dict[str, Any]) -> dict[str, Any]:
        # The negative ELBO proper (beta 1), logged whatever beta the loss uses.
        return {"elbo_loss": terms["reconstruction_loss"] + terms["kl_loss"]}

    def probe_features(self, x, training: bool = False):
        return self.encode(x, training=training, draw=self.settings.probe == "sample")["z"]

    def features_from_codes(self, codes: dict[str, Any]):
        # A training pass draws z: the sample, or the mean, as probe_features would give.
        return codes["z"] if self.settings.probe == "sample" else codes["z_mean"]

    def latent_statistics(self, x) -> dict[str, Any]:
        """KL to the prior per latent dimension (mean over ``x``): near 0 marks a collapsed dimension."""
        codes = self.encoder(x, training=False)
        kl = 0.5 * (ops.square(codes["z_mean"]) + ops.exp(codes["z_log_var"]) - 1.0 - codes["z_log_var"])
        per_dim = ops.convert_to_numpy(ops.mean(kl, axis=0))
        return {"kl_per_dimension": [float(v) for v in per_dim], "kl_total": float(per_dim.sum())}
