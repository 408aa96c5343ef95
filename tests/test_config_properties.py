"""Property test: no config, however broken, gets anything but a one-line ConfigError (never a traceback).

Hypothesis generates YAML text, random mappings (known and unknown keys, any types, any nesting), valid
configs with one value replaced, ``--set`` overrides and files of random bytes; ``config.load_text`` and
``config.load`` must return a config or raise ``ConfigError``, and ``latentprobe validate`` must exit 0
or 2 with one line.
"""

from __future__ import annotations

import dataclasses

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from latentprobe import config
from latentprobe.cli import app
from latentprobe.errors import ConfigError, ConfigErrors

SECTIONS = {
    "data": config.DataConfig,
    "model": config.ModelConfig,
    "probe": config.ProbeConfig,
    "train": config.TrainConfig,
    "output": config.OutputConfig,
}
KNOWN_KEYS = sorted(
    {f.name for cls in (config.RunConfig, *SECTIONS.values()) for f in dataclasses.fields(cls)} | {"ae"}
)
CHOICES = [
    "all",
    "ae",
    "dense",
    "digits",
    "npz",
    "frozen",
    "alternating",
    "step",
    "epoch",
    "mlp",
    "adam",
    "relu",
]

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=10),
    st.sampled_from(CHOICES),
)
keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=8))
values = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=12,
)

VALID = {
    "name": "p",
    "seed": 0,
    "data": {"name": "digits", "labels": 100, "validation": 0.1},
    "model": {"kind": "ae", "latent": 4, "hidden": [32]},
    "probe": {"strategy": "alternating", "head": "linear"},
    "train": {"epochs": 2, "batch_size": 64},
    "output": {"dir": "runs"},
}


@st.composite
def mutated_valid(draw) -> dict:
    """A valid config with one to three values replaced, deleted or added (in a section or at the top)."""
    raw = {k: dict(v) if isinstance(v, dict) else v for k, v in VALID.items()}
    for _ in range(draw(st.integers(1, 3))):
        section = draw(st.sampled_from([*SECTIONS, None]))
        node = raw if section is None else raw.setdefault(section, {})
        if not isinstance(node, dict):
            continue
        if section is None:
            key = draw(st.sampled_from(["name", "seed", *SECTIONS]))
        else:
            key = draw(st.sampled_from([f.name for f in dataclasses.fields(SECTIONS[section])] + ["extra"]))
        if draw(st.booleans()) and key in node:
            del node[key]
        else:
            node[key] = draw(values)
    return raw


yaml_text = st.one_of(
    st.text(alphabet=": -[]{}#&*!|>'\"%@`,\n\t abz019.=", max_size=80),
    st.builds(lambda raw: yaml.safe_dump(raw, allow_unicode=True), st.dictionaries(keys, values, max_size=6)),
    st.builds(lambda raw: yaml.safe_dump(raw, allow_unicode=True), mutated_valid()),
)
overrides = st.lists(
    st.builds(
        lambda key, text: f"{key}={text}",
        st.sampled_from(["train.epochs", "model.latent", "seed", "data", "data.labels.x", "nope", "a..b"]),
        st.text(alphabet="[]{},:- 01a.e", max_size=8),
    )
    | st.text(max_size=12),
    max_size=2,
)


def check_load(text: str, sets: list[str]) -> None:
    try:
        cfg = config.load_text(text, sets, source="gen.yaml")
    except ConfigError as exc:
        # One line per mistake (several when the file holds several), each naming where it came from.
        lines = str(exc).split("\n")
        assert len(lines) == len(getattr(exc, "errors", [exc])), lines
        for line in lines:
            assert line.startswith(("gen.yaml", "--set")), line
        return
    assert isinstance(cfg, config.RunConfig)
    assert config.load_text(config.dump(cfg)) == cfg  # whatever loads, round-trips


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=yaml_text, sets=overrides)
def test_load_never_raises_anything_but_config_error(text, sets):
    check_load(text, sets)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=mutated_valid())
def test_mutated_valid_configs_load_or_fail_cleanly(raw):
    check_load(yaml.safe_dump(raw, allow_unicode=True), [])


# Random bytes, and YAML text broken by bytes no UTF-8 text holds or written in another encoding.
file_bytes = st.one_of(
    st.binary(max_size=60),
    st.builds(lambda text, junk: text.encode() + junk, yaml_text, st.binary(min_size=1, max_size=4)),
    st.builds(lambda raw: yaml.safe_dump(raw).encode("utf-16"), mutated_valid()),
    st.builds(lambda text: text.encode("latin-1", "replace"), st.text(max_size=30)),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=file_bytes)
def test_a_file_of_any_bytes_loads_or_fails_cleanly(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("bytes") / "gen.yaml"
    path.write_bytes(data)
    try:
        cfg = config.load(path)
    except ConfigError as exc:
        for line in str(exc).split("\n"):  # one line per mistake
            assert line.startswith(str(path)), line
        return
    assert isinstance(cfg, config.RunConfig)


runner = CliRunner()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=yaml_text)
def test_validate_exits_0_or_2_with_one_line_per_mistake(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("gen") / "gen.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code in (0, 2), (text, result.output, result.exception)
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        assert 1 <= len(lines) <= ConfigErrors.LIMIT + 1, result.stderr
        assert all(line.startswith(f"error: {path}") for line in lines), result.stderr
