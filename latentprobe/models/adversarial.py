"""The adversarial autoencoder (Makhzani et al. 2015, "Adversarial Autoencoders"; the semi-supervised AAE
on 1000 MNIST labels).

Discriminators impose priors on the code: ``d_gauss`` a Gaussian N(0, prior_std^2) on ``z`` and, when
semi-supervised, ``d_cat`` a uniform categorical on the encoder's softmax head ``y``. The decoder then
reads ``[y, z]``, so ``y`` carries the class and ``z`` the style. Each batch runs, as in the paper:

1. reconstruction: encoder and decoder minimise the reconstruction loss;
2. regularization: the discriminators learn prior samples (label 1) from codes (label 0), then the
   encoder (the generator) learns to make them answer 1;
3. semi-supervised only: cross-entropy of the ``y`` head on a batch of the labeled subset.

Each phase has its own optimizer and moves only its own networks.
"""

from __future__ import annotations

from typing import Any, ClassVar

import keras
import tensorflow as tf
from keras import layers, ops

from latentprobe.models import losses, noise
from latentprobe.models.autoencoder import Autoencoder
from latentprobe.settings import AdversarialSettings


def build_discriminator(width: int, hidden: tuple[int, ...], name: str) -> keras.Model:
    """code -> Dense(h, relu) for h in hidden -> Dense(1): the logit that the code is a prior sample."""
    h = inputs = keras.Input(shape=(width,), name="code")
    for i, units in enumerate(hidden):
        h = layers.Dense(units, activation="relu", name=f"dense_{i}")(h)
    return keras.Model(inputs, layers.Dense(1, name="logit")(h), name=name)


def _bce_logits(target: float, logits):
    return ops.mean(ops.binary_crossentropy(ops.full_like(logits, target), logits, from_logits=True))


def _accuracy(real_logits, fake_logits):
    """Share of prior samples called real and codes called fake."""
    right = ops.concatenate([ops.cast(real_logits > 0, "float32"), ops.cast(fake_logits <= 0, "float32")])
    return ops.mean(right)


class AdversarialAutoencoder(Autoencoder):
    """Adversarial autoencoder, optionally semi-supervised with a categorical ``y`` head.

    The probe reads ``z`` (in the semi-supervised model the style part, without ``y``); the ``y`` head's
    own test accuracy is reported as ``classifier_accuracy``.
    """

    Settings: ClassVar[type] = AdversarialSettings
    uses_labels: ClassVar[bool] = True
    shares_codes: ClassVar[bool] = False  # its own train_step, on noisy input

    def __init__(self, encoder, decoder, reconstruction_loss="bce", settings=None, seed=None, **kwargs):
        settings = settings or AdversarialSettings()
        super().__init__(encoder, decoder, reconstruction_loss, settings, seed, **kwargs)
        # Noise and samples draw from this. Only the variants that draw make one: a model's variables
        # are what its checkpoint holds.
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.latent = int(encoder.output["z"].shape[-1])
        self.num_classes = int(encoder.output["y_logits"].shape[-1]) if settings.semi_supervised else 0
        hidden = tuple(settings.discriminator_hidden)
        self.discriminators = {"gauss": build_discriminator(self.latent, hidden, "d_gauss")}
        if settings.semi_supervised:
            self.discriminators["cat"] = build_discriminator(self.num_classes, hidden, "d_cat")
        d_vars = [v for d in self.discriminators.values() for v in d.trainable_variables]
        float16 = encoder.dtype_policy.name == "mixed_float16"
        self.discriminator_optimizer = _loss_scaled(
            keras.optimizers.Adam(settings.discriminator_learning_rate), float16
        )
        self.generator_optimizer = _loss_scaled(
            keras.optimizers.Adam(settings.generator_learning_rate), float16
        )
        self.supervised_optimizer = _loss_scaled(
            keras.optimizers.Adam(settings.supervised_learning_rate), float16
        )
        # Built here, outside the compiled epoch, so their slots exist before the first traced step.
        self.discriminator_optimizer.build(d_vars)
        self.generator_optimizer.build(encoder.trainable_variables)
        self.supervised_optimizer.build(encoder.trainable_variables)

    @property
    def phase_learning_rates(self) -> dict[str, float]:
        """Each phase's base learning rate, keyed by phase (its optimizer is ``<phase>_optimizer``)."""
        s = self.settings
        rates = {"discriminator": s.discriminator_learning_rate, "generator": s.generator_learning_rate}
        if s.semi_supervised:
            rates["supervised"] = s.supervised_learning_rate
        return rates

    def use_phase_optimizers(self, optimizers: dict[str, keras.optimizers.Optimizer]) -> None:
        """Replace the phases' default Adam optimizers (e.g. with scheduled ones), before training."""
        float16 = self.encoder.dtype_policy.name == "mixed_float16"
        d_vars = [v for d in self.discriminators.values() for v in d.trainable_variables]
        built = {"discriminator": d_vars, "generator": self.encoder.trainable_variables}
        built["supervised"] = self.encoder.trainable_variables
        for phase, optimizer in optimizers.items():
            optimizer = _loss_scaled(optimizer, float16)
            optimizer.build(built[phase])
            setattr(self, f"{phase}_optimizer", optimizer)

    @property
    def logged_terms(self) -> tuple[str, ...]:  # type: ignore[override]
        # Only the terms of the discriminators this model has, so no tracker reports a constant 0.
        names = ["gauss_discriminator_loss", "gauss_discriminator_accuracy", "gauss_generator_loss"]
        if self.settings.semi_supervised:
            names += ["cat_discriminator_loss", "cat_discriminator_accuracy", "cat_generator_loss"]
            names += ["classification_loss"]
        return tuple(names)

    @classmethod
    def encoder_outputs(cls, latent: int, num_classes: int, settings: Any) -> dict[str, int]:
        if settings is not None and settings.semi_supervised:
            return {"z": latent, "y_logits": num_classes}
        return {"z": latent}

    @classmethod
    def decoder_width(cls, latent: int, num_classes: int, settings: Any) -> int:
        semi = settings is not None and settings.semi_supervised
        return latent + num_classes if semi else latent

    # -- hooks -------------------------------------------------------------------------------------

    def encode(self, x, training: bool = False) -> dict[str, Any]:
        codes = dict(self.encoder(x, training=training))
        codes["z_style"] = codes["z"]
        if self.settings.semi_supervised:
            codes["y"] = ops.softmax(codes["y_logits"], axis=-1)
            codes["z"] = ops.concatenate([codes["y"], codes["z_style"]], axis=-1)  # (batch, K + latent)
        return codes

    def corrupt(self, x, training: bool = False):
        if training and self.settings.noise_std > 0:
            return x + self.settings.noise_std * noise.normal(ops.shape(x), self.seed_generator, x.dtype)
        return x

    def probe_features(self, x, training: bool = False):
        return self.encoder(x, training=training)["z"]

    def label_metrics(self, x, y) -> dict[str, Any]:
        if not self.settings.semi_supervised:
            return {}
        probabilities = ops.softmax(self.encoder(x, training=False)["y_logits"], axis=-1)
        return {
            "classifier_loss": ops.mean(losses.classification(y, probabilities)),
            "classifier_accuracy": ops.mean(losses.correct(y, probabilities)),
        }

    # -- training ----------------------------------------------------------------------------------

    def sample_prior(self, name: str, batch):
        """Samples of the prior the discriminator ``name`` learns to call real."""
        if name == "gauss":
            return self.settings.prior_std * keras.random.normal(
                (batch, self.latent), seed=self.seed_generator
            )
        classes = keras.random.randint((batch,), 0, self.num_classes, seed=self.seed_generator)
        return ops.one_hot(classes, self.num_classes)

    def fake_codes(self, x) -> dict[str, Any]:
        """The encoder's codes, keyed like ``discriminators``."""
        codes = self.encode(self.corrupt(x, training=True), training=True)
        fake = {"gauss": codes["z_style"]}
        if self.settings.semi_supervised:
            fake["cat"] = codes["y"]
        return fake

    def discriminator_step(self, x) -> dict[str, Any]:
        """One update of the discriminators: prior samples are real, the encoder's codes fake."""
        batch = ops.shape(x)[0]
        fake = {k: ops.stop_gradient(v) for k, v in self.fake_codes(x).items()}
        terms = {}
        with tf.GradientTape() as tape:
            total = 0.0
            for name, disc in self.discriminators.items():
                real_logits = disc(self.sample_prior(name, batch), training=True)
                fake_logits = disc(fake[name], training=True)
                loss = _bce_logits(1.0, real_logits) + _bce_logits(0.0, fake_logits)
                terms[f"{name}_discriminator_loss"] = loss
                terms[f"{name}_discriminator_accuracy"] = _accuracy(real_logits, fake_logits)
                total = total + loss
            scaled = self.discriminator_optimizer.scale_loss(total)  # identity unless float16
        variables = [v for d in self.discriminators.values() for v in d.trainable_variables]
        self.discriminator_optimizer.apply(tape.gradient(scaled, variables), variables)
        return terms

    def generator_step(self, x) -> dict[str, Any]:
        """One update of the encoder to make the discriminators call its codes real."""
        terms = {}
        with tf.GradientTape() as tape:
            fake = self.fake_codes(x)
            total = 0.0
            for name, disc in self.discriminators.items():
                loss = _bce_logits(1.0, disc(fake[name], training=False))
                terms[f"{name}_generator_loss"] = loss
                total = total + loss
            scaled = self.generator_optimizer.scale_loss(total)
        variables = self.encoder.trainable_variables
        self.generator_optimizer.apply(tape.gradient(scaled, variables), variables)
        return terms

    def supervised_step(self, x_labeled, y_labeled) -> dict[str, Any]:
        """One cross-entropy update of the encoder's ``y`` head on a labeled batch."""
        with tf.GradientTape() as tape:
            logits = self.encoder(self.corrupt(x_labeled, training=True), training=True)["y_logits"]
            loss = ops.mean(losses.classification(y_labeled, ops.softmax(logits, axis=-1)))
            scaled = self.supervised_optimizer.scale_loss(loss)
        # The z head plays no part here: update only the weights the y head depends on.
        variables = self.encoder.trainable_variables
        grads = tape.gradient(scaled, variables)
        pairs = [(g, v) for g, v in zip(grads, variables, strict=True) if g is not None]
        self.supervised_optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
        return {"classification_loss": loss}

    def train_step(self, data):
        if isinstance(data, (tuple, list)) and len(data) == 3:
            x, x_labeled, y_labeled = data
        else:  # no labeled batch (e.g. fit() on x alone): the unsupervised phases only
            x = data[0] if isinstance(data, (tuple, list)) else data
            x_labeled = y_labeled = None
        self.fit_batch(x)  # 1. reconstruction: the base class's update, which logs its own terms
        terms = self.discriminator_step(x)
        terms.update(self.generator_step(x))
        if self.settings.semi_supervised and x_labeled is not None:
            terms.update(self.supervised_step(x_labeled, y_labeled))
        return self.update_trackers(terms)


def _loss_scaled(optimizer, float16: bool):
    """The optimizer, in a dynamic ``LossScaleOptimizer`` under the float16 policy (as ``compile`` does)."""
    return keras.optimizers.LossScaleOptimizer(optimizer) if float16 else optimizer
