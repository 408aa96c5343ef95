"""latentprobe: train autoencoders, probe their latent space, eval and compare runs.

From Python, :func:`latentprobe.probe` reads the latent space of an encoder held in memory
(:mod:`latentprobe.api`).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "probe"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: `import latentprobe` (the CLI, validate) stays free of TensorFlow.
    if name == "probe":
        from latentprobe.api import probe

        return probe
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
