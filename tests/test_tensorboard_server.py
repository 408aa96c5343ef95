"""What a real TensorBoard server makes of a log directory of tiny runs, through its HTTP data API.

Three runs under one study directory: latent 2 and 4, and latent 4 again with the very same config.
Each test starts ``tensorboard`` on 127.0.0.1 and asks it what its dashboards would show: the HParams
rows and columns, the custom-scalars layout and its curves, the reconstruction grids kept per epoch.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from latentprobe import config, train
from tests.conftest import tiny_config, write_config
from tests.test_tensorboard import get_json, tensorboard_server

pytestmark = pytest.mark.slow

#: More epochs than the 10 images TensorBoard keeps per tag by default.
EPOCHS = 12
TOLERANCE = 1e-6
SERVER_ERRORS = (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError)


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> dict[str, Any]:
    """The output directory of three tiny runs; two of them share one config."""
    tmp = tmp_path_factory.mktemp("tb-server")
    raw = tiny_config(tmp, model={"latent": [2, 4]}, train={"epochs": EPOCHS})
    path = write_config(tmp, raw)
    summaries = train.run(config.load(path))
    summaries += train.run(config.load(path, ["model.latent=4"]))  # the same config again
    root = Path(raw["output"]["dir"])
    runs = {Path(s["run_dir"]).relative_to(root.resolve()).as_posix(): s for s in summaries}
    assert sorted(runs) == ["tiny/ae-z2-s0", "tiny/ae-z4-s0", "tiny/ae-z4-s0-1"]
    return {"root": root, "runs": runs}


def post_json(port: int, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read().decode("utf-8"))


def poll(server, log_path: Path, ask: Callable[[], Any], done: Callable[[Any], bool], what: str) -> Any:
    """Ask the server until its answer is ``done`` (it loads event files in the background)."""
    deadline, answer = time.monotonic() + 90, None
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"tensorboard exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
        with contextlib.suppress(*SERVER_ERRORS):
            answer = ask()
            if done(answer):
                return answer
        time.sleep(0.5)
    pytest.fail(f"tensorboard never served {what} (last answer: {answer!r}):\n{log_path.read_text()[-3000:]}")


@contextlib.contextmanager
def server_over(logdir: dict[str, Any], tmp_path: Path, *flags: str) -> Iterator[tuple[int, Any, Path]]:
    log_path = tmp_path / "tensorboard.log"
    # The default (fast) loader, as a user's `tensorboard --logdir` runs it.
    with tensorboard_server(logdir["root"], log_path, "--load_fast=auto", *flags) as (port, server):
        yield port, server, log_path


def session_groups(port: int) -> dict[str, Any]:
    body = {"experimentName": "", "allowedStatuses": ["STATUS_UNKNOWN"], "startIndex": 0, "sliceSize": 100}
    return post_json(port, "/data/plugin/hparams/session_groups", body)


def has_metric(group: dict[str, Any], tag: str) -> bool:
    return any(m["name"]["tag"] == tag for m in group.get("metricValues", []))


def test_hparams_rows_are_runs_and_differing_values_come_first(logdir, tmp_path):
    with server_over(logdir, tmp_path) as (port, server, log_path):
        # The test scalars are the last thing a run writes: once every row has one, all is loaded.
        groups = poll(
            server,
            log_path,
            lambda: session_groups(port)["sessionGroups"],
            lambda gs: len(gs) == 3 and all(has_metric(g, "test/probe_accuracy") for g in gs),
            "3 sessions with their test metrics",
        )
        experiment = post_json(
            port, "/data/plugin/hparams/experiment", {"experimentName": "", "hparamsLimit": 1000}
        )

    # One row per run, named by the run's tb directory; the two runs with one config are not merged.
    names = {f"{run}/tb" for run in logdir["runs"]}
    assert {g["name"] for g in groups} == names
    assert all([s["name"] for s in g["sessions"]] == [g["name"]] for g in groups)
    for group in groups:
        summary = logdir["runs"][group["name"].removesuffix("/tb")]
        assert group["hparams"]["model.latent"] == summary["config"]["model"]["latent"]
        metrics = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
        for split in ("test", "val"):
            expected = summary["metrics"][split]
            for name in ("probe_accuracy", "reconstruction_loss"):
                assert metrics[f"{split}/{name}"] == pytest.approx(expected[name], abs=TOLERANCE)

    # TensorBoard's HParams tab shows the hyperparameters that differ first: here only the latent.
    infos = experiment["hparamInfos"]
    assert [h["name"] for h in infos if h.get("differs")] == ["model.latent"]
    assert infos[0]["name"] == "model.latent"
    assert {"seed", "model.kind", "name", "train.epochs"} <= {h["name"] for h in infos}
    metric_tags = {(m["name"]["group"], m["name"]["tag"]) for m in experiment["metricInfos"]}
    for split in ("test", "val"):
        assert {("", f"{split}/probe_accuracy"), ("", f"{split}/reconstruction_loss")} <= metric_tags


def test_custom_scalars_layout_and_its_curves(logdir, tmp_path):
    run = "tiny/ae-z2-s0/tb"
    summary = logdir["runs"]["tiny/ae-z2-s0"]
    with server_over(logdir, tmp_path) as (port, server, log_path):
        layout = poll(
            server,
            log_path,
            lambda: get_json(port, "/data/plugin/custom_scalars/layout"),
            lambda answer: bool(answer.get("category")),
            "a custom-scalars layout",
        )
        (category,) = layout["category"]  # the three runs' layouts merge into one category
        charts = {chart["title"]: chart["multiline"]["tag"] for chart in category["chart"]}
        assert list(charts) == ["probe accuracy", "reconstruction loss"]
        for title, name in (
            ("probe accuracy", "probe_accuracy"),
            ("reconstruction loss", "reconstruction_loss"),
        ):
            (pattern,) = charts[title]
            answer = poll(
                server,
                log_path,
                lambda pattern=pattern: get_json(
                    port, "/data/plugin/custom_scalars/scalars", run=run, tag=pattern
                ),
                lambda a, name=name: len(a["tag_to_events"].get(f"train/{name}", [])) == EPOCHS,
                f"{run}'s train/{name} curve",
            )
            assert answer["regex_valid"]
            events = answer["tag_to_events"]
            assert set(events) == {f"train/{name}", f"val/{name}"}
            # val starts at step 0 (the untrained model), train after the first epoch.
            assert [int(step) for _, step, _ in events[f"val/{name}"]] == list(range(0, EPOCHS + 1))
            assert [int(step) for _, step, _ in events[f"train/{name}"]] == list(range(1, EPOCHS + 1))
            expected = [summary["initial"]["val"][name], *summary["history"][f"val/{name}"]]
            values = [value for _, _, value in events[f"val/{name}"]]
            np.testing.assert_allclose(values, expected, rtol=0, atol=TOLERANCE)


def reconstruction_steps(port: int, run: str) -> list[int]:
    images = get_json(port, "/data/plugin/images/images", run=run, tag="test/reconstructions", sample="0")
    return [image["step"] for image in images]


@pytest.mark.parametrize(
    ("flags", "kept"),
    [
        ((), 10),  # TensorBoard's default keeps 10 of the 12 grids
        (("--samples_per_plugin", "images=1000"), EPOCHS),  # what the README tells: every epoch
    ],
)
def test_samples_per_plugin_keeps_every_reconstruction_grid(logdir, tmp_path, flags, kept):
    run = "tiny/ae-z2-s0/tb"
    with server_over(logdir, tmp_path, *flags) as (port, server, log_path):
        # The grids are written in step order: once the last epoch's is there, all are loaded.
        steps = poll(
            server,
            log_path,
            lambda: reconstruction_steps(port, run),
            lambda s: s[-1:] == [EPOCHS],
            "the grids",
        )
    assert len(steps) == kept and steps[-1] == EPOCHS, steps
    if kept == EPOCHS:
        assert steps == list(range(1, EPOCHS + 1))
