"""Model variants: the public base class :class:`Autoencoder` (and :class:`Regularizer`), the built-in
variants, and :func:`build`.

A built-in variant is a file in this package, one line in ``MODELS`` and one in
``latentprobe.settings.VARIANT_SETTINGS``. A variant from another package needs neither: ``model.kind``
names it by an import path or an entry point (``latentprobe.kinds``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from latentprobe.models.adversarial import AdversarialAutoencoder
from latentprobe.models.autoencoder import Autoencoder, Regularizer
from latentprobe.models.denoising import DenoisingAutoencoder
from latentprobe.models.sparse import SparseAutoencoder
from latentprobe.models.supervised import SupervisedClassifier
from latentprobe.models.vae import VariationalAutoencoder

__all__ = ["MODELS", "Autoencoder", "Regularizer", "build"]

#: The built-in kinds (plug-in kinds resolve through ``latentprobe.kinds``).
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
    """Build the variant ``model_cfg.kind`` (built in, installed or an import path) with a latent of
    size ``latent`` (or load kind ``pretrained``'s encoder, whose latent size is its own).

    ``seed`` seeds the variant's noise and samples (derived from the run's seed by ``components``), so
    building a model draws nothing for them from a global RNG.
    """
    from latentprobe import kinds

    if model_cfg.kind == kinds.PRETRAINED:  # not a variant (nothing of it trains): a Keras file, loaded
        from latentprobe.models import pretrained

        return pretrained.load(model_cfg, input_shape)
    cls = kinds.resolve(model_cfg.kind).load()
    return cls.build_from_config(model_cfg, latent, input_shape, num_classes, seed=seed)
