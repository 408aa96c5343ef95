"""compare of a search directory: its trials best first on the search's objective, and which was best.

Completed trials are ranked by the objective (from each run's summary.json, the truth), then the pruned
ones by the last value they reported, then the rest. The test metrics are shown beside them and never used
to rank. Imports no TensorFlow and no Optuna.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from latentprobe import rundir
from latentprobe.errors import RunDirError
from latentprobe.search import PRUNED, RECORD
from latentprobe.text_table import align_columns


def is_search_dir(path: Path) -> bool:
    return (Path(path) / RECORD).is_file()


def ranking(study_dir: Path) -> dict[str, Any]:
    """The search's trials best first on the objective (test metrics shown, never used to rank).

    Completed trials come first, ranked; then pruned ones (by their last reported objective), then the rest.
    """
    study_dir = Path(study_dir)
    record = rundir.read_json(study_dir / RECORD)
    spec = record["search"]
    objective = spec["objective"]
    metric = objective.split("/", 1)[1]
    sign = -1.0 if spec["direction"] == "maximize" else 1.0
    rows = []
    for entry in record.get("trials", []):
        summary = _read_summary(study_dir / entry["dir"])
        status = summary.get("status", entry.get("status"))
        value = None
        test: dict[str, Any] = {}
        history = summary.get("history") or {}
        if status == "completed":
            value = _number((summary.get("metrics", {}).get("val") or {}).get(metric))
            test = summary.get("metrics", {}).get("test") or {}
        elif status == PRUNED:
            finite = [v for v in history.get(objective) or [] if _number(v) is not None]
            value = float(finite[-1]) if finite else None
        epochs = history.get("epoch") or []
        rows.append(
            {
                "trial": entry["dir"],
                "status": status,
                "epoch": summary.get("epoch") if status != "completed" else (epochs[-1] if epochs else None),
                "values": entry.get("values", {}),
                objective: value,
                "test": test,
            }
        )
    order = {"completed": 0, PRUNED: 1}

    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        value = row[objective]
        return (order.get(row["status"], 2), value is None, sign * value if value is not None else 0.0)

    rows.sort(key=key)
    best = rows[0]["trial"] if rows and rows[0]["status"] == "completed" else None
    return {"search": spec, "objective": objective, "best": best, "trials": rows}


def render_ranking(study_dir: Path, format_: str = "table") -> str:
    """compare's view of a search: a row per trial, best first, then which trial was best."""
    table = ranking(study_dir)
    if format_ == "json":
        return json.dumps(table, indent=2) + "\n"
    objective = table["objective"]
    keys = list(table["search"]["space"])
    header = ["trial", "status", "epoch", *keys, objective, "test/probe_accuracy"]
    rows = [header]
    for row in table["trials"]:
        value = row[objective]
        test = row["test"].get("probe_accuracy")
        rows.append(
            [
                row["trial"],
                row["status"],
                "" if row["epoch"] is None else str(row["epoch"]),
                *(_short(row["values"][k]) if k in row["values"] else "-" for k in keys),
                "" if value is None else f"{value:.4f}",
                "" if test is None else f"{test:.4f}",
            ]
        )
    if format_ == "markdown":
        lines = ["| " + " | ".join(r) + " |" for r in rows]
        lines.insert(1, "|" + "---|" * len(header))
    else:
        lines = align_columns([[rows[0]], rows[1:]])
    if table["best"] is not None:
        best = table["trials"][0]
        test = best["test"].get("probe_accuracy")
        shown = (
            f"; its test/probe_accuracy {test:.4f} (shown, not used to choose)" if test is not None else ""
        )
        lines.append("")
        direction = table["search"]["direction"]
        lines.append(f"best on {objective} ({direction}): {best['trial']} {best[objective]:.4f}{shown}")
    return "\n".join(lines) + "\n"


def _read_summary(run_dir: Path) -> dict[str, Any]:
    try:
        return rundir.read_json(run_dir / rundir.SUMMARY)
    except RunDirError:
        return {}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
