"""The contractive autoencoder keeps latentprobe's rules (``check_variant``), and its penalty is the
squared Frobenius norm of the encoder's Jacobian (checked against the paper's closed form)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from latentprobe import config, kinds, models
from latentprobe.testing import check_variant

from latentprobe_contractive import ContractiveAutoencoder, ContractiveSettings


def test_contractive_keeps_every_latentprobe_rule(tmp_path):
    check_variant(
        ContractiveAutoencoder, {"weight": 0.5}, weights={"contractive_loss": 0.5}, tmp_path=tmp_path
    )


def test_the_linear_code_keeps_the_loss_convention():
    check_variant(
        ContractiveAutoencoder, ContractiveSettings(weight=2.0, code="linear"), rules=("loss convention",)
    )


def build(code: str = "sigmoid", hidden=(), **model):
    raw = {
        "model": {"kind": "contractive", "latent": 3, "hidden": list(hidden), "contractive": {"code": code}}
    }
    raw["model"].update(model)
    cfg = config.from_dict(raw)
    return models.build(cfg.model, 3, (8, 8, 1), 10, seed=0)


def test_the_penalty_is_the_closed_form_of_a_one_layer_sigmoid_encoder():
    model = build("sigmoid")
    x = np.random.default_rng(0).random((5, 8, 8, 1)).astype("float32")
    kernel, bias = (w.numpy() for w in model.encoder.get_layer("z").weights)  # (64, 3), (3,)
    h = 1 / (1 + np.exp(-(x.reshape(5, 64) @ kernel + bias)))  # (5, 3)
    # Rifai et al. (2011), eq. 5: ||J||_F^2 = sum_j (h_j (1 - h_j))^2 sum_i W_ij^2.
    closed_form = ((h * (1 - h)) ** 2 * (kernel**2).sum(axis=0)).sum(axis=1).mean()
    assert float(model.jacobian_norm(x)) == pytest.approx(closed_form, rel=1e-5)


def test_a_linear_encoder_s_penalty_is_its_kernel_s_squared_norm_everywhere():
    model = build("linear")
    kernel = model.encoder.get_layer("z").weights[0].numpy()
    x = np.random.default_rng(1).random((4, 8, 8, 1)).astype("float32")
    assert float(model.jacobian_norm(x)) == pytest.approx(float((kernel**2).sum()), rel=1e-5)


@pytest.mark.parametrize(
    ("code", "hidden", "activation", "network"),
    [
        ("sigmoid", [16, 8], "relu", "dense"),
        ("linear", [16], "tanh", "dense"),
        ("sigmoid", [4], "relu", "conv"),
    ],
)
def test_the_dense_chain_equals_the_batch_jacobian_and_so_do_their_gradients(
    code, hidden, activation, network
):
    model = build(code, hidden, activation=activation, network=network)
    x = tf.constant(np.random.default_rng(2).random((6, 8, 8, 1)).astype("float32"))
    variables = model.encoder.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        fast, exact = model.jacobian_norm(x), model.batch_jacobian_norm(x)
    assert float(fast) == pytest.approx(float(exact), rel=1e-4)
    for a, b in zip(tape.gradient(fast, variables), tape.gradient(exact, variables), strict=True):
        if a is None or b is None:  # a weight the penalty does not depend on (a linear head's bias)
            assert a is None or not np.any(np.asarray(a))
            assert b is None or not np.any(np.asarray(b))
            continue
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-3, atol=1e-6)


def test_the_entry_point_and_the_import_path_name_the_same_variant_and_block():
    by_name = kinds.resolve("contractive")
    by_path = kinds.resolve("latentprobe_contractive:ContractiveAutoencoder")
    assert by_name.load() is by_path.load() is ContractiveAutoencoder
    assert by_name.block == by_path.block == "contractive"
    assert by_name.settings is ContractiveSettings


def test_its_settings_are_checked_like_a_built_in_kind_s():
    text = "model:\n  kind: contractive\n  contractive:\n    wieght: 0.1\n"
    with pytest.raises(config.ConfigError) as info:
        config.load_text(text, source="c.yaml")
    assert str(info.value) == (
        "c.yaml:4: model.contractive.wieght: unknown key; did you mean 'model.contractive.weight'? "
        "(valid keys here: weight, code)"
    )
    with pytest.raises(
        config.ConfigError, match=r"c.yaml:4: model.contractive.weight: expected a value >= 0"
    ):
        config.load_text(text.replace("wieght", "weight").replace("0.1", "-1"), source="c.yaml")
