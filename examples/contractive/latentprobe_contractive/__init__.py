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
        """The batch mean of ``||dz/dx||_F^2``, exact.

        For latentprobe's dense encoder (flatten, dense layers with elementwise activations, the ``z``
        head) the Jacobian is the chain ``D_z W_z^T ... D_1 W_1^T``, carried backwards as one
        (batch, latent, width) array: about ``latent`` times a forward pass. Any other encoder (the
        conv network) takes a batch Jacobian of the code with respect to ``x``.
        """
        x = tf.convert_to_tensor(x)
        dense = _dense_chain(self.encoder)
        if dense is None:
            return self.batch_jacobian_norm(x, training)
        h = ops.reshape(x, (ops.shape(x)[0], -1))  # (batch, inputs)
        slopes = []  # d activation / d pre-activation of each layer, (batch, width)
        for layer in dense:
            pre = ops.matmul(ops.cast(h, layer.kernel.dtype), layer.kernel) + layer.bias
            h, slope = _with_slope(layer.activation, pre)
            slopes.append(slope)
        if self.settings.code == "sigmoid":
            z = ops.sigmoid(h)
            slopes[-1] = slopes[-1] * z * (1.0 - z)
        # Rows of the Jacobian, backwards: (batch, latent, width of the layer's input).
        rows = slopes[-1][:, :, None] * ops.transpose(dense[-1].kernel)[None, :, :]
        for layer, slope in zip(reversed(dense[:-1]), reversed(slopes[:-1]), strict=True):
            rows = ops.matmul(rows * slope[:, None, :], ops.transpose(layer.kernel))
        return ops.mean(ops.sum(ops.square(rows), axis=(1, 2)))

    def batch_jacobian_norm(self, x, training: bool = False):
        """``jacobian_norm`` for any encoder: a batch Jacobian of the code with respect to ``x``."""
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


def _dense_chain(encoder) -> list | None:
    """The dense layers from the input to the ``z`` head, when the encoder is only those (and a
    flatten) with elementwise activations and a single output; None otherwise."""
    layers = [layer for layer in encoder.layers if type(layer).__name__ not in ("InputLayer", "Flatten")]
    if len(encoder.outputs) != 1 or not layers or layers[-1].name != "z":
        return None
    if not all(type(layer).__name__ == "Dense" and layer.use_bias for layer in layers):
        return None
    if any(getattr(layer.activation, "__name__", "") not in _ELEMENTWISE for layer in layers):
        return None
    return layers


#: Activations that act on each unit alone, so their Jacobian is diagonal.
_ELEMENTWISE = {"linear", "relu", "sigmoid", "tanh", "elu", "selu", "softplus", "gelu", "silu", "swish"}


def _with_slope(activation, pre):
    """``activation(pre)`` and its elementwise derivative (the diagonal of its Jacobian)."""
    with tf.GradientTape() as tape:
        tape.watch(pre)
        out = activation(pre)
    return out, tape.gradient(out, pre)
