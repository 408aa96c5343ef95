"""Kind ``pretrained``: an encoder trained elsewhere and saved by Keras, measured as it is.

latentprobe trains no autoencoder for this kind: the encoder is loaded from ``model.encoder`` (whatever
``keras.models.load_model`` reads: ``.keras``, or a legacy ``.h5``), frozen, and only the probe trains
on its codes (``probe.strategy: frozen``). With ``model.decoder`` the reconstruction loss, the
reconstructions and the manifold plot are measured too.

What the encoder is fed: latentprobe's inputs, in [0, 1] and the data's shape (``(8, 8, 1)`` for
digits), mapped to the range the encoder expects (``model.input_range``: :data:`INPUT_RANGES`). An
encoder whose input is the flattened shape (``(784,)`` for 28x28x1 images) is fed flattened; any other
input shape is an error naming both. Its code is ``model.output`` of its outputs (a dict key or a list
index; None: its only output), flattened to (batch, features).

:class:`PretrainedEncoder` fits the :class:`~latentprobe.models.autoencoder.Autoencoder` interface that
the strategies, ``metrics.measure`` and eval read (``probe_features``, ``compute_terms``, ``decoder``).
The Python API (:func:`latentprobe.api.probe`) wraps a caller's in-memory model in one too, unfrozen.
"""

from __future__ import annotations

import hashlib
import importlib
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np
from keras import ops

from latentprobe.errors import ConfigError
from latentprobe.kinds import saved_model_problem
from latentprobe.models import losses
from latentprobe.models.autoencoder import Autoencoder

#: ``model.input_range``: how latentprobe's [0, 1] inputs x are mapped before the encoder sees them.
INPUT_RANGES: dict[str, str] = {
    "unit": "x, in [0, 1] (latentprobe's own scaling)",
    "symmetric": "2x - 1, in [-1, 1]",
    "byte": "255x, in [0, 255]",
    "standardized": "(x - mean) / std, with the mean and std of the train part's inputs",
}

#: Examples the encoder is tried on when it is loaded, to learn its output's structure and width.
_TRIAL_BATCH = 2

#: How a user makes custom layers loadable, for the error that names an unknown class.
CUSTOM_OBJECTS_HINT = (
    "decorate the class with @keras.saving.register_keras_serializable() in a module of yours and "
    "name that module in model.imports (it must be importable: on PYTHONPATH or installed)"
)


@dataclass(frozen=True)
class InputMapping:
    """How an encoder is fed: the range mapping and whether the inputs are flattened."""

    input_range: str = "unit"
    flatten: bool = False
    mean: float = 0.0  # standardized only: of the train part's inputs
    std: float = 1.0

    def apply(self, x):
        """latentprobe's inputs (batch, *data shape) in [0, 1] -> what the encoder reads."""
        if self.input_range == "symmetric":
            x = 2.0 * x - 1.0
        elif self.input_range == "byte":
            x = 255.0 * x
        elif self.input_range == "standardized":
            x = (x - self.mean) / self.std
        return ops.reshape(x, (ops.shape(x)[0], -1)) if self.flatten else x

    def invert(self, r):
        """A decoder's output in the encoder's range -> [0, 1] (the reconstruction loss's range)."""
        if self.input_range == "symmetric":
            return (r + 1.0) / 2.0
        if self.input_range == "byte":
            return r / 255.0
        if self.input_range == "standardized":
            return r * self.std + self.mean
        return r


class PretrainedEncoder(Autoencoder):
    """A frozen encoder trained elsewhere (and optionally its decoder); only the probe trains.

    The code the probe reads is the selected output, flattened: ``(batch, latent)``. Without a decoder
    there is no reconstruction loss; with one, the decoder's outputs are mapped back to [0, 1] and
    compared with the input as the config's ``reconstruction_loss`` says.
    """

    #: No reconstruction update ever runs: the frozen strategy goes straight to the probe's epochs.
    trains_autoencoder: ClassVar[bool] = False
    shares_codes: ClassVar[bool] = False

    def __init__(
        self,
        encoder: Callable[..., Any],
        decoder: keras.Model | None = None,
        reconstruction_loss: str = "bce",
        output: str | int | None = None,
        mapping: InputMapping | None = None,
        freeze: bool = True,
        **kwargs: Any,
    ):
        """Wrap ``encoder`` (and ``decoder``); ``freeze`` sets them untrainable (a loaded file's; the
        Python API leaves a caller's own model as it was)."""
        kwargs.pop("settings", None)
        kwargs.pop("seed", None)
        keras.Model.__init__(self, **kwargs)
        for network in (encoder, decoder):
            if freeze and isinstance(network, keras.Model):
                network.trainable = False  # frozen before anything is compiled
        self.encoder = encoder
        self.decoder = decoder
        self.reconstruction_kind = reconstruction_loss
        self.settings = None
        self.output_key = output
        self.mapping = mapping or InputMapping()
        terms = ("loss", "reconstruction_loss") if decoder is not None else ()
        self.trackers = {name: keras.metrics.Mean(name=name) for name in terms}
        self.source: dict[str, Any] = {}  # where the files came from (set by load)
        self.latent: int | None = None  # the code's width (set by check_codes)

    @property
    def all_terms(self) -> tuple[str, ...]:
        return tuple(self.trackers)

    # -- what the strategies and metrics call ------------------------------------------------------

    def raw_codes(self, x):
        """The selected output of the encoder for inputs ``x`` in [0, 1], as the encoder gives it."""
        return ops.convert_to_tensor(
            select_output(_call(self.encoder, self.mapping.apply(x)), self.output_key)
        )

    def codes(self, x, training: bool = False):
        """The code the probe reads: the selected output, flattened, float32: (batch, latent)."""
        z = self.raw_codes(x)
        return ops.cast(ops.reshape(z, (ops.shape(z)[0], -1)), "float32")

    def decode(self, z):
        """The decoder's output for codes ``z`` (as the encoder gives them), mapped back to [0, 1]."""
        return self.mapping.invert(self.decoder(z, training=False))

    def encode(self, x, training: bool = False) -> dict[str, Any]:
        return {"z": self.codes(x)}

    def probe_features(self, x, training: bool = False):
        return self.codes(x)

    def compute_terms(self, x, training: bool = False) -> dict[str, Any]:
        if self.decoder is None:
            return {}
        r = self.decode(self.raw_codes(x))
        loss = ops.mean(losses.reconstruction(x, r, self.reconstruction_kind))
        return {"reconstruction_loss": loss, "loss": loss}

    def call(self, x, training: bool = False):
        if self.decoder is None:
            raise ValueError("this pretrained encoder has no decoder (model.decoder)")
        return self.decode(self.raw_codes(x))

    def train_step(self, data):
        raise RuntimeError("a pretrained encoder is never trained: only the probe is")

    # -- eval -------------------------------------------------------------------------------------

    def reinitialized(self, seed: int) -> PretrainedEncoder | None:
        """The same architecture with freshly drawn weights (eval's random-encoder control), or None when
        Keras cannot clone the encoder (a subclassed model, a plain callable)."""
        if not isinstance(self.encoder, keras.Model):
            return None
        from latentprobe.components import isolated_python_random

        try:
            with isolated_python_random(seed):  # Keras initializers draw their seeds from `random`
                clone = keras.models.clone_model(self.encoder)
        except Exception:  # noqa: BLE001 - a model Keras cannot clone simply has no such control
            return None
        return PretrainedEncoder(clone, None, self.reconstruction_kind, self.output_key, self.mapping)

    def describe(self) -> dict[str, Any]:
        """What summary.json records under ``pretrained``."""
        return {
            **self.source,
            "latent": self.latent,
            "output": self.output_key,
            "input_range": self.mapping.input_range,
            "fed_flattened": self.mapping.flatten,
            "input_mean": self.mapping.mean,
            "input_std": self.mapping.std,
        }


# --------------------------------------------------------------------------------------------------
# Loading and checking


def load(model_cfg: Any, input_shape: Sequence[int]) -> PretrainedEncoder:
    """Load and check the encoder (and decoder) a ``ModelConfig`` names, for inputs of ``input_shape``.

    Raises:
        ConfigError: naming ``model.encoder``, ``model.decoder``, ``model.output`` or ``model.imports``:
            no such file, not a Keras model, an unregistered custom layer, an output it does not have,
            an input shape that fits neither the data's nor its flattened shape, codes that are not
            2-d after flattening.
    """
    import_modules(model_cfg.imports)
    encoder = load_network(model_cfg.encoder, "model.encoder")
    decoder = load_network(model_cfg.decoder, "model.decoder") if model_cfg.decoder else None
    mapping = InputMapping(model_cfg.input_range, feeds_flattened(encoder, input_shape))
    model = PretrainedEncoder(encoder, decoder, model_cfg.reconstruction_loss, model_cfg.output, mapping)
    check_codes(model, input_shape, "model.output")
    model.source = {"encoder": file_record(model_cfg.encoder), "decoder": None}
    if decoder is not None:
        model.source["decoder"] = file_record(model_cfg.decoder)
    return model


def import_modules(names: Sequence[str]) -> None:
    """Import ``model.imports``: the modules that register the encoder's custom layers."""
    for i, name in enumerate(names):
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - any failure to import is the user's to fix
            raise ConfigError(f"model.imports[{i}]", f"cannot import {name!r}: {_one_line(exc)}") from None


def load_network(path: str, key: str) -> keras.Model:
    """``keras.models.load_model(path)``, or a ConfigError naming ``key`` and what is wrong."""
    problem = saved_model_problem(path)
    if problem is not None:
        raise ConfigError(key, problem)
    file = Path(path)
    try:
        return keras.models.load_model(file, compile=False)
    except Exception as exc:  # noqa: BLE001 - Keras raises many kinds; the user needs one line
        text = str(exc)
        unknown = _unknown_class(text)
        if unknown is not None:
            raise ConfigError(
                key, f"{path}: uses a custom class {unknown} that Keras does not know; {CUSTOM_OBJECTS_HINT}"
            ) from None
        raise ConfigError(
            key, f"{path}: not a Keras model that keras.models.load_model can read ({_one_line(exc)})"
        ) from None


def _unknown_class(text: str) -> str | None:
    """The class name in Keras's "Could not locate class 'X'" / "Unknown layer: 'X'" messages."""
    import re

    for pattern in (r"Could not locate class '([^']+)'", r"Unknown (?:layer|object)[^']*'([^']+)'"):
        found = re.search(pattern, text)
        if found:
            return repr(found.group(1))
    return None


def feeds_flattened(encoder: Any, input_shape: Sequence[int], key: str = "model.encoder") -> bool:
    """Whether the encoder reads the data's shape (False) or its flattened shape (True).

    Raises:
        ConfigError: it has several inputs, or an input shape that fits neither.
    """
    shape = _input_shape(encoder)
    if shape is None:
        return False  # a plain callable: fed the data's shape
    data = tuple(int(d) for d in input_shape)
    if _fits(shape, data):
        return False
    flat = (int(np.prod(data)),)
    if len(data) > 1 and _fits(shape, flat):
        return True
    raise ConfigError(
        key,
        f"the encoder's input shape {_show(shape)} fits neither the data's {_show(data)} "
        f"nor its flattened {_show(flat)}",
    )


def _input_shape(encoder: Any) -> tuple[int | None, ...] | None:
    inputs = getattr(encoder, "inputs", None)
    if not inputs:
        return None
    if len(inputs) != 1:
        raise ConfigError("model.encoder", f"the encoder takes {len(inputs)} inputs; latentprobe feeds one")
    return tuple(inputs[0].shape[1:])


def _fits(shape: tuple[int | None, ...], data: tuple[int, ...]) -> bool:
    return len(shape) == len(data) and all(s is None or s == d for s, d in zip(shape, data, strict=True))


def _show(shape: Sequence[int | None]) -> str:
    inner = ", ".join("None" if d is None else str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def check_codes(model: PretrainedEncoder, input_shape: Sequence[int], key: str) -> int:
    """Encode a trial batch: the output exists and its codes are (batch, latent). Returns the latent size.

    Raises:
        ConfigError: naming ``key`` (``model.output``) for an output the encoder does not have, or
            ``model.encoder`` for codes that are not 2-d after flattening.
    """
    x = np.zeros((_TRIAL_BATCH, *input_shape), np.float32)
    try:
        outputs = _call(model.encoder, model.mapping.apply(x))
    except Exception as exc:  # noqa: BLE001
        raise ConfigError(
            "model.encoder", f"the encoder fails on a batch of inputs: {_one_line(exc)}"
        ) from None
    z = np.asarray(select_output(outputs, model.output_key, key))
    if z.ndim < 2 or z.shape[0] != _TRIAL_BATCH:
        raise ConfigError(
            "model.encoder",
            f"its codes have shape {_show(z.shape)} for {_TRIAL_BATCH} inputs: not (batch, features) "
            "after flattening",
        )
    model.latent = int(np.prod(z.shape[1:]))
    return model.latent


def select_output(outputs: Any, output: str | int | None, key: str = "model.output") -> Any:
    """The code among an encoder's outputs: a dict key or list index (None: the only output)."""
    if isinstance(outputs, dict):
        names = ", ".join(repr(k) for k in outputs)
        if output is None:
            if len(outputs) == 1:
                return next(iter(outputs.values()))
            raise ConfigError(key, f"the encoder has several outputs ({names}); name the code's key")
        if output not in outputs:
            raise ConfigError(key, f"{output!r}: the encoder has no such output (its outputs: {names})")
        return outputs[output]
    if isinstance(outputs, (list, tuple)):
        if output is None:
            if len(outputs) == 1:
                return outputs[0]
            raise ConfigError(
                key,
                f"the encoder has {len(outputs)} outputs; give the code's index (0 to {len(outputs) - 1})",
            )
        if not isinstance(output, int) or not 0 <= output < len(outputs):
            raise ConfigError(
                key, f"{output!r}: the encoder has outputs 0 to {len(outputs) - 1} (a list, not a dict)"
            )
        return outputs[output]
    if output is not None:
        raise ConfigError(key, f"{output!r}: the encoder has a single output; leave model.output null")
    return outputs


def _call(encoder: Any, x: Any) -> Any:
    if isinstance(encoder, keras.Model):
        return encoder(x, training=False)
    return encoder(x)


def file_record(path: str) -> dict[str, Any]:
    """The original path (as given, and resolved) and sha256 of a file."""
    return {"path": path, "resolved": str(Path(path).resolve()), "sha256": sha256_of(Path(path))}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_networks(model: PretrainedEncoder, encoder_path: Path, decoder_path: Path) -> None:
    """Put the encoder (and decoder) into a run directory: a ``.keras`` file is copied as it is, byte for
    byte; a legacy ``.h5`` is saved again in the ``.keras`` format."""
    pairs = [(model.encoder, model.source.get("encoder"), encoder_path)]
    if model.decoder is not None:
        pairs.append((model.decoder, model.source.get("decoder"), decoder_path))
    for network, record, target in pairs:
        if record and Path(record["path"]).suffix == ".keras":
            shutil.copyfile(record["path"], target)
        else:
            network.save(target)
        if record:
            record["copy_sha256"] = sha256_of(target)


def adapt(model: Any, x_train: np.ndarray, scale: float = 1.0) -> None:
    """``input_range: standardized``: take the mean and std of the train part's inputs, ``x_train /
    scale`` as the encoder is fed them (no-op otherwise)."""
    if isinstance(model, PretrainedEncoder) and model.mapping.input_range == "standardized":
        # Statistics of the stored values, divided: no float copy of a split of bytes.
        mean = float(np.mean(x_train, dtype=np.float64)) / scale
        std = float(np.std(x_train, dtype=np.float64)) / scale or 1.0
        model.mapping = InputMapping("standardized", model.mapping.flatten, mean, std)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"
