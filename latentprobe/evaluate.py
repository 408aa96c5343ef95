"""Eval of a saved run: reload its models (no retraining), re-measure the test split, write eval.json.

It never edits summary.json: it only reads the run directory and adds ``eval.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras

from latentprobe import config as config_mod
from latentprobe import data as data_mod
from latentprobe import rundir
from latentprobe.errors import RunDirError
from latentprobe.metrics import chance_accuracy, measure
from latentprobe.models import MODELS

SCHEMA_VERSION = 1


def load_run(run_dir: Path) -> tuple[config_mod.RunConfig, Any, keras.Model, dict[str, Any]]:
    """Read a complete run back: its config, the rebuilt model, the probe head and its summary."""
    run_dir = Path(run_dir)
    rundir.check_complete(run_dir)
    summary = rundir.read_summary(run_dir)
    cfg = config_mod.load(run_dir / rundir.CONFIG)
    encoder = _load_model(run_dir / rundir.ENCODER)
    decoder = _load_model(run_dir / rundir.DECODER)
    head = _load_model(run_dir / rundir.PROBE)
    model = MODELS[cfg.model.kind](encoder, decoder, cfg.model.reconstruction_loss, cfg.model.settings)
    return cfg, model, head, summary


def _load_model(path: Path) -> keras.Model:
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # a truncated or foreign file: say which, not a Keras traceback
        raise RunDirError(f"{path}: cannot load the saved model ({type(exc).__name__}: {exc})") from None


def evaluate(run_dir: Path) -> dict[str, Any]:
    """Measure a saved run on its test split and write ``RUN_DIR/eval.json``.

    Returns:
        The eval report (also written to eval.json).
    """
    run_dir = Path(run_dir)
    cfg, model, head, summary = load_run(run_dir)
    splits = data_mod.load(cfg.data, cfg.seed)
    recorded = summary.get("data", {}).get("sha256")
    if recorded and recorded != splits.sha256:
        raise RunDirError(
            f"{run_dir}: the data differs from the data the run was trained on "
            f"(sha256 {splits.sha256[:12]}... != {recorded[:12]}...)"
        )
    test = measure(model, head, splits.test.x, splits.test.y)
    test["chance_accuracy"] = chance_accuracy(
        splits.train.y[splits.labeled_idx], splits.test.y, splits.num_classes
    )
    reference = summary["metrics"]["test"]
    report = {
        "schema_version": SCHEMA_VERSION,
        "run_dir": str(run_dir.resolve()),
        "metrics": {"test": test},
        "summary_difference": {
            name: abs(value - reference[name]) for name, value in test.items() if name in reference
        },
        "data": {"name": splits.name, "sha256": splits.sha256, "test_size": len(splits.test.y)},
    }
    rundir.write_json(run_dir / rundir.EVAL, report)
    return report
