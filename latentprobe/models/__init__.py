"""Model variants. Adding one: a file in this package, one line in ``MODELS``, a config in configs/."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from latentprobe.models.adversarial import AdversarialAutoencoder
from latentprobe.models.autoencoder import Autoencoder
from latentprobe.models.denoising import DenoisingAutoencoder
from latentprobe.models.sparse import SparseAutoencoder
from latentprobe.models.supervised import SupervisedClassifier
from latentprobe.models.vae import VariationalAutoencoder

MODELS: dict[str, type[Autoencoder]] = {
    "ae": Autoencoder,
    "dae": DenoisingAutoencoder,
    "vae": VariationalAutoencoder,
    "sparse": SparseAutoencoder,
    "aae": AdversarialAutoencoder,
    "supervised": SupervisedClassifier,
}


def build(
    model_cfg: Any, latent: int, input_shape: Sequence[int], num_classes: int, seed: int
) -> Autoencoder:
    """Build the variant ``model_cfg.kind`` with a latent of size ``latent`` (or load kind ``pretrained``'s
    encoder, whose latent size is its own).

    ``seed`` seeds the variant's noise and samples (derived from the run's seed by ``components``), so
    building a model draws nothing for them from a global RNG.
    """
    if model_cfg.kind == "pretrained":  # not a variant (nothing of it trains): a Keras file, loaded
        from latentprobe.models import pretrained

        return pretrained.load(model_cfg, input_shape)
    return MODELS[model_cfg.kind].build_from_config(model_cfg, latent, input_shape, num_classes, seed=seed)
