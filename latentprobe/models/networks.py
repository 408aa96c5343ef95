"""Encoder and decoder networks. ``NETWORKS`` maps ``model.network`` to a pair of builders."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import keras
from keras import layers

from latentprobe.errors import ConfigError


def build_dense_encoder(
    input_shape: Sequence[int],
    hidden: Sequence[int],
    outputs: Mapping[str, int],
    activation: str = "relu",
    name: str = "encoder",
) -> keras.Model:
    """input -> flatten -> Dense(h) for h in hidden -> one linear Dense head per output.

    Args:
        outputs: head name -> width, e.g. ``{"z": 8}`` or ``{"z_mean": 2, "z_log_var": 2}``.

    Returns:
        A functional model whose output is a dict keyed like ``outputs``.
    """
    x = inputs = keras.Input(shape=tuple(input_shape), name="x")
    if len(input_shape) > 1:
        x = layers.Flatten(name="flatten")(x)
    for i, width in enumerate(hidden):
        x = layers.Dense(width, activation=activation, name=f"dense_{i}")(x)
    return keras.Model(inputs, build_heads(x, outputs), name=name)


def build_heads(features, outputs: Mapping[str, int]) -> dict[str, Any]:
    """One linear Dense head per output on ``features``.

    The heads are float32 under a mixed precision policy: the code is what the probe, the latent losses
    and the histograms read.
    """
    return {key: layers.Dense(width, name=key, dtype="float32")(features) for key, width in outputs.items()}


def build_dense_decoder(
    latent: int,
    hidden: Sequence[int],
    output_shape: Sequence[int],
    activation: str = "relu",
    name: str = "decoder",
) -> keras.Model:
    """z -> Dense(h) for h in reversed(hidden) -> Dense(prod(output_shape), sigmoid) -> reshape.

    The sigmoid keeps reconstructions in [0, 1], the range the data module scales inputs to.
    """
    z = inputs = keras.Input(shape=(latent,), name="z")
    for i, width in enumerate(reversed(tuple(hidden))):
        z = layers.Dense(width, activation=activation, name=f"dense_{i}")(z)
    # float32 under a mixed precision policy: the log(1 - r) of the BCE needs more than float16's range.
    x = layers.Dense(math.prod(output_shape), activation="sigmoid", name="reconstruction", dtype="float32")(z)
    if len(output_shape) > 1:
        x = layers.Reshape(tuple(output_shape), name="reshape", dtype="float32")(x)
    return keras.Model(inputs, x, name=name)


def build_conv_encoder(
    input_shape: Sequence[int],
    hidden: Sequence[int],
    outputs: Mapping[str, int],
    activation: str = "relu",
    name: str = "encoder",
) -> keras.Model:
    """image -> Conv2D(f, 3, stride 2) for f in hidden -> flatten -> one linear Dense head per output.

    ``hidden`` holds filter counts; each layer halves the height and width (rounding up).
    """
    _check_image(input_shape)
    x = inputs = keras.Input(shape=tuple(input_shape), name="x")
    for i, filters in enumerate(hidden):
        x = layers.Conv2D(filters, 3, strides=2, padding="same", activation=activation, name=f"conv_{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, build_heads(x, outputs), name=name)


def build_conv_decoder(
    latent: int,
    hidden: Sequence[int],
    output_shape: Sequence[int],
    activation: str = "relu",
    name: str = "decoder",
) -> keras.Model:
    """z -> Dense -> the encoder's last feature map -> Conv2DTranspose(f, 3, stride 2) for f in
    reversed(hidden) -> Conv2D(channels, 3, sigmoid), cropped to the input's height and width."""
    _check_image(output_shape)
    height, width, channels = output_shape
    h, w = height, width
    for _ in hidden:  # the encoder's "same" strided convolutions round up
        h, w = -(-h // 2), -(-w // 2)
    filters = tuple(hidden) or (channels,)
    z = inputs = keras.Input(shape=(latent,), name="z")
    x = layers.Dense(h * w * filters[-1], activation=activation, name="dense")(z)
    x = layers.Reshape((h, w, filters[-1]), name="feature_map")(x)
    for i, f in enumerate(reversed(tuple(hidden))):
        x = layers.Conv2DTranspose(
            f, 3, strides=2, padding="same", activation=activation, name=f"deconv_{i}"
        )(x)
    # float32 under a mixed precision policy, as in the dense decoder.
    x = layers.Conv2D(
        channels, 3, padding="same", activation="sigmoid", name="reconstruction", dtype="float32"
    )(x)
    crop_h, crop_w = h * 2 ** len(hidden) - height, w * 2 ** len(hidden) - width
    if crop_h or crop_w:
        x = layers.Cropping2D(((0, crop_h), (0, crop_w)), name="crop", dtype="float32")(x)
    return keras.Model(inputs, x, name=name)


def _check_image(shape: Sequence[int]) -> None:
    if len(shape) != 3:
        raise ConfigError(
            "model.network",
            f"'conv' needs image data (height, width, channels), but the inputs have shape {tuple(shape)}",
        )


NETWORKS = {
    "dense": (build_dense_encoder, build_dense_decoder),
    "conv": (build_conv_encoder, build_conv_decoder),
}


def build_networks(
    network: str,
    input_shape: Sequence[int],
    hidden: Sequence[int],
    encoder_outputs: Mapping[str, int],
    decoder_latent: int,
    activation: str,
) -> tuple[keras.Model, keras.Model]:
    """Build the (encoder, decoder) pair of the named network family."""
    build_encoder, build_decoder = NETWORKS[network]
    encoder = build_encoder(input_shape, hidden, encoder_outputs, activation)
    decoder = build_decoder(decoder_latent, hidden, input_shape, activation)
    return encoder, decoder
