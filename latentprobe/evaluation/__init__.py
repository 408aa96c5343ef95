"""``eval``: how good is a saved run's latent space? Reloads the models (no retraining) and reads the
latent space several ways, writing ``eval.json``, plots and TensorBoard data.

- Re-measures the test split with :func:`latentprobe.metrics.measure` (it reproduces summary.json).
- Offline probes (linear, MLP, kNN; :mod:`.probing`) at several label budgets, on class-balanced subsets
  of the train part saved under ``RUN_DIR/eval/budgets.npz`` (:mod:`.budgets`), scored on test; each
  probe's regularisation tuned by cross-validation on its budget's labels, its convergence reported.
- k-means clustering accuracy (Hungarian matching) and NMI; per-class accuracy and the confusion matrix.
- Controls (:mod:`.controls`): chance, the same probes on a randomly initialised encoder of the same
  architecture, on the raw inputs reduced by PCA (fitted on train) to the latent size, and on the raw
  inputs; PCA's and the raw inputs' results are cached on disk and reused across evals.
- The online-offline gap: the probe trained during ``train`` against a linear probe refit here on the
  same labeled subset.
- Latent statistics (:mod:`.latent_stats`) plus the model's own ``latent_statistics`` hook.
- Figures (:mod:`.figures`) as PNG under ``RUN_DIR/plots`` and as TensorBoard images under
  ``RUN_DIR/tb/eval``, with the embedding projector (:mod:`.projector`) beside them.

The steps are in :mod:`.run`; CLI values are parsed by :mod:`.options`; :mod:`.report` renders a report.
"""

from __future__ import annotations

import importlib
from typing import Any

# Loaded on first use: the run's steps import TensorFlow, while the options and the batch driver do not,
# so `eval --jobs N` parses its options and starts its workers without TensorFlow in the parent.
_EXPORTS = {
    "EvalOptions": "options",
    "parse_budgets": "options",
    "parse_probes": "options",
    "FEATURES": "report",
    "headline_metrics": "report",
    "render_report": "report",
    "evaluate": "run",
    "load_run": "run",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
