"""MLflow: with ``output.mlflow: URI``, every run is also logged to an MLflow tracking store or server.

The run directory stays the source of truth; MLflow gets a copy, read from it once the run has ended:
the config as flat params (``model.kind``, ``train.learning_rate``), every per-epoch metric of
``history`` (``train/...``, ``val/...``, step = epoch), the test metrics, ``summary.json`` and the plots
as artifacts, and tags (``latentprobe.run_dir``, ``latentprobe.status``). ``eval`` adds its headline
metrics (``eval/<probe>:<budget>``: MLflow allows no ``@``) and ``eval.json`` to the same MLflow run. A
study or a search is one MLflow experiment, named like its directory (``name``).

A store that cannot be reached costs a warning line, never a run: every call here catches what MLflow
raises. MLflow is an optional extra (``pip install 'latentprobe[mlflow]'``), imported only here.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

from latentprobe import rundir
from latentprobe.comparison.groups import flatten_config

MISSING = "output.mlflow: logging to MLflow needs MLflow: pip install 'latentprobe[mlflow]'"
RUN_DIR_TAG = "latentprobe.run_dir"
STATUS_TAG = "latentprobe.status"
#: A server that is down answers within seconds, not after MLflow's minutes of retries.
_HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def warn(text: str) -> None:
    sys.stderr.write(f"warning: {text}\n")
    sys.stderr.flush()


def _client(uri: str) -> Any:
    for name, value in _HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    try:
        import mlflow
    except ImportError:
        raise RuntimeError(MISSING) from None
    import logging

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return mlflow.MlflowClient(tracking_uri=uri)


def _artifact_root(uri: str) -> str | None:
    """Artifacts of a SQLite or file store go next to it (a server keeps its own)."""
    if uri.startswith("sqlite:///"):
        return str(Path(uri[len("sqlite:///") :]).resolve().parent / "mlartifacts")
    return None


def _experiment(client: Any, uri: str, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name, artifact_location=_artifact_root(uri))
    except Exception:  # noqa: BLE001 - another worker created it first
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def prepare(uri: str | None, name: str) -> None:
    """In the driver, before the runs: create the store's tables and the experiment once (workers that
    all did so at once would race); a warning if the store cannot be reached."""
    if not uri:
        return
    try:
        _experiment(_client(uri), uri, name)
    except Exception as exc:  # noqa: BLE001 - tracking never stops a study
        warn(f"mlflow: {uri}: {_first_line(exc)}; the runs are not logged there")


def log_run(uri: str | None, run_dir: Path) -> str | None:
    """Log an ended run (its summary.json) to MLflow; the MLflow run id, or None (with a warning)."""
    if not uri:
        return None
    run_dir = Path(run_dir)
    try:
        summary = rundir.read_json(run_dir / rundir.SUMMARY)
        client = _client(uri)
        experiment = _experiment(client, uri, summary["config"].get("name", "run"))
        run_id = _run_id(client, experiment, run_dir)
        _log_summary(client, run_id, summary)
        for path in [run_dir / rundir.SUMMARY, *sorted((run_dir / rundir.PLOTS).glob("*.png"))]:
            if path.is_file():
                client.log_artifact(run_id, str(path))
        status = summary.get("status")
        client.set_terminated(run_id, "FINISHED" if status == rundir.STATUS_COMPLETED else "KILLED")
        return run_id
    except Exception as exc:  # noqa: BLE001 - tracking never costs a run
        warn(f"mlflow: {uri}: cannot log {run_dir}: {_first_line(exc)}")
        return None


def log_eval(uri: str | None, run_dir: Path, report: dict[str, Any]) -> None:
    """Add eval's headline metrics and eval.json to the run's MLflow run (a warning when it cannot)."""
    if not uri:
        return
    run_dir = Path(run_dir)
    try:
        from mlflow.entities import Metric

        client = _client(uri)
        summary = rundir.read_json(run_dir / rundir.SUMMARY)
        experiment = _experiment(client, uri, summary["config"].get("name", "run"))
        run_id = _run_id(client, experiment, run_dir)
        stamp = _now()
        metrics = [
            Metric(metric_name(f"eval/{name}"), float(value), stamp, 0)
            for name, value in _headline(report).items()
            if _finite(value)
        ]
        if metrics:
            client.log_batch(run_id, metrics=metrics)
        if (run_dir / rundir.EVAL).is_file():
            client.log_artifact(run_id, str(run_dir / rundir.EVAL))
    except Exception as exc:  # noqa: BLE001
        warn(f"mlflow: {uri}: cannot log the eval of {run_dir}: {_first_line(exc)}")


def _run_id(client: Any, experiment: str, run_dir: Path) -> str:
    """The MLflow run of this run directory (a resumed run logs into the one it had), or a new one."""
    key = str(run_dir.resolve())
    found = client.search_runs([experiment], filter_string=f"tags.`{RUN_DIR_TAG}` = '{key}'", max_results=1)
    if found:
        return found[0].info.run_id
    run = client.create_run(experiment, run_name=run_dir.name, tags={RUN_DIR_TAG: key})
    return run.info.run_id


def _log_summary(client: Any, run_id: str, summary: dict[str, Any]) -> None:
    from mlflow.entities import Metric, Param, RunTag

    params = [Param(k, _param(v)) for k, v in flatten_config(summary.get("config") or {}).items()]
    stamp = _now()
    metrics = []
    history = summary.get("history") or {}
    epochs = history.get("epoch") or []
    for key, values in history.items():
        if key in ("epoch", "phase"):
            continue
        for epoch, value in zip(epochs, values, strict=False):
            if _finite(value):
                metrics.append(Metric(key, float(value), stamp, int(epoch)))
    last = int(epochs[-1]) if epochs else 0
    for name, value in ((summary.get("metrics") or {}).get("test") or {}).items():
        if _finite(value):
            metrics.append(Metric(f"test/{name}", float(value), stamp, last))
    tags = [RunTag(STATUS_TAG, str(summary.get("status")))]
    node = (summary.get("environment") or {}).get("node") or {}
    if node.get("host"):
        tags.append(RunTag("latentprobe.host", str(node["host"])))
    # MLflow takes at most 1000 metrics and 100 params per batch.
    for start in range(0, max(len(params), 1), 100):
        client.log_batch(run_id, params=params[start : start + 100], tags=tags if start == 0 else [])
    for start in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[start : start + 1000])


def _headline(report: dict[str, Any]) -> dict[str, Any]:
    """eval.json's headline numbers, as compare shows them (``linear@100``, ``active_units``, ...)."""
    from latentprobe.evaluation.report import headline_metrics

    return headline_metrics(report)


def metric_name(name: str) -> str:
    """A metric's name in MLflow, which allows no ``@``: ``eval/linear@100`` -> ``eval/linear:100``."""
    return name.replace("@", ":")


def _param(value: Any) -> str:
    text = "null" if value is None else str(list(value) if isinstance(value, tuple) else value)
    return text[:500]  # MLflow's limit on a param's value (6000 in recent releases; 500 in old ones)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _now() -> int:
    import time

    return int(time.time() * 1000)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
