"""A variant from the user's own code, found by ``model.kind``: an import path ``module:Class`` or an entry
point of the group ``latentprobe.models``. No wrapper script: train, eval, compare, ``--jobs`` workers
and ``train --resume`` each resolve the kind from the config's string.

The plug-in here is a module written into ``tmp_path`` (imported from the current directory, as
``latentprobe`` run there would), and an entry point declared by a ``.dist-info`` beside it.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from latentprobe import config, kinds, rundir, train
from latentprobe.cli import app
from latentprobe.errors import ConfigError
from latentprobe.testing import check_variant

from .conftest import REPO, tiny_config, write_config

PLUGIN = '''
from dataclasses import dataclass, field
from typing import ClassVar

from keras import ops

from latentprobe.models import Autoencoder, Regularizer


@dataclass(frozen=True)
class CodeSettings:
    weight: float = field(default=0.1, metadata={"min": 0})


class CodeL2Autoencoder(Autoencoder):
    """Reconstruction + weight x the code's squared norm, and the input's mean (it receives x)."""

    Settings: ClassVar[type] = CodeSettings
    kind: ClassVar[str] = "codel2"
    logged_terms: ClassVar[tuple[str, ...]] = ("code_loss", "input_mean")

    def regularizers(self, x, codes, training=False):
        return {"code_loss": Regularizer(self.settings.weight, ops.mean(ops.sum(ops.square(codes["z"]), -1)))}

    def logged_statistics(self, x, terms, codes):
        return {"input_mean": ops.mean(x)}


class NotAVariant:
    pass
'''
KIND = "my_variants:CodeL2Autoencoder"


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The plug-in module in tmp_path, the current directory (not on sys.path)."""
    (tmp_path / "my_variants.py").write_text(PLUGIN)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.delitem(sys.modules, "my_variants", raising=False)
    kinds.cache_clear()
    yield tmp_path
    kinds.cache_clear()


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def plugin_config(tmp_path: Path, **sections) -> dict:
    raw = tiny_config(tmp_path, **sections)
    raw["model"].update(kind=KIND, latent=2, hidden=[16], codel2={"weight": 0.5})
    raw["train"]["jit_compile"] = False
    return raw


def test_an_import_path_kind_trains_evaluates_compares_and_resumes(plugin):
    path = write_config(plugin, plugin_config(plugin))
    result = invoke("train", path)
    assert result.exit_code == 0, result.output
    run_dir = Path(result.stdout.split()[0])
    assert run_dir.name == "codel2-z2-s0"  # named by the class's kind, not its import path
    summary = rundir.read_json(run_dir / "summary.json")
    assert summary["config"]["model"]["kind"] == KIND
    assert summary["config"]["model"]["codel2"] == {"weight": 0.5}
    assert {"train/code_loss", "train/input_mean"} <= set(summary["history"])
    assert config.load(run_dir / "config.yaml").model.settings.weight == 0.5

    result = invoke("eval", run_dir, "--no-controls", "--probes", "linear", "--budgets", "all")
    assert result.exit_code == 0, result.output
    report = json.loads((run_dir / "eval.json").read_text())
    assert max(report["summary_difference"].values()) < 1e-4
    result = invoke("compare", run_dir, "--format", "json")
    assert result.exit_code == 0, result.output
    assert KIND in result.stdout

    # Stopped after epoch 1 (as Ctrl-C stops it), then resumed: the uninterrupted run's result.
    stopped = plugin / "stopped"
    stopped.mkdir()

    def stop(line: str) -> None:
        if line.startswith("epoch 1/"):
            raise KeyboardInterrupt

    with contextlib.suppress(KeyboardInterrupt):
        train.run_one(config.load(run_dir / "config.yaml"), stopped, progress=stop)
    result = invoke("train", "--resume", stopped)
    assert result.exit_code == 0, result.output
    resumed = rundir.read_json(stopped / "summary.json")
    assert resumed["resumed_at_epochs"] == [1]
    assert resumed["metrics"] == summary["metrics"] and resumed["history"] == summary["history"]


@pytest.mark.slow
def test_a_plugin_kind_trains_on_worker_processes(plugin):
    raw = plugin_config(plugin, seed=[0, 1])
    raw["grid"] = {"model.kind": ["ae", KIND]}
    result = invoke("train", write_config(plugin, raw), "--jobs", "2")
    assert result.exit_code == 0, result.output
    study = plugin / "runs" / "tiny"
    names = sorted(p.name for p in study.iterdir() if p.is_dir())
    assert names == ["ae-z2-s0", "ae-z2-s1", "codel2-z2-s0", "codel2-z2-s1"]
    for name in names:
        assert rundir.read_json(study / name / "summary.json")["status"] == "completed"


def write_entry_point(directory: Path, name: str, value: str) -> None:
    dist = directory / "my_variants_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-variants-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[latentprobe.models]\n{name} = {value}\n")


def test_an_installed_entry_point_names_a_kind_and_its_block(plugin, monkeypatch):
    write_entry_point(plugin, "codel2", KIND)
    monkeypatch.syspath_prepend(str(plugin))
    kinds.cache_clear()
    assert "codel2" in kinds.names()
    text = "model:\n  kind: codel2\n  codel2:\n    weight: 2\n"
    assert config.load_text(text).model.settings.weight == 2.0
    with pytest.raises(ConfigError) as info:
        config.load_text(text.replace("weight", "wieght"), source="c.yaml")
    assert str(info.value).startswith("c.yaml:4: model.codel2.wieght: unknown key; did you mean")
    # The import path of the same class reads the same block.
    assert config.load_text(text.replace("codel2\n", KIND + "\n", 1)).model.settings.weight == 2.0
    # A typo of an installed kind is suggested like a built-in's.
    with pytest.raises(ConfigError, match=r"unknown value 'codel'; did you mean 'codel2'\?"):
        config.load_text("model:\n  kind: codel\n")


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("no_such_module:Thing", "cannot import module 'no_such_module' of 'no_such_module:Thing'"),
        ("my_variants:Missing", "module 'my_variants' has no 'Missing'"),
        ("my_variants:NotAVariant", "is NotAVariant, not a subclass of latentprobe.models.Autoencoder"),
        ("my_variants:", "expected an import path package.module:ClassName"),
    ],
)
def test_a_bad_import_path_is_one_line_naming_model_kind_exit_2(plugin, kind, problem):
    raw = plugin_config(plugin)
    raw["model"]["kind"] = kind
    raw["model"].pop("codel2")
    path = write_config(plugin, raw)
    line = (
        path.read_text().splitlines().index(f"  kind: '{kind}'" if kind.endswith(":") else f"  kind: {kind}")
    )
    for command in ("validate", "train"):
        result = invoke(command, path)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(f"error: {path}:{line + 1}: model.kind: ")
        assert problem in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (plugin / "runs").exists()


def test_a_grid_over_built_in_and_plugin_kinds_applies_each_block_to_its_runs(plugin):
    from latentprobe import grid

    raw = plugin_config(plugin)
    raw["grid"] = {"model.kind": ["ae", KIND]}
    settings = {run.name: run.config.model.settings for run in grid.expand_grid(raw).runs}
    assert set(settings) == {"ae-z2-s0", "codel2-z2-s0"}
    assert settings["ae-z2-s0"] is None and settings["codel2-z2-s0"].weight == 0.5


def test_checking_a_built_in_config_reads_no_plugin_and_no_tensorflow(tmp_path):
    raw = tiny_config(tmp_path)
    path = write_config(tmp_path, raw)
    code = (
        "import sys; from latentprobe import config; config.load(sys.argv[1]); "
        "assert not {'tensorflow', 'keras', 'latentprobe_contractive'} & set(sys.modules); print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, cwd=REPO)
    assert out.stdout.strip() == "ok", out.stderr


def test_the_readme_variant_keeps_the_loss_convention(monkeypatch):
    text = (REPO / "README.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"<!-- readme-test: your-own-variant -->\n```python\n(.*?)```", text, re.S)
    module = types.ModuleType("readme_variant")  # a module of its own, as the user's file would be
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(block, "README.md", "exec"), module.__dict__)  # noqa: S102 - the README's own code
    variant = module.CodeL2Autoencoder
    check_variant(variant, {"weight": 0.5}, weights={"code_loss": 0.5}, rules=("loss convention",))
    with pytest.raises(AssertionError, match="declares weight 0.5 for 'code_loss', expected 0.1"):
        check_variant(variant, {"weight": 0.5}, weights={"code_loss": 0.1}, rules=("loss convention",))
