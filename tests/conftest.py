"""Tiny real fixtures: the bundled digits, a few epochs, small networks. No mocks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"


def mnist_path() -> Path | None:
    """MNIST from $LATENTPROBE_DATA_DIR or ../shared/data, or None (tests needing it skip)."""
    candidates = []
    if os.environ.get("LATENTPROBE_DATA_DIR"):
        candidates.append(Path(os.environ["LATENTPROBE_DATA_DIR"]) / "mnist.npz")
    candidates.append(REPO.parent / "shared" / "data" / "mnist.npz")
    return next((p for p in candidates if p.exists()), None)


def tiny_config(tmp_path: Path, **sections) -> dict:
    """A digits config that trains in seconds; ``sections`` update the top-level blocks."""
    raw = {
        "name": "tiny",
        "seed": 0,
        "data": {"name": "digits", "labels": "all", "validation": 0.1},
        "model": {"kind": "ae", "latent": 4, "hidden": [32], "reconstruction_loss": "bce"},
        "probe": {"strategy": "alternating", "every": "step", "head": "linear", "learning_rate": 0.01},
        "train": {"epochs": 2, "batch_size": 64, "learning_rate": 0.003},
        "output": {"dir": str(tmp_path / "runs")},
    }
    for key, value in sections.items():
        if isinstance(value, dict):
            raw.setdefault(key, {}).update(value)
        else:
            raw[key] = value
    return raw


def write_config(tmp_path: Path, raw: dict, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture
def tiny(tmp_path):
    """(path, raw) of a tiny digits config written into tmp_path."""
    raw = tiny_config(tmp_path)
    return write_config(tmp_path, raw), raw
