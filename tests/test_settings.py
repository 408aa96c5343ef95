"""The config's TF-free schema kept in step with Keras and the model registry, and kept TF-free.

``latentprobe.settings`` lists model kinds, networks, activations and optimizers as plain data so that
checking a config imports no TensorFlow. These tests fail the moment a list drifts from what Keras
accepts or from what the registry holds, and the moment checking a config pulls TensorFlow in.
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import subprocess
import sys
from typing import Any

import keras
import pytest

from latentprobe import models, settings
from latentprobe.models import networks

from .conftest import REPO


def test_variant_settings_name_every_registered_kind_and_its_settings_class():
    assert set(settings.VARIANT_SETTINGS) == set(models.MODELS)
    for kind, cls in models.MODELS.items():
        assert cls.Settings is settings.VARIANT_SETTINGS[kind], kind


def test_networks_are_the_registered_network_families():
    assert set(settings.NETWORKS) == set(networks.NETWORKS)


def _optimizer_accepted(name: str) -> bool:
    # The way the trainer builds an optimizer from the config (latentprobe.strategies).
    try:
        optimizer = keras.optimizers.get({"class_name": name, "config": {"learning_rate": 1e-3}})
    except (ValueError, TypeError, KeyError):
        return False
    # "optimizer" builds the abstract base class, which has no update rule to train with.
    return (
        isinstance(optimizer, keras.optimizers.Optimizer)
        and type(optimizer) is not keras.optimizers.Optimizer
    )


def _keras_optimizer_names() -> set[str]:
    """Every optimizer name Keras knows of: its public classes and the registry ``get`` reads."""
    public = {
        name.lower()
        for name, obj in vars(keras.optimizers).items()
        if isinstance(obj, type) and issubclass(obj, keras.optimizers.Optimizer)
    }
    registry = getattr(sys.modules.get("keras.src.optimizers"), "ALL_OBJECTS_DICT", {})
    return public | {name.lower() for name in registry}


def test_every_listed_optimizer_is_one_keras_builds_in_any_case():
    for name in settings.OPTIMIZERS:
        assert name == name.lower()
        assert _optimizer_accepted(name), name
        assert _optimizer_accepted(name.upper()), name  # the config accepts any case


def test_every_optimizer_keras_builds_from_a_name_is_listed():
    accepted = {name for name in _keras_optimizer_names() if _optimizer_accepted(name)}
    assert {"adam", "sgd", "ftrl", "muon"} <= accepted  # the search itself finds optimizers
    assert accepted == set(settings.OPTIMIZERS)


def _optimizer_signature(name: str) -> dict[str, Any]:
    """Keras's own constructor arguments of the optimizer ``name`` and their defaults."""
    cls = type(keras.optimizers.get(name))
    parameters = inspect.signature(cls.__init__).parameters
    return {
        arg: p.default
        for arg, p in parameters.items()
        if arg not in ("self", "learning_rate", "name") and p.kind is not p.VAR_KEYWORD
    }


def test_optimizer_arguments_are_keras_own_for_every_optimizer():
    assert set(settings.OPTIMIZER_ARGUMENTS) == set(settings.OPTIMIZERS)
    for name, arguments in settings.OPTIMIZER_ARGUMENTS.items():
        assert set(arguments) == set(_optimizer_signature(name)), name
        assert len(set(arguments)) == len(arguments), name


def test_optimizer_argument_kinds_match_keras_defaults():
    flags, counts = set(settings.OPTIMIZER_FLAGS), set(settings.OPTIMIZER_COUNTS)
    seen = set()
    for name in settings.OPTIMIZERS:
        for argument, default in _optimizer_signature(name).items():
            seen.add(argument)
            if isinstance(default, bool):
                assert argument in flags, (name, argument)
            elif isinstance(default, int) and argument in counts:
                pass
            elif isinstance(default, (int, float)):
                assert argument not in flags | counts, (name, argument)
    listed = flags | counts | set(settings.OPTIMIZER_NAME_LISTS) | set(settings.OPTIMIZER_CLIPPING)
    assert listed <= seen


def test_optimizer_arguments_build_the_optimizer_they_name():
    # Every argument the table allows reaches Keras's constructor (a typo in the table would not).
    from latentprobe.schedules import build_optimizer

    optimizer = build_optimizer({"name": "adamw", "weight_decay": 0.25, "global_clipnorm": 2.0}, 0.5)
    assert type(optimizer).__name__ == "AdamW"
    assert optimizer.weight_decay == 0.25 and optimizer.global_clipnorm == 2.0
    assert float(optimizer.learning_rate) == 0.5


@pytest.mark.parametrize(
    ("kind", "block"),
    [
        ("ae", None),
        ("dae", None),
        ("vae", None),
        ("sparse", None),
        ("aae", None),
        ("aae", {"semi_supervised": True}),
        ("supervised", None),
    ],
)
def test_val_metrics_are_what_measure_reports_for_each_kind(kind, block):
    import numpy as np

    from latentprobe import components, config
    from latentprobe.metrics import measure
    from latentprobe.strategies import build_head

    model_raw = {"kind": kind, "latent": 2, "hidden": [8], **({kind: block} if block else {})}
    cfg = config.from_dict({"model": model_raw})
    model = components.build_model(cfg, (8, 8, 1), 10)
    x = np.random.default_rng(0).random((16, 8, 8, 1), dtype=np.float32)
    measured = measure(model, build_head(cfg.probe, 2, 10), x, np.arange(16) % 10)
    expected = settings.val_metrics(kind, cfg.model.settings) + settings.PROBE_METRICS
    assert set(measured) == set(expected)


def _activation_accepted(name: str) -> bool:
    try:
        return callable(keras.activations.get(name))
    except (ValueError, TypeError):
        return False


def test_every_listed_activation_is_one_keras_accepts():
    for name in settings.ACTIVATIONS:
        assert _activation_accepted(name), name


def test_every_activation_keras_accepts_by_name_is_listed():
    registry = getattr(sys.modules.get("keras.src.activations"), "ALL_OBJECTS_DICT", {})
    names = {n for n in dir(keras.activations) if not n.startswith("_")} | set(registry)
    accepted = {n for n in names if _activation_accepted(n)}
    assert {"relu", "tanh", "gelu"} <= accepted
    assert accepted == set(settings.ACTIVATIONS)


def _imports(path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_no_import_cycle_between_config_and_models():
    package = REPO / "latentprobe"
    for path in sorted((package / "models").glob("*.py")):
        assert "latentprobe.config" not in _imports(path), path.name
    for name in ("config.py", "settings.py", "training_controls.py"):
        imported = _imports(package / name)
        assert not any(m.startswith(("latentprobe.models", "keras", "tensorflow")) for m in imported), name


CHECK_EVERY_CONFIG = """
import json, sys
from pathlib import Path
from typer.testing import CliRunner
from latentprobe import grid
from latentprobe.cli import app

from latentprobe import search
paths = sorted(Path("configs").rglob("*.yaml"))
loaded = [search.load(p).spec.trials if search.has_search(p) else len(grid.load(p).runs) for p in paths]
runner = CliRunner()
quickstart = "configs/quickstart.yaml"
results = {
    "validate": runner.invoke(app, ["validate", quickstart]).exit_code,
    "validate --set": runner.invoke(app, ["validate", quickstart, "--set", "train.epochs=x"]).exit_code,
    "train --set": runner.invoke(app, ["train", quickstart, "--set", "model.kind=vea"]).exit_code,
    "validate pretrained": runner.invoke(app, ["validate", quickstart, "--set", "model.kind=pretrained",
        "--set", "model.encoder=no/such/encoder.keras", "--set", "probe.strategy=frozen"]).exit_code,
}
heavy = [m for m in ("tensorflow", "keras", "latentprobe.models") if m in sys.modules]
print(json.dumps({"loaded": loaded, "results": results, "heavy": heavy}))
"""


def test_checking_every_config_imports_no_tensorflow():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", CHECK_EVERY_CONFIG],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(report["loaded"]) == len(list((REPO / "configs").rglob("*.yaml"))) >= 8
    assert report["results"] == {
        "validate": 0,
        "validate --set": 2,
        "train --set": 2,
        "validate pretrained": 2,
    }
    assert report["heavy"] == []


@pytest.mark.parametrize("module", ["latentprobe", "latentprobe.cli", "latentprobe.config"])
def test_importing_the_package_changes_no_environment_variable(module):
    script = (
        "import json, os; before = dict(os.environ); import importlib; "
        f"importlib.import_module({module!r}); "
        "print(json.dumps({k: v for k, v in os.environ.items() if before.get(k) != v}))"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {}
