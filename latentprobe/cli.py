"""The ``latentprobe`` command: parse, call one function, print. No TensorFlow maths here."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer

from latentprobe.errors import UserError

app = typer.Typer(
    help="Train autoencoders, probe their latent space, eval and compare runs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

ConfigArg = Annotated[Path, typer.Argument(help="YAML config file.", show_default=False)]
SetOpt = Annotated[
    Optional[list[str]],  # noqa: UP045 (typer needs Optional here)
    typer.Option("--set", help="Override a key: --set train.epochs=3 (repeatable; YAML values)."),
]


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Hide what TensorFlow's native libraries print while loading (CUDA probing on a CPU machine).

    That chatter is written to file descriptor 2 before any log setting applies, so only a redirect
    of the descriptor silences it; Python-level errors still surface once it is restored.
    """
    if os.environ.get("LATENTPROBE_DEBUG"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _load_tensorflow() -> None:
    with _quiet_native_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
    # Retracing notices are about our own compiled functions, expected once per model in a sweep.
    tf.get_logger().setLevel("ERROR")


def _fail(exc: UserError) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(2)


def _progress(line: str) -> None:
    typer.echo(line, err=True)


@app.command()
def train(config: ConfigArg, set_: SetOpt = None) -> None:
    """Train the autoencoder(s) a config describes, with probe training, into run directories."""
    from latentprobe import config as config_mod

    _load_tensorflow()
    try:
        cfg = config_mod.load(config, set_ or [])
        from latentprobe import train as train_mod

        summaries = train_mod.run(cfg, progress=_progress if sys.stderr.isatty() else None)
    except UserError as exc:
        raise _fail(exc) from None
    for s in summaries:
        test = s["metrics"]["test"]
        # A variant may have no reconstruction (supervised) or its own classifier (aae): show what exists.
        extra = "".join(
            f"  test/{name} {test[name]:.4f}"
            for name in ("classifier_accuracy", "reconstruction_loss")
            if name in test
        )
        typer.echo(
            f"{s['run_dir']}  test/probe_accuracy {test['probe_accuracy']:.4f}"
            f"  (chance {test['chance_accuracy']:.4f}){extra}"
            f"  train {s['timing']['train_seconds']:.1f}s"
        )


@app.command()
def validate(config: ConfigArg, set_: SetOpt = None) -> None:
    """Check a config without training."""
    _load_tensorflow()  # the model registry behind model.kind imports Keras
    from latentprobe import config as config_mod

    try:
        cfg = config_mod.load(config, set_ or [])
    except UserError as exc:
        raise _fail(exc) from None
    typer.echo(f"{config}: ok ({len(cfg.expand())} run(s))")


@app.command(name="eval")
def eval_(run_dir: Annotated[Path, typer.Argument(help="A run directory.", show_default=False)]) -> None:
    """Re-measure a saved run from its models (no retraining) and write eval.json."""
    _load_tensorflow()
    try:
        from latentprobe import evaluate

        report = evaluate.evaluate(run_dir)
    except UserError as exc:
        raise _fail(exc) from None
    for name, value in report["metrics"]["test"].items():
        typer.echo(f"test/{name}  {value:.6f}")
    typer.echo(f"wrote {Path(report['run_dir']) / 'eval.json'}")


@app.command()
def compare(
    runs: Annotated[list[Path], typer.Argument(help="Run or sweep directories.", show_default=False)],
    format_: Annotated[str, typer.Option("--format", "-f", help="table, markdown, json or csv.")] = "table",
) -> None:
    """Set runs side by side, each with its difference to the first."""
    from latentprobe import compare as compare_mod

    if format_ not in compare_mod.FORMATS:
        choices = ", ".join(compare_mod.FORMATS)
        raise _fail(UserError(f"--format: unknown format {format_!r} (expected one of: {choices})"))
    records, problems = compare_mod.load_runs(runs)
    for p in problems:
        typer.echo(f"warning: {p.path}: {p.reason}", err=True)
    if not records:
        raise _fail(UserError("no complete run to compare"))
    typer.echo(compare_mod.render(compare_mod.build_table(records, problems), format_))


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":
    app()
