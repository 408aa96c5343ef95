"""The contractive autoencoder (Rifai, Vincent, Muller, Glorot and Bengio 2011, "Contractive
Auto-Encoders: Explicit Invariance During Feature Extraction"), as a latentprobe plug-in variant.

The loss is the reconstruction loss plus ``weight`` (the paper's lambda) times the squared Frobenius norm
of the encoder's Jacobian at each input, averaged over the batch:

    L = reconstruction(x, g(f(x))) + lambda * ||J_f(x)||_F^2,   ||J_f(x)||_F^2 = sum_ij (dz_j / dx_i)^2

The penalty makes the code insensitive to small moves of the input in every direction the
reconstruction does not need. The code is the paper's sigmoid layer (``code: sigmoid``; with
``model.hidden: []`` the encoder is exactly the paper's ``sigmoid(W x + b)``) or a linear one.

The Jacobian is computed exactly, for any encoder network latentprobe builds, with a batch Jacobian
(``tf.GradientTape.batch_jacobian``): ``latent`` vector-Jacobian products, vectorised, per batch. For the
paper's one-layer sigmoid encoder it equals the closed form ``sum_j (h_j (1 - h_j))^2 sum_i W_ij^2`` (the
tests check this). Only the ``regularizers`` hook changes: it receives the input batch ``x``.

Use it with ``model.kind: contractive`` (the entry point this package installs) and its settings block::

    model:
      kind: contractive
      contractive: {weight: 0.1, code: sigmoid}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import tensorflow as tf  # the inner tape of the Jacobian
from keras import ops
from latentprobe.models import Autoencoder, Regularizer

__all__ = ["ContractiveAutoencoder", "ContractiveSettings"]


@dataclass(frozen=True)
class ContractiveSettings:
    """``model.contractive``: the penalty's weight (the paper's lambda) and the code's activation."""

    weight: float = field(default=0.1, metadata={"min": 0})
    code: Literal["sigmoid", "linear"] = "sigmoid"


class ContractiveAutoencoder(Autoencoder):
    """Loss ``reconstruction + weight * ||dz/dx||_F^2``; the penalty logged raw as ``contractive_loss``."""

    Settings: ClassVar[type] = ContractiveSettings
    #: The settings block's name when the class is named by its import path too.
    kind: ClassVar[str] = "contractive"
    logged_terms: ClassVar[tuple[str, ...]] = ("contractive_loss",)

    def __init__(self, encoder, decoder, reconstruction_loss="bce", settings=None, seed=None, **kwargs):
        settings = settings or ContractiveSettings()
        super().__init__(encoder, decoder, reconstruction_loss, settings, seed, **kwargs)

    def encode(self, x, training: bool = False) -> dict[str, Any]:
        codes = dict(self.encoder(x, training=training))
        if self.settings.code == "sigmoid":
            codes["z"] = ops.sigmoid(codes["z"])  # (batch, latent), the paper's h = sigmoid(W x + b)
        return codes

    def regularizers(self, x, codes: dict[str, Any], training: bool = False) -> dict[str, Regularizer]:
        return {"contractive_loss": Regularizer(self.settings.weight, self.jacobian_norm(x, training))}

    def jacobian_norm(self, x, training: bool = False):
        """The batch mean of ``||dz/dx||_F^2``, exact (a batch Jacobian of the code with respect to x)."""
        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            z = self.encode(x, training=training)["z"]  # (batch, latent)
        jacobian = tape.batch_jacobian(z, x)  # (batch, latent) + input_shape
        per_example = ops.sum(ops.reshape(ops.square(jacobian), (ops.shape(jacobian)[0], -1)), axis=-1)
        return ops.mean(per_example)

    def latent_statistics(self, x) -> dict[str, Any]:
        """The mean squared Frobenius norm of the encoder's Jacobian over ``x`` (eval: latent.variant)."""
        norms = [
            float(self.jacobian_norm(x[i : i + 256])) * len(x[i : i + 256]) for i in range(0, len(x), 256)
        ]
        return {"jacobian_frobenius_sq": sum(norms) / max(len(x), 1)}
