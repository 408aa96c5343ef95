"""What eval computes (:class:`EvalOptions`), and parsing the CLI's comma-separated values into it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from latentprobe.errors import UserError
from latentprobe.evaluation import budgets, probing


@dataclass(frozen=True)
class EvalOptions:
    """What eval computes (docs/performance.md: an MNIST eval's time by part with these defaults)."""

    budgets: tuple[int | str, ...] = budgets.DEFAULT_BUDGETS
    probes: tuple[str, ...] = probing.PROBES
    k: int = 10
    seed: int = 0
    controls: bool = True
    tsne: bool = False
    projector: bool = True
    tune: bool = True  # cross-validate each probe's regularisation on its own labels (probing.tune)
    cache: bool = True  # keep and reuse the data-only controls' results on disk (controls.read_cached)
    workers: int = 0  # processes fitting probes at once; 0: the cores this process may use
    probe_settings: probing.ProbeSettings = field(default_factory=probing.ProbeSettings)


def parse_budgets(text: str) -> tuple[int | str, ...]:
    """``"10,100,all"`` -> ``(10, 100, "all")``; raises UserError naming the bad item."""
    out: list[int | str] = []
    for item in (part.strip() for part in text.split(",")):
        if item == budgets.ALL:
            out.append(item)
        elif item.isdigit() and int(item) > 0:
            out.append(int(item))
        else:
            raise UserError(f"--budgets: {item!r} is not a positive number of labels per class or 'all'")
    if not out or len(set(out)) != len(out):
        raise UserError(f"--budgets: expected distinct budgets, got {text!r}")
    return tuple(out)


def parse_probes(text: str) -> tuple[str, ...]:
    """``"linear,knn"`` -> ``("linear", "knn")``; raises UserError for an unknown probe."""
    out = tuple(part.strip() for part in text.split(","))
    for item in out:
        if item not in probing.PROBES:
            raise UserError(
                f"--probes: unknown probe {item!r} (expected any of: {', '.join(probing.PROBES)})"
            )
    return out


def describe_options(options: EvalOptions) -> dict[str, Any]:
    """The options as eval.json records them."""
    return {
        "budgets": [budgets.budget_name(b) for b in options.budgets],
        "probes": list(options.probes),
        "k": options.k,
        "seed": options.seed,
        "controls": options.controls,
        "tsne": options.tsne,
        "tune": options.tune,
        "cache": options.cache,
        "mlp_hidden": list(options.probe_settings.mlp_hidden),
        "knn_max_train": options.probe_settings.knn_max_train,
        "kmeans_max_train": options.probe_settings.kmeans_max_train,
        **(_describe_tuning(options.probe_settings) if options.tune else {}),
    }


def _describe_tuning(settings: probing.ProbeSettings) -> dict[str, Any]:
    return {
        "tuning": {
            "folds": settings.folds,
            "mlp_folds": settings.mlp_folds,
            "max_labels": settings.tune_max_train,
            "mlp_max_labels": settings.mlp_tune_max_train,
            "linear_C": list(settings.linear_cs),
            "knn_k": list(settings.knn_ks),
            "mlp_alpha": list(settings.mlp_alphas),
            "linear_max_iter": settings.linear_max_iter,
        }
    }


def probe_settings(options: EvalOptions) -> probing.ProbeSettings:
    """The probes' settings under ``options`` (its k, seed and tuning)."""
    from dataclasses import replace

    return replace(options.probe_settings, k=options.k, seed=options.seed, tune=options.tune)


def main_probe(options: EvalOptions) -> str:
    """The probe whose predictions give the confusion matrix and per-class accuracy: linear if run."""
    return "linear" if "linear" in options.probes else options.probes[0]
