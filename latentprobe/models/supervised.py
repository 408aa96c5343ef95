"""The supervised baseline (the semi-supervised AAE article's "basic NN classifier"): the encoder trained
as a classifier.

The encoder's architecture gets a softmax head ``y`` on its code ``z`` and is trained from scratch by
cross-entropy on the labeled subset alone; the unlabeled train split and the decoder are never used.
It writes the same run directory as every variant, so ``compare`` can set any autoencoder against it:
its ``classifier_accuracy`` is the baseline, and the probe reads ``z``, the layer before the softmax.
With ``latent`` at least the number of classes, the linear ``z`` then ``y`` is as expressive as one
softmax layer on the last hidden layer, the seed's classifier.
"""

from __future__ import annotations

from typing import Any, ClassVar

import keras
import tensorflow as tf
from keras import layers, ops

from latentprobe.models import losses
from latentprobe.models.autoencoder import Autoencoder


class SupervisedClassifier(Autoencoder):
    """The encoder plus a softmax layer, minimising cross-entropy on labeled batches only."""

    base_terms: ClassVar[tuple[str, ...]] = ("loss",)
    logged_terms: ClassVar[tuple[str, ...]] = ("classification_loss", "classification_accuracy")
    uses_labels: ClassVar[bool] = True
    shares_codes: ClassVar[bool] = False  # no reconstruction pass to share

    @classmethod
    def extend_encoder(cls, encoder: keras.Model, num_classes: int) -> keras.Model:
        # The class head is part of the saved encoder, so `eval` rebuilds the classifier from encoder.keras.
        z = encoder.output["z"]
        # float32 under a mixed precision policy, like the code heads: the softmax and its loss need it.
        y_logits = layers.Dense(num_classes, name="y_logits", dtype="float32")(z)
        return keras.Model(encoder.input, {"z": z, "y_logits": y_logits}, name="encoder")

    def compute_terms(self, x, training: bool = False) -> dict[str, Any]:
        # Nothing here models x: no reconstruction loss is reported (the decoder stays untrained).
        return {}

    def label_metrics(self, x, y) -> dict[str, Any]:
        probabilities = ops.softmax(self.encoder(x, training=False)["y_logits"], axis=-1)
        return {
            "classifier_loss": ops.mean(losses.classification(y, probabilities)),
            "classifier_accuracy": ops.mean(losses.correct(y, probabilities)),
        }

    def train_step(self, data):
        if not (isinstance(data, (tuple, list)) and len(data) == 3):
            raise ValueError("the supervised kind trains on (x, x_labeled, y_labeled) batches")
        _, x_labeled, y_labeled = data
        with tf.GradientTape() as tape:
            terms = self.classification_terms(x_labeled, y_labeled, training=True)
            scaled = self.optimizer.scale_loss(terms["loss"])  # a LossScaleOptimizer under float16
        variables = self.encoder.trainable_variables
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        return self.update_trackers(terms)

    def classification_terms(self, x, y, training: bool = False) -> dict[str, Any]:
        """The cross-entropy of labels ``y`` (the loss; no regularisers), and the accuracy, batch means."""
        probabilities = ops.softmax(self.encoder(x, training=training)["y_logits"], axis=-1)
        cross_entropy = ops.mean(losses.classification(y, probabilities))
        return {
            "loss": self.total_loss(cross_entropy, {}),
            "classification_loss": cross_entropy,
            "classification_accuracy": ops.mean(losses.correct(y, probabilities)),
        }

    def test_step(self, data):
        return {}
