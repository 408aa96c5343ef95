"""A real two-node Ray cluster on this machine (both nodes on 127.0.0.1): a 4-run study and a 4-trial
search through ``--executor ray --address``; every run completes and records the node it trained on, and
both nodes train runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from latentprobe.cli import app

pytestmark = pytest.mark.slow

CONFIG = """\
name: NAME
seed: 0
data: {name: digits, limit: 300}
model: {kind: ae, latent: 2, hidden: [16]}
train: {epochs: 2, batch_size: 64, device: cpu, jit_compile: false}
output: {dir: OUT}
"""


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    two = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False},
    )
    two.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    two.wait_for_nodes()
    try:
        yield two
    finally:
        two.shutdown()


def node_ids(cluster) -> set[str]:
    return {node.node_id for node in cluster.list_all_nodes()}


def train(path: Path, cluster) -> str:
    import ray

    result = CliRunner().invoke(
        app, ["train", str(path), "--executor", "ray", "--address", cluster.address, "--threads", "1"]
    )
    ray.shutdown()  # the executor disconnects itself; make sure the next test connects afresh
    assert result.exit_code == 0, result.output
    return result.output


def nodes_of(run_dirs: list[Path]) -> list[dict]:
    found = []
    for run_dir in run_dirs:
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["status"] == "completed", summary.get("reason")
        found.append(summary["environment"]["node"])
    return found


def test_a_study_trains_on_both_nodes(tmp_path, cluster):
    path = tmp_path / "study.yaml"
    text = CONFIG.replace("NAME", "cluster").replace("OUT", str(tmp_path / "runs"))
    path.write_text(text.replace("seed: 0", "seed: [0, 1, 2, 3]"))
    train(path, cluster)
    study_dir = tmp_path / "runs" / "cluster"
    study = json.loads((study_dir / "study.json").read_text())
    assert [r["status"] for r in study["runs"]] == ["completed"] * 4
    nodes = nodes_of([study_dir / r["dir"] for r in study["runs"]])
    assert {n["ip"] for n in nodes} == {"127.0.0.1"}
    assert {n["ray_node_id"] for n in nodes} == node_ids(cluster)


def test_a_search_trains_on_both_nodes(tmp_path, cluster):
    path = tmp_path / "search.yaml"
    text = CONFIG.replace("NAME", "cluster-search").replace("OUT", str(tmp_path / "runs"))
    path.write_text(
        text
        + "search:\n  trials: 4\n  sampler: random\n  pruner: none\n  space:\n"
        + "    train.learning_rate: {float: [1.0e-3, 1.0e-2], log: true}\n"
    )
    train(path, cluster)
    study_dir = tmp_path / "runs" / "cluster-search"
    record = json.loads((study_dir / "search.json").read_text())
    assert [t["status"] for t in record["trials"]] == ["completed"] * 4
    nodes = nodes_of([study_dir / t["dir"] for t in record["trials"]])
    assert {n["ray_node_id"] for n in nodes} == node_ids(cluster)


def test_a_local_ray_binds_to_the_loopback_address():
    pytest.importorskip("ray")
    import ray

    from latentprobe.executors.ray import RayExecutor

    with RayExecutor(threads=1):
        assert [node["NodeManagerAddress"] for node in ray.nodes()] == ["127.0.0.1"]
        assert ray.util.get_node_ip_address() == "127.0.0.1"
