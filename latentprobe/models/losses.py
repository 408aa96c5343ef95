"""Pure tensor loss functions. Per-example values; callers average over the batch."""

from __future__ import annotations

from keras import ops

_EPS = 1e-7


def reconstruction(x, reconstruction_, kind: str = "bce"):
    """Reconstruction loss per example, summed over every input dimension.

    Summing (not averaging) over dimensions gives nats per example for ``bce``, the scale of the VAE's
    negative ELBO, so every variant reports the same quantity.

    Args:
        x: inputs in [0, 1], shape (batch, ...).
        reconstruction_: decoder outputs in [0, 1], same shape.
        kind: ``bce`` (binary cross-entropy) or ``mse`` (squared error).

    Returns:
        Tensor of shape (batch,).
    """
    x = ops.reshape(x, (ops.shape(x)[0], -1))
    r = ops.reshape(reconstruction_, (ops.shape(reconstruction_)[0], -1))
    if kind == "bce":
        r = ops.clip(r, _EPS, 1.0 - _EPS)
        per_dim = -(x * ops.log(r) + (1.0 - x) * ops.log(1.0 - r))
    elif kind == "mse":
        per_dim = ops.square(x - r)
    else:
        raise ValueError(f"unknown reconstruction loss {kind!r}")
    return ops.sum(per_dim, axis=-1)


def classification(y, probabilities):
    """Cross-entropy of integer labels under predicted class probabilities, shape (batch,)."""
    p = ops.clip(probabilities, _EPS, 1.0)
    y = ops.cast(y, "int32")
    return -ops.sum(ops.one_hot(y, ops.shape(p)[-1]) * ops.log(p), axis=-1)


def correct(y, probabilities):
    """1.0 where the most probable class is the label, else 0.0; shape (batch,)."""
    predicted = ops.cast(ops.argmax(probabilities, axis=-1), "int32")
    return ops.cast(ops.equal(predicted, ops.cast(y, "int32")), "float32")


def gaussian_kl(z_mean, z_log_var):
    """KL(N(z_mean, exp(z_log_var)) || N(0, I)) per example, summed over latent dimensions, shape (batch,).

    ``z_log_var`` is the log-variance: the KL is -0.5 * sum(1 + log_var - mean^2 - exp(log_var)).
    """
    return -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)


def sparsity_kl(rho: float, activations):
    """Sum over units of KL(Bernoulli(rho) || Bernoulli(rho_hat_j)), rho_hat_j the batch-mean activation.

    Args:
        rho: the target mean activation, in (0, 1).
        activations: sigmoid activations in [0, 1], shape (batch, units).

    Returns:
        A scalar (the batch enters through rho_hat).
    """
    rho_hat = ops.clip(ops.mean(activations, axis=0), _EPS, 1.0 - _EPS)  # (units,)
    return ops.sum(rho * ops.log(rho / rho_hat) + (1.0 - rho) * ops.log((1.0 - rho) / (1.0 - rho_hat)))
