"""The sparse autoencoder (Ng, "Sparse autoencoder" lecture notes; the sparse autoencoder notebook).

The code is a layer of sigmoid units (``z = sigmoid(encoder head)``) with an activity penalty: ``l1``
(``weight * sum |z|``, batch mean) or ``kl`` (``beta * sum_j KL(rho || rho_hat_j)``, ``rho_hat_j`` the
batch-mean activation of unit j), plus optional L2 weight decay (``weight_decay * sum W^2`` over every
kernel of encoder and decoder). As every variant, it logs the raw terms: ``sparsity_loss`` is the
unweighted penalty (``sum |z|`` or the KL sum), ``weight_decay_loss`` the unweighted ``sum W^2`` (logged
even when ``weight_decay`` is 0, where it adds nothing to the loss).

Scale: the weights apply to the loss as this package computes it: reconstruction SUMMED over input
dimensions and the KL SUMMED over code units, Ng's convention. A weight calibrated against a per-pixel
MEAN loss (Keras's default, as in the sparse autoencoder notebook) is D times too small here (D input
dimensions); one calibrated on a KL averaged over U units is U times too large. The notebook's beta 3
(both means) is 3 * 784 / 32 = 73.5 here; see configs/reference/sparse-784-32-mnist.yaml.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from keras import ops

from latentprobe.models import losses
from latentprobe.models.autoencoder import Autoencoder, Regularizer
from latentprobe.settings import SparseSettings

#: An activation below this counts as "near zero" in ``near_zero_share``.
NEAR_ZERO = 0.05


class SparseAutoencoder(Autoencoder):
    """Autoencoder with a sigmoid code, an activity penalty (KL or L1) and optional L2 weight decay."""

    Settings: ClassVar[type] = SparseSettings
    logged_terms: ClassVar[tuple[str, ...]] = (
        "sparsity_loss",
        "weight_decay_loss",
        "mean_activation",
        "near_zero_share",
    )

    def __init__(self, encoder, decoder, reconstruction_loss="bce", settings=None, seed=None, **kwargs):
        super().__init__(encoder, decoder, reconstruction_loss, settings or SparseSettings(), seed, **kwargs)

    def encode(self, x, training: bool = False) -> dict[str, Any]:
        codes = dict(self.encoder(x, training=training))
        codes["z"] = ops.sigmoid(codes["z"])  # (batch, latent), in (0, 1)
        return codes

    def regularizers(self, x, codes: dict[str, Any], training: bool = False) -> dict[str, Regularizer]:
        z, s = codes["z"], self.settings
        if s.penalty == "kl":
            sparsity = Regularizer(s.beta, losses.sparsity_kl(s.rho, z))
        else:
            sparsity = Regularizer(s.weight, ops.mean(ops.sum(ops.abs(z), axis=-1)))
        # Every kernel, trainable or not: a frozen encoder's weights still count, so the logged term does
        # not change when the frozen strategy freezes the encoder (nor between train and eval).
        kernels = [w for m in (self.encoder, self.decoder) for w in m.weights if "kernel" in w.path]
        decay = sum(ops.sum(ops.square(w)) for w in kernels)
        return {"sparsity_loss": sparsity, "weight_decay_loss": Regularizer(s.weight_decay, decay)}

    def logged_statistics(self, x, terms: Mapping[str, Any], codes: dict[str, Any]) -> dict[str, Any]:
        # How sparse the code is.
        z = codes["z"]
        return {
            "mean_activation": ops.mean(z),
            "near_zero_share": ops.mean(ops.cast(z < NEAR_ZERO, "float32")),
        }

    def latent_statistics(self, x) -> dict[str, Any]:
        """Mean activation per unit over ``x`` (to set against rho) and the share of near-zero codes."""
        z = ops.convert_to_numpy(self.encode(x, training=False)["z"])
        return {
            "rho": self.settings.rho if self.settings.penalty == "kl" else None,
            "mean_activation": float(z.mean()),
            "mean_activation_per_unit": [float(v) for v in z.mean(axis=0)],
            "near_zero_share": float((z < NEAR_ZERO).mean()),
        }
