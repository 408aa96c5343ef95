"""The README as a stranger follows it: its encoder snippet runs, its commands parse and do not collide."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from latentprobe import grid, rundir, search
from latentprobe.cli import app

from .conftest import REPO, tiny_config, write_config

README = REPO / "README.md"
SNIPPET_MARKER = "<!-- readme-test: use-a-trained-encoder -->"


def readme() -> str:
    return README.read_text(encoding="utf-8")


def marked_python_block(text: str, marker: str) -> str:
    """The ```python block right after ``marker``; fails the test when there is not exactly one."""
    blocks = re.findall(re.escape(marker) + r"\n```python\n(.*?)```", text, re.S)
    assert len(blocks) == 1, f"README.md: expected one python block after {marker}, found {len(blocks)}"
    return blocks[0]


def train_commands(text: str) -> list[list[str]]:
    """Every `latentprobe train CONFIG ...` line of the README's bash blocks, as argv after `train`."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("latentprobe train configs/"):
                commands.append(shlex.split(line)[2:])
    return commands


def study_of(argv: list[str]) -> tuple[Path, tuple]:
    """(study directory, what it trains) for a README train command: its config, --set items and --seeds.

    Options that only choose where runs execute (--jobs, --threads, --executor, --address) are left out:
    the same study run another way is the same study.
    """
    config, overrides, seeds, rest = argv[0], [], None, argv[1:]
    while rest:
        option, value, rest = rest[0], rest[1], rest[2:]
        if option == "--set":
            overrides.append(value)
        elif option == "--seeds":
            seeds = int(value)
        else:
            assert option in ("--jobs", "--threads", "--executor", "--address"), f"unexpected {option}"
    if search.has_search(REPO / config, overrides):  # a search: its trials share one directory
        cfg = search.load(REPO / config, overrides, seeds).example
    else:
        study = grid.load(REPO / config, overrides, seeds)  # raises the CLI's error for a bad command
        cfg = study.runs[0].config
    return Path(cfg.output.dir) / cfg.name, (config, tuple(sorted(overrides)), seeds)


@pytest.fixture(scope="module")
def quickstart_like_run(tmp_path_factory) -> Path:
    """A tiny run at the path the snippet names: runs/quickstart/ae-z8-s0 under a fresh directory."""
    tmp = tmp_path_factory.mktemp("readme")
    raw = tiny_config(tmp, name="quickstart", model={"latent": 8}, train={"epochs": 3})
    raw["output"]["dir"] = "runs"
    path = write_config(tmp, raw)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp)  # output.dir "runs" is relative, as in the README
        result = CliRunner().invoke(app, ["train", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    run_dir = tmp / "runs" / "quickstart" / "ae-z8-s0"
    assert (run_dir / rundir.ENCODER).is_file()
    return tmp


def test_use_a_trained_encoder_snippet_runs_and_measures_the_codes(quickstart_like_run, monkeypatch):
    code = marked_python_block(readme(), SNIPPET_MARKER)
    monkeypatch.chdir(quickstart_like_run)
    namespace: dict = {"__name__": "readme_snippet"}
    exec(compile(code, "README.md (Use a trained encoder)", "exec"), namespace)

    assert namespace["codes_train"].shape == (1437, 8)
    assert namespace["codes_test"].shape == (360, 8)
    # Chance is 0.1; a linear probe on the 8-d codes of even a briefly trained encoder is far above it.
    assert namespace["accuracy"] > 0.5
    # The snippet's scaling and split are latentprobe's own: the saved probe scores what train measured
    # (within one of the 360 test images, for a tie the two computations could break differently).
    summary = rundir.read_json(quickstart_like_run / "runs" / "quickstart" / "ae-z8-s0" / rundir.SUMMARY)
    measured = summary["metrics"]["test"]["probe_accuracy"]
    assert abs(namespace["online_accuracy"] - measured) <= 1 / 360 + 1e-9
    assert np.isfinite(namespace["codes_test"]).all()


def test_readme_train_commands_parse_and_never_share_a_study_directory():
    commands = train_commands(readme())
    assert len(commands) >= 10, "README.md: expected its train commands in ```bash blocks"
    studies: dict[Path, tuple] = {}
    for argv in commands:
        directory, what = study_of(argv)
        assert studies.setdefault(directory, what) == what, (
            f"README.md: two different train commands write the study {directory}: "
            f"{studies[directory]} and {what}"
        )


def test_readme_writes_plots_under_runs_only():
    # File names only; the placeholder of the command reference (--plot PNG) is no path.
    plots = re.findall(r"--plot\s+`?([\w./-]+\.png)", readme())
    assert plots, "README.md: expected --plot examples"
    for path in plots:
        assert path.startswith("runs/"), f"README.md: --plot {path} writes outside runs/"


def test_readme_speaks_to_a_stranger():
    text = readme()
    for private in ("../shared", "this 2-core machine", "this machine"):
        assert private not in text, f"README.md: private wording {private!r}"
    assert not re.search(r"\b[Ss]eed 00\d", text), "README.md: name a reference experiment by its source"
    if "[^cpu]" in text:
        assert "\n[^cpu]: " in text, "README.md: the [^cpu] footnote is used but not defined"


DATA_MARKER = "<!-- readme-test: bring-your-own-data -->"
DATA_CONFIG_MARKER = "<!-- readme-test: bring-your-own-data-config -->"


def test_bring_your_own_data_example_validates_and_trains(tmp_path, monkeypatch):
    """The worked example as a stranger follows it: make the folder, write the config, validate, train."""
    text = readme()
    code = marked_python_block(text, DATA_MARKER)
    configs = re.findall(re.escape(DATA_CONFIG_MARKER) + r"\n```yaml\n(.*?)```", text, re.S)
    assert len(configs) == 1, f"README.md: expected one yaml block after {DATA_CONFIG_MARKER}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LATENTPROBE_CACHE_DIR", str(tmp_path / "cache"))
    exec(compile(code, "README.md (Bring your own data)", "exec"), {"__name__": "readme_snippet"})
    Path("my_images.yaml").write_text(configs[0], encoding="utf-8")
    # Short: the README's epochs are the user's choice; the data and what summary.json says are the point.
    short = ["--set", "train.epochs=1", "--set", "output.dir=runs"]

    runner = CliRunner()
    validated = runner.invoke(app, ["validate", "my_images.yaml"])
    assert validated.exit_code == 0 and validated.stdout.strip() in text, validated.output
    trained = runner.invoke(app, ["train", "my_images.yaml", *short], catch_exceptions=False)
    assert trained.exit_code == 0, trained.output

    (summary,) = Path("runs").rglob(rundir.SUMMARY)
    described = rundir.read_json(summary)["data"]
    shown = re.search(r'`"data": (\{.*?), \.\.\.\}`', text, re.S).group(1).replace("\n", " ") + "}"
    for key, value in json.loads(shown).items():
        assert described[key] == value, f"README.md: summary.json's data.{key} is {described[key]}"


def test_your_own_encoder_snippet_probes_an_encoder_in_memory(tmp_path, monkeypatch, capsys):
    code = marked_python_block(readme(), "<!-- readme-test: your-own-encoder -->")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme_snippet"}
    exec(compile(code, "README.md (Your own encoder)", "exec"), namespace)

    report = namespace["report"]
    flat = report["metrics"]["eval"]
    # Trained for a few seconds, the 4-d code is far above chance and the random encoder's.
    assert flat["linear@all"] > 0.5 and flat["linear@all"] > flat["random_encoder/linear@all"] + 0.1
    assert report["budgets"]["labels"]["10"] == 100  # 10 labels per class, from the train split
    assert "probe@labels/class" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []  # nothing written
