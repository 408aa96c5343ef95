"""The plain autoencoder, and ``Autoencoder``: the base class every variant extends (public API).

A variant is a subclass that overrides a few hooks rather than the training step. Built in, it is listed
in ``latentprobe.models.MODELS``; from your own package, ``model.kind`` names it by an import path
(``package.module:ClassName``) or by an entry point in the group ``latentprobe.models``. Class attributes:

- ``Settings``: the dataclass of the variant's settings block ``model.<kind>`` (None: no settings), checked
  like every config block (unknown keys, types, ranges: field metadata ``min``/``max``); the instance gets
  it as ``self.settings``.
- ``kind``: for a class named by an import path, the name of its settings block (default: the class name).
- ``logged_terms``: the names of what ``regularizers`` and ``logged_statistics`` return (each is tracked
  and logged as ``train/<name>``, ``val/<name>``).
- ``uses_labels``: ``train_step`` receives ``(x, x_labeled, y_labeled)`` (a batch of the labeled subset).
- ``shares_codes``: a training pass encodes the batch as the probe reads it (no corrupted input), so the
  probe may reuse its codes.

The hooks, and what each receives (``x`` is always the clean input batch, shape ``(batch,) + input_shape``,
float32 in [0, 1]; ``codes`` the dict ``encode`` returned for the encoder's input of that pass):

- ``encoder_outputs(latent, num_classes, settings)`` (class method): the encoder's heads and their widths
  (``{"z": latent}``; the VAE's ``z_mean`` and ``z_log_var``).
- ``decoder_width(latent, num_classes, settings)`` (class method): the width of the code the decoder reads.
- ``extend_encoder(encoder, num_classes)`` (class method): heads added on the built encoder.
- ``corrupt(x, training)``: what the encoder sees (noise in a denoising autoencoder, in training only).
- ``encode(x, training)``: the encoder's outputs plus ``z``, the code the decoder reads (a VAE samples).
- ``regularizers(x, codes, training)``: the variant's regularisation terms, ``{name: Regularizer(weight,
  raw value)}``, each value a batch mean. The loss is formed in one place, ``total_loss``: reconstruction
  + sum of weight x value (+ the layers' own losses); each raw value is logged under its name. ``x`` makes
  an input-dependent penalty (the contractive autoencoder's Jacobian) a hook like any other.
- ``logged_statistics(x, terms, codes)``: scalars logged but never optimised (the VAE's ELBO, the sparse
  code's mean activation), from the pass's ``terms`` (the loss included); computed after the loss.
- ``probe_features(x, training)``: what the probe reads, (batch, latent); ``features_from_codes(codes)``
  picks the same from a training pass's codes, for a model that ``shares_codes``.
- ``latent_statistics(x)``: variant-specific statistics eval reports, from NumPy inputs, JSON-ready.
- ``label_metrics(x, y)``: metrics of the model's own class head against labels (the AAE's y head).

Every reconstruction update goes through ``fit_batch``. Only a variant with its own networks and
optimizers (the adversarial autoencoder, whose extra phases follow ``fit_batch``) or with no reconstruction
(the supervised baseline) overrides ``train_step``. ``latentprobe.testing.check_variant`` checks a variant
keeps the rules (the loss convention, saving, resuming, determinism, the probe's freeze).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import keras
import tensorflow as tf  # the gradient tape; Keras 3 has no backend-neutral one
from keras import ops

from latentprobe.models import losses
from latentprobe.models.networks import build_networks


@dataclass(frozen=True)
class Regularizer:
    """A regularisation term: its raw, unweighted batch-mean ``value`` (what is logged) and its ``weight``.

    ``weight`` is a Python number from the config; the loss adds ``weight * value``, nothing when it is 0.
    """

    weight: float
    value: Any


class Autoencoder(keras.Model):
    """Plain autoencoder: minimise the reconstruction loss of ``decoder(encoder(x))``.

    The loss is binary cross-entropy (or squared error) summed over input dimensions and averaged over
    the batch, plus any variant's weighted ``regularizers`` and the layers' own regularisation losses.
    """

    #: The variant's settings dataclass (the ``model.<kind>`` config block), or None for no settings.
    Settings: ClassVar[type | None] = None
    #: For a class named by an import path: the name of its settings block ``model.<kind>`` (and of its
    #: run directories); the class name when the class itself does not set it.
    kind: ClassVar[str | None] = None
    #: Names of the logged scalars beyond ``base_terms`` (the ``regularizers``, the ``logged_statistics``,
    #: a variant's own phases); each gets a tracker.
    logged_terms: ClassVar[tuple[str, ...]] = ()
    #: The terms every variant of this family tracks before its own ``logged_terms``.
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
        seed: int | None = None,
        **kwargs: Any,
    ):
        """Wrap ``encoder`` and ``decoder``.

        Args:
            seed: the seed of the variant's noise and samples (``seed_generator``), e.g. the run's seed.
                None draws one from Python's global ``random`` (which shifts every later draw from it).
        """
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
        cls,
        model_cfg: Any,
        latent: int,
        input_shape: Sequence[int],
        num_classes: int,
        seed: int | None = None,
    ) -> Autoencoder:
        """Build the networks for ``model_cfg`` (a ``ModelConfig``) and wrap them in this class.

        ``seed`` seeds the variant's noise and samples (see ``__init__``).
        """
        encoder, decoder = build_networks(
            model_cfg.network,
            input_shape,
            model_cfg.hidden,
            cls.encoder_outputs(latent, num_classes, model_cfg.settings),
            cls.decoder_width(latent, num_classes, model_cfg.settings),
            model_cfg.activation,
        )
        encoder = cls.extend_encoder(encoder, num_classes)
        return cls(encoder, decoder, model_cfg.reconstruction_loss, model_cfg.settings, seed=seed)

    @classmethod
    def extend_encoder(cls, encoder: keras.Model, num_classes: int) -> keras.Model:
        """Heads a variant adds on top of the built encoder (the supervised kind's class head); none here."""
        return encoder

    # -- hooks -------------------------------------------------------------------------------------

    def encode(self, x, training: bool = False) -> dict[str, Any]:
        """The encoder's outputs plus ``z``, the code the decoder reads."""
        return dict(self.encoder(x, training=training))

    def corrupt(self, x, training: bool = False):
        """What the encoder sees; the plain autoencoder sees its input unchanged."""
        return x

    def regularizers(self, x, codes: dict[str, Any], training: bool = False) -> dict[str, Regularizer]:
        """The regularisation terms (raw batch means) and their weights, keyed like ``logged_terms``.

        Args:
            x: the clean input batch, (batch,) + input_shape.
            codes: what ``encode`` returned for the encoder's input (``corrupt(x)``) in this pass.
            training: whether this is a training pass.
        """
        return {}

    def logged_statistics(self, x, terms: Mapping[str, Any], codes: dict[str, Any]) -> dict[str, Any]:
        """Scalars logged but not optimised, from the input batch ``x``, the pass's ``terms`` (loss and
        raw regularisers included) and ``codes``."""
        return {}

    def probe_features(self, x, training: bool = False):
        """The vector the probe classifies, shape (batch, latent)."""
        return self.encode(x, training=training)["z"]

    def features_from_codes(self, codes: dict[str, Any]):
        """What ``probe_features`` returns, taken from the codes of a training pass (``fit_batch``)."""
        return codes["z"]

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
        regularizers = self.regularizers(x, codes, training=training)
        terms["loss"] = self.total_loss(terms["reconstruction_loss"], regularizers)
        _add_new(terms, {name: r.value for name, r in regularizers.items()}, "regularizers")
        _add_new(terms, self.logged_statistics(x, dict(terms), codes), "logged_statistics")
        return terms, codes

    def total_loss(self, data_loss, regularizers: Mapping[str, Regularizer]):
        """The loss every update minimises, formed here only: ``data_loss`` + sum of weight x value + the
        layers' own regularisation losses."""
        total = data_loss
        for regularizer in regularizers.values():
            if regularizer.weight:  # a zero weight adds nothing, not even 0 x a non-finite value
                total = total + regularizer.weight * regularizer.value
        if self.losses:  # kernel/activity regularisers declared on layers
            total = total + ops.sum(ops.stack(self.losses))
        return total

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
        return (*self.base_terms, *self.logged_terms)


def _add_new(terms: dict[str, Any], new: Mapping[str, Any], hook: str) -> None:
    """Add ``new`` to ``terms``; a hook may not replace a term (the loss least of all)."""
    clash = sorted(set(new) & set(terms))
    if clash:
        raise ValueError(f"{hook} returned {clash}, which the loss already defines")
    terms.update(new)
