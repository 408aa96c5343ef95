"""Arithmetic per training step of latentprobe's dense models: the FLOPs of their matrix multiplications.

One rule for every model, so that rates (GFLOP/s) compare: a Dense layer with ``n_in`` inputs and
``n_out`` outputs costs ``2 * n_in * n_out`` FLOPs per example forward, as much again for its weight
gradient when that phase updates it, and as much again for its input gradient when something below it
needs one (not for a network's first layer when its input is data). Biases, activations, losses and the
optimizers' elementwise updates are left out (a few percent of the total for these models); so is the
probe head on the code (10 x latent). ``tests/test_flops.py`` checks the plain autoencoder's count against
TensorFlow's own count of the traced step (which includes the elementwise work).

Counts are per example of the autoencoder's batch; the semi-supervised AAE's labeled batch has the same
size in latentprobe (``probe.batch_size``, default the train batch), so it is counted per example too.
"""

from __future__ import annotations

from typing import Any


def dense_flops(network: Any) -> tuple[int, int]:
    """(forward FLOPs per example of every Dense layer in ``network``, those of its first Dense layer).

    The first is the layer that reads the network's input (its input gradient is never needed).
    """
    import keras

    sizes = [
        (int(layer.kernel.shape[0]), int(layer.kernel.shape[1]))
        for layer in network.layers
        if isinstance(layer, keras.layers.Dense)
    ]
    if not sizes:
        raise ValueError(f"{network.name}: no Dense layers to count")
    total = sum(2 * n_in * n_out for n_in, n_out in sizes)
    return total, 2 * sizes[0][0] * sizes[0][1]


def trained(network: Any) -> int:
    """Forward + weight gradients + input gradients below the first layer, per example."""
    forward, first = dense_flops(network)
    return 3 * forward - first


def autoencoder_step(model: Any, shares_pass: bool = True) -> dict[str, int]:
    """FLOPs per example of latentprobe's alternating step on a plain autoencoder, by phase.

    ``shares_pass``: the probe reads the codes of the autoencoder's own pass (every example labeled, the
    probe batch the autoencoder's: ``AlternatingStrategy.shares_batches``); else the probe's batch costs
    one more encoder forward pass.
    """
    return {
        "reconstruction": trained(model.encoder) + trained(model.decoder),
        "probe_pass": 0 if shares_pass else dense_flops(model.encoder)[0],
    }


def adversarial_step(model: Any) -> dict[str, int]:
    """FLOPs per example of the semi-supervised (or not) adversarial autoencoder's step, by phase.

    The phases of ``AdversarialAutoencoder.train_step`` and the probe's encoder pass:

    - reconstruction: encoder and decoder trained;
    - discriminators: the encoder's forward pass for the codes, then each discriminator trained on a
      batch of prior samples and one of codes (twice the batch; no gradient into the codes);
    - generator: the encoder's forward pass, each discriminator forward and its input gradients (every
      layer's, down to the codes), then the encoder's weight and input gradients;
    - supervised (semi-supervised only): the encoder trained on the labeled batch;
    - probe_pass: the encoder's forward pass on the probe's batch.
    """
    encoder, encoder_first = dense_flops(model.encoder)
    discriminators = [dense_flops(d) for d in model.discriminators.values()]
    phases = {
        "reconstruction": trained(model.encoder) + trained(model.decoder),
        "discriminators": encoder + sum(2 * (3 * f - first) for f, first in discriminators),
        "generator": encoder + sum(2 * f for f, _ in discriminators) + (2 * encoder - encoder_first),
        "probe_pass": encoder,
    }
    if model.settings.semi_supervised:
        phases["supervised"] = trained(model.encoder)
    return phases


def step_flops(model: Any, shares_pass: bool = True) -> dict[str, int]:
    """The per-example count by phase for ``model`` (an ``Autoencoder`` or ``AdversarialAutoencoder``);
    ``shares_pass`` as in :func:`autoencoder_step` (the AAE's probe always encodes its own batch)."""
    if hasattr(model, "discriminators"):
        return adversarial_step(model)
    return autoencoder_step(model, shares_pass)
