"""The plain autoencoder, and the base class every variant extends.

A variant changes behaviour through small hooks rather than copying the training step:

- ``encoder_outputs``: which heads the encoder has (``z``; ``z_mean`` and ``z_log_var``; ...).
- ``encode``: turn the encoder's outputs into the code the decoder reads (e.g. sample in a VAE).
- ``corrupt``: what the encoder sees during training (noise in a denoising autoencoder).
- ``latent_losses``: loss terms on the code (KL in a VAE, sparsity), added to reconstruction.
- ``probe_features``: what the probe reads (``z``; ``z_mean`` in a VAE); ``features_from_codes`` picks
  the same from a training pass's codes, for a model that ``shares_codes``.
- ``adjust_terms``: terms derived from the summed loss or the codes (the VAE's beta, the ELBO; logged
  sparsity statistics).
- ``latent_statistics``: variant-specific statistics eval reports (KL per dimension, mean activation).
- ``decoder_width``: the width of the code the decoder reads (the AAE's decoder reads ``[y, z]``).
- ``label_metrics``: metrics of a model's own class head against labels (the AAE's y head).

A variant with ``uses_labels = True`` gets ``train_step((x, x_labeled, y_labeled))``: a batch of the train
split and a batch of the labeled subset (the semi-supervised AAE's cross-entropy phase).

Only a variant with its own networks and optimizers (the adversarial autoencoder) overrides ``train_step``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import keras
import tensorflow as tf  # the gradient tape; Keras 3 has no backend-neutral one
from keras import ops

from latentprobe.models import losses
from latentprobe.models.networks import build_networks


class Autoencoder(keras.Model):
    """Plain autoencoder: minimise the reconstruction loss of ``decoder(encoder(x))``.

    The loss is binary cross-entropy (or squared error) summed over input dimensions and averaged over
    the batch, plus any variant's latent loss terms and the layers' own regularisation losses.
    """

    #: The variant's settings dataclass (the ``model.<kind>`` config block), or None for no settings.
    Settings: ClassVar[type | None] = None
    #: Names of the extra loss terms ``latent_losses`` returns; each gets a tracker and a logged scalar.
    loss_terms: ClassVar[tuple[str, ...]] = ()
    #: The terms every variant of this family tracks before its own ``loss_terms``.
    base_terms: ClassVar[tuple[str, ...]] = ("loss", "reconstruction_loss")
    #: Whether ``train_step`` takes ``(x, x_labeled, y_labeled)`` rather than ``x``.
    uses_labels: ClassVar[bool] = False
    #: Whether a training pass encodes the batch as the probe would read it (no corrupted input), so an
    #: alternating step whose probe batch is the autoencoder's batch can hand the probe that pass's codes
    #: (``fit_batch``) instead of encoding the batch again.
    shares_codes: ClassVar[bool] = True

    def __init__(
        self,
        encoder: keras.Model,
        decoder: keras.Model,
        reconstruction_loss: str = "bce",
        settings: Any = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.reconstruction_kind = reconstruction_loss
        self.settings = settings
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.all_terms}

    # -- construction ------------------------------------------------------------------------------

    @classmethod
    def encoder_outputs(cls, latent: int, num_classes: int, settings: Any) -> dict[str, int]:
        """The encoder's heads and their widths."""
        return {"z": latent}

    @classmethod
    def decoder_width(cls, latent: int, num_classes: int, settings: Any) -> int:
        """The width of the code the decoder reads."""
        return latent

    @classmethod
    def build_from_config(
        cls, model_cfg: Any, latent: int, input_shape: Sequence[int], num_classes: int
    ) -> Autoencoder:
        """Build the networks for ``model_cfg`` (a ``ModelConfig``) and wrap them in this class."""
        encoder, decoder = build_networks(
            model_cfg.network,
            input_shape,
            model_cfg.hidden,
            cls.encoder_outputs(latent, num_classes, model_cfg.settings),
            cls.decoder_width(latent, num_classes, model_cfg.settings),
            model_cfg.activation,
        )
        return cls(encoder, decoder, model_cfg.reconstruction_loss, model_cfg.settings)

    # -- hooks -------------------------------------------------------------------------------------

    def encode(self, x, training: bool = False) -> dict[str, Any]:
        """The encoder's outputs plus ``z``, the code the decoder reads."""
        return dict(self.encoder(x, training=training))

    def corrupt(self, x, training: bool = False):
        """What the encoder sees; the plain autoencoder sees its input unchanged."""
        return x

    def latent_losses(self, codes: dict[str, Any], training: bool = False) -> dict[str, Any]:
        """Extra batch-mean loss terms on the code, keyed like ``loss_terms``."""
        return {}

    def probe_features(self, x, training: bool = False):
        """The vector the probe classifies, shape (batch, latent)."""
        return self.encode(x, training=training)["z"]

    def features_from_codes(self, codes: dict[str, Any]):
        """What ``probe_features`` returns, taken from the codes of a training pass (``fit_batch``)."""
        return codes["z"]

    def adjust_terms(self, terms: dict[str, Any], codes: dict[str, Any]) -> dict[str, Any]:
        """Terms to replace or add once ``loss`` is summed; none for the plain autoencoder."""
        return {}

    def latent_statistics(self, x) -> dict[str, Any]:
        """Variant-specific statistics of the codes of inputs ``x`` (NumPy), as JSON-ready values.

        eval reports them under ``latent.variant``; the plain autoencoder has none (generic statistics,
        such as active units, are computed by eval for every variant).
        """
        return {}

    def label_metrics(self, x, y) -> dict[str, Any]:
        """Batch means of metrics of the model's own class head on labeled data; none by default."""
        return {}

    # -- Keras -------------------------------------------------------------------------------------

    def call(self, x, training: bool = False):
        return self.decoder(self.encode(x, training=training)["z"], training=training)

    def compute_terms(self, x, training: bool = False) -> dict[str, Any]:
        """Every loss term (batch means) and their sum ``loss`` for inputs ``x``."""
        return self.forward(x, training=training)[0]

    def forward(self, x, training: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
        """``compute_terms``'s terms, and the codes they came from."""
        codes = self.encode(self.corrupt(x, training=training), training=training)
        reconstruction = self.decoder(codes["z"], training=training)
        terms = {
            "reconstruction_loss": ops.mean(
                losses.reconstruction(x, reconstruction, self.reconstruction_kind)
            )
        }
        terms.update(self.latent_losses(codes, training=training))
        total = sum(terms.values())
        if self.losses:  # kernel/activity regularisers declared on layers
            total = total + ops.sum(ops.stack(self.losses))
        terms["loss"] = total
        terms.update(self.adjust_terms(terms, codes))
        return terms, codes

    def train_step(self, data):
        x = data[0] if isinstance(data, (tuple, list)) else data
        return self.fit_batch(x)[0]

    def fit_batch(self, x) -> tuple[dict[str, Any], dict[str, Any]]:
        """One update on batch ``x``: the running logs, and the codes of the pass (before the update)."""
        with tf.GradientTape() as tape:
            terms, codes = self.forward(x, training=True)
            # Identity, or the loss scale of a mixed_float16 run's LossScaleOptimizer (on the tape).
            scaled = self.optimizer.scale_loss(terms["loss"])
        variables = self.encoder.trainable_variables + self.decoder.trainable_variables
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply(grads, variables)
        return self.update_trackers(terms), codes

    def test_step(self, data):
        x = data[0] if isinstance(data, (tuple, list)) else data
        return self.update_trackers(self.compute_terms(x, training=False))

    def update_trackers(self, terms: dict[str, Any]) -> dict[str, Any]:
        for name, value in terms.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    @property
    def metrics(self):
        return list(self.trackers.values())

    @property
    def all_terms(self) -> tuple[str, ...]:
        """Names of everything ``compute_terms`` returns, in a stable order."""
        return (*self.base_terms, *self.loss_terms)
