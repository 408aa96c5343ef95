"""Reading an eval report: the flat headline numbers ``compare`` shows, and the terminal table."""

from __future__ import annotations

from typing import Any

from latentprobe.text_table import align_columns

#: Feature sets probed: the run's encoder, then the controls (:mod:`.controls`).
FEATURES = ("encoder", "random_encoder", "pca", "pixels")
#: Width of the report's per-class lines (compare's default table width).
WIDTH = 100


def headline_metrics(report: dict[str, Any]) -> dict[str, float]:
    """Flat ``name -> number`` view of a report, as ``compare`` shows it (``eval/<name>``).

    The encoder's probes are ``<probe>@<budget>``; the controls' ``<features>/<probe>@<budget>``.
    """
    flat: dict[str, float] = {}
    for row in report["probes"]:
        prefix = "" if row["features"] == "encoder" else f"{row['features']}/"
        flat[f"{prefix}{row['probe']}@{row['budget']}"] = row["accuracy"]
    for name, scores in report["clustering"].items():
        prefix = "" if name == "encoder" else f"{name}/"
        for metric, value in scores.items():
            flat[f"{prefix}{metric}"] = value
    gap = report.get("online_offline")  # a run's; the in-memory latentprobe.probe has no online probe
    if gap is not None:
        flat["offline_linear_accuracy"] = gap["offline_linear_accuracy"]
        flat["online_offline_gap"] = gap["gap"]
    flat["active_units"] = float(report["latent"]["active_units"])
    return flat


def render_report(report: dict[str, Any]) -> str:
    """A compact table: accuracy per probe and budget for the encoder and the controls, then the rest."""
    rows = report["probes"]
    feature_names = [f for f in FEATURES if any(r["features"] == f for r in rows)]
    cells: dict[tuple[str, str, str], float] = {
        (r["probe"], r["budget"], r["features"]): r["accuracy"] for r in rows
    }
    keys = list(dict.fromkeys((r["probe"], r["budget"]) for r in rows))
    header = ["probe@labels/class", *feature_names]
    lines = [header]
    for probe, budget in keys:
        lines.append([f"{probe}@{budget}", *(_fmt(cells.get((probe, budget, f))) for f in feature_names)])
    for metric in ("kmeans_accuracy", "nmi"):
        lines.append([metric, *(_fmt(report["clustering"].get(f, {}).get(metric)) for f in feature_names)])
    text = align_columns([lines])
    gap = report.get("online_offline")
    latent = report["latent"]
    chance = f"chance {report['chance_accuracy']:.4f}"
    if gap is not None:
        chance += (
            f"   test/probe_accuracy (online) {gap['online_probe_accuracy']:.4f}"
            f"   offline linear on the same {gap['labels']} labels {gap['offline_linear_accuracy']:.4f}"
            f"   gap {gap['gap']:+.4f}"
        )
    units = f"active units {latent['active_units']}/{len(latent['active'])}"
    test = report.get("metrics", {}).get("test")
    if test is not None:
        units += f"   test/reconstruction_loss {test.get('reconstruction_loss', float('nan')):.4f}"
    text += [chance, units]
    names = class_names(report)
    per_class = report.get("per_class_accuracy") or []
    if per_class:
        main = report["main_probe"]
        accuracies = [f"{names[k]} {_fmt(a)}" for k, a in enumerate(per_class)]
        text += _wrap(f"test accuracy per class ({main['probe']}@{main['budget']})", accuracies)
    if "area_share" in latent:
        shares = [f"{names[k]} {s:.2f}" for k, s in enumerate(latent["area_share"]["share"])]
        text += _wrap("latent area share per class", shares)
    return "\n".join(text) + "\n"


def _wrap(title: str, items: list[str], width: int = WIDTH) -> list[str]:
    """``title`` then ``items`` two spaces apart, in lines of at most ``width`` characters where the
    items allow; a class name (``Ankle boot``) is never split from its number."""
    lines = [title]
    for item in items:
        if len(lines[-1]) + 2 + len(item) > width and lines[-1].strip():
            lines.append("   ")
        lines[-1] += f"  {item}"
    return lines


def class_names(report: dict[str, Any]) -> list[str]:
    """The report's class names; ``"0".."K-1"`` for an eval.json written before it held them."""
    names = report.get("class_names")
    if names:
        return [str(n) for n in names]
    count = len(report.get("confusion_matrix") or report.get("per_class_accuracy") or [])
    return [str(k) for k in range(count)]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
