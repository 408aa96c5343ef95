"""The denoising autoencoder (Vincent et al. 2008, "Extracting and Composing Robust Features with
Denoising Autoencoders"): reconstruct the clean input from a corrupted one.

Corruption, in training only: additive Gaussian noise (``noise: gaussian``, standard deviation ``std``)
or masking noise (``noise: mask``, each input dimension set to 0 with probability ``fraction``). The
loss is the plain autoencoder's, measured against the clean input.
"""

from __future__ import annotations

from typing import ClassVar

import keras
from keras import ops

from latentprobe.models import noise
from latentprobe.models.autoencoder import Autoencoder
from latentprobe.settings import DenoisingSettings


class DenoisingAutoencoder(Autoencoder):
    """Autoencoder trained on corrupted inputs; val/test metrics see clean inputs."""

    Settings: ClassVar[type] = DenoisingSettings
    shares_codes: ClassVar[bool] = False  # its training pass encodes the corrupted input

    def __init__(self, encoder, decoder, reconstruction_loss="bce", settings=None, seed=None, **kwargs):
        settings = settings or DenoisingSettings()
        super().__init__(encoder, decoder, reconstruction_loss, settings, seed, **kwargs)
        # Noise and samples draw from this. Only the variants that draw make one: a model's variables
        # are what its checkpoint holds.
        self.seed_generator = keras.random.SeedGenerator(seed)

    def corrupt(self, x, training: bool = False):
        if not training:
            return x
        if self.settings.noise == "gaussian":
            return x + self.settings.std * noise.normal(ops.shape(x), self.seed_generator, x.dtype)
        keep = noise.uniform(ops.shape(x), self.seed_generator, x.dtype) >= self.settings.fraction
        return x * ops.cast(keep, x.dtype)
