"""The ``latentprobe`` command: parse, call one function, print. No TensorFlow maths here."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from latentprobe import __version__, rundir
from latentprobe.errors import RunDirError, UserError, error_lines

if TYPE_CHECKING:
    from latentprobe.evaluation.options import EvalOptions

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


def _load_tensorflow() -> None:
    """Import TensorFlow quietly. Commands call it only once their input is checked, so that a bad
    config fails in well under a second."""
    from latentprobe.runtime import import_tensorflow

    import_tensorflow()


def _fail(exc: UserError) -> typer.Exit:
    for line in error_lines(exc):
        typer.echo(line, err=True)
    return typer.Exit(2)


def _progress(line: str) -> None:
    typer.echo(line, err=True)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"latentprobe {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Train autoencoders, probe their latent space, eval and compare runs."""


SeedsOpt = Annotated[
    Optional[int],  # noqa: UP045 (typer needs Optional here)
    typer.Option("--seeds", help="Train under N seeds, counting up from the config's seed."),
]


JobsOpt = Annotated[
    Optional[int],  # noqa: UP045 (typer needs Optional here)
    typer.Option("--jobs", help="Train on N worker processes (default 1)."),
]
ThreadsOpt = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option("--threads", help="TensorFlow threads per run (default: cores / jobs)."),
]
ExecutorOpt = Annotated[
    str, typer.Option("--executor", help="Where runs train: local (worker processes) or ray.")
]
AddressOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--address", help="Ray cluster address (auto, or HOST:PORT); default: start a local Ray."),
]


@app.command()
def train(
    config: Annotated[Optional[Path], typer.Argument(help="YAML config file.", show_default=False)] = None,  # noqa: UP045
    set_: SetOpt = None,
    resume: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--resume", help="Continue a killed or interrupted run directory from its last checkpoint."
        ),
    ] = None,
    seeds: SeedsOpt = None,
    jobs: JobsOpt = None,
    threads: ThreadsOpt = None,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
) -> None:
    """Train every run a config describes (its grid), with probe training, into a study directory.

    Running the same command again continues the study: completed runs are kept, interrupted ones resume.
    Exit codes: 0 completed, 1 a run failed (e.g. a NaN loss), 2 bad input, 130 interrupted (Ctrl-C).
    """
    _check_train_arguments(config, set_, resume, seeds, jobs, threads, address)
    if resume is not None:
        _load_tensorflow()
        typer.echo(_resume_run(resume))
        return
    from latentprobe import study

    # The driver imports no TensorFlow: the config is checked in a fraction of a second, the runs train
    # in the workers.
    raise typer.Exit(
        study.train_study(config, set_ or [], seeds, jobs, threads, executor, address, typer.echo)
    )


def _check_train_arguments(
    config: Path | None,
    set_: list[str] | None,
    resume: Path | None,
    seeds: int | None,
    jobs: int | None,
    threads: int | None,
    address: str | None,
) -> None:
    if (config is None) == (resume is None):
        raise _fail(UserError("train takes a CONFIG file or --resume RUN_DIR (one of the two)"))
    if resume is not None and (set_ or seeds is not None):
        raise _fail(
            UserError(
                "--set cannot change a resumed run (nor --seeds): it continues with its own config.yaml"
            )
        )
    if resume is not None and (jobs is not None or threads is not None or address is not None):
        raise _fail(
            UserError("--resume continues one run in this process; to resume a study, run its command again")
        )


def _resume_run(run_dir: Path) -> str:
    """Continue one run directory; turn each way a run can end early into an exit."""
    from latentprobe import config as config_mod
    from latentprobe import study
    from latentprobe import train as train_mod
    from latentprobe.errors import ConfigError, NonFiniteLoss

    progress = _progress if sys.stderr.isatty() else None
    try:
        try:
            return study.summary_line(train_mod.resume(run_dir, progress=progress))
        finally:  # the study's study.json follows the run: completed, failed or interrupted again
            study.record_run_status(run_dir)
    except ConfigError as exc:
        # Raised once the data is read (data.labels larger than the train split ...): name the file.
        raise _fail(config_mod.locate(exc, run_dir / rundir.CONFIG)) from None
    except UserError as exc:
        raise _fail(exc) from None
    except NonFiniteLoss as exc:
        where = getattr(exc, "run_dir", "?")
        typer.echo(f"error: {where}: training failed in epoch {exc.epoch}: {exc} (status: failed)", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        hint = f"; continue with: latentprobe train --resume {run_dir}"
        typer.echo(f"interrupted: {run_dir}: status: interrupted{hint}", err=True)
        raise typer.Exit(130) from None


@app.command()
def validate(config: ConfigArg, set_: SetOpt = None, seeds: SeedsOpt = None) -> None:
    """Check a config (with train's --set and --seeds) and an image folder's layout, without training (fast:
    imports no TensorFlow, decodes no image)."""
    from latentprobe import grid, search
    from latentprobe.study import check_devices, check_encoder_files, check_layouts

    if search.has_search(config, set_ or []):  # checked without TensorFlow or Optuna
        try:
            found = search.load(config, set_ or [], seeds)
        except UserError as exc:
            raise _fail(exc) from None
        typer.echo(search.describe(found))
        return
    try:
        study = grid.load(config, set_ or [], seeds)
        check_devices(study, config, set_ or [])
        check_layouts(study, config, set_ or [])
        check_encoder_files(study, config, set_ or [])
    except UserError as exc:
        raise _fail(exc) from None
    varying = f", varying {', '.join(study.keys)}" if study.keys else ""
    typer.echo(f"{config}: ok ({len(study.runs)} run(s){varying})")


@app.command(name="eval")
def eval_(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(
            help="A run directory, or directories holding runs (a study, a sweep, an output directory).",
            show_default=False,
        ),
    ],
    budgets: Annotated[
        str, typer.Option(help="Labels per class for the offline probes, or all.")
    ] = "10,100,all",
    probes: Annotated[str, typer.Option(help="Offline probes: linear, mlp, knn.")] = "linear,mlp,knn",
    k: Annotated[int, typer.Option("--k", min=1, help="kNN neighbours (with --no-tune).")] = 10,
    seed: Annotated[int, typer.Option(min=0, help="Eval seed: label budgets, controls, subsamples.")] = 0,
    controls: Annotated[bool, typer.Option(help="Probe a random encoder, PCA, raw pixels.")] = True,
    tsne: Annotated[bool, typer.Option(help="Also draw a t-SNE of a test subsample (slow).")] = False,
    tune: Annotated[
        bool,
        typer.Option(
            help="Pick each probe's C, k, L2 alpha by cross-validation on its labels; "
            "--no-tune: the fixed C=1, --k, alpha=1e-4."
        ),
    ] = True,
    cache: Annotated[
        bool,
        typer.Option(
            help="Reuse the PCA and pixel controls' results, kept beside the run "
            "(or in $LATENTPROBE_CACHE_DIR)."
        ),
    ] = True,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            min=1,
            help="Evaluate this many runs at once, in worker processes (cores / N threads each).",
        ),
    ] = 1,
) -> None:
    """Read a saved run's latent space several ways (no retraining); write eval.json, plots, TensorBoard.

    Given a directory of runs, evaluates every run under it, one line per run.
    Exit codes: 0 evaluated, 1 some run failed to evaluate (the others still were), 2 bad input.
    """
    from latentprobe.evaluation.options import EvalOptions, parse_budgets, parse_probes

    try:
        options = EvalOptions(
            budgets=parse_budgets(budgets),
            probes=parse_probes(probes),
            k=k,
            seed=seed,
            controls=controls,
            tsne=tsne,
            tune=tune,
            cache=cache,
        )
        # A directory search skips what is not latentprobe's (a malformed study.json in /tmp), saying so.
        found = rundir.find_runs(run_dirs, on_skip=lambda text: typer.echo(f"warning: {text}", err=True))
        found = _without_pruned_trials(found, run_dirs)
    except UserError as exc:
        raise _fail(exc) from None
    single = len(run_dirs) == 1 and found == [run_dirs[0]]
    if single or jobs == 1:
        _load_tensorflow()  # workers (--jobs N) import their own
    if single:
        _eval_one(run_dirs[0], options)
    else:
        _eval_many(found, options, jobs)


def _without_pruned_trials(found: list[Path], given: list[Path]) -> list[Path]:
    """A search's pruned trials saved no models: a directory search leaves them out, saying how many.

    Raises:
        RunDirError: every run found was pruned (or a pruned trial was named on its own).
    """
    named = {Path(p).resolve() for p in given}
    pruned = [
        r for r in found if r.resolve() not in named and rundir.recorded_status(r) == rundir.STATUS_PRUNED
    ]
    named_pruned = [
        r for r in found if r.resolve() in named and rundir.recorded_status(r) == rundir.STATUS_PRUNED
    ]
    if named_pruned:
        raise RunDirError(
            f"{named_pruned[0]}: a pruned trial of a search: it stopped early and saved no models"
        )
    if pruned:
        typer.echo(
            f"note: {len(pruned)} pruned trial(s) left out: they stopped early and saved no models", err=True
        )
    kept = [r for r in found if r not in pruned]
    if not kept:
        raise RunDirError(f"{given[0]}: every run under it is a pruned trial; nothing to evaluate")
    return kept


def _eval_one(run_dir: Path, options: EvalOptions) -> None:
    """One run: its metrics, the report table and where it was written."""
    from latentprobe import evaluation

    try:
        report = evaluation.evaluate(run_dir, options)
    except UserError as exc:
        raise _fail(exc) from None
    for name, value in report["metrics"]["test"].items():
        typer.echo(f"test/{name}  {value:.6f}")
    typer.echo(evaluation.render_report(report), nl=False)
    written = Path(report["run_dir"]) / rundir.EVAL
    typer.echo(f"wrote {written} in {report['timing']['total_seconds']:.1f}s")
    _log_eval(Path(report["run_dir"]), report)


def _log_eval(run_dir: Path, report: dict[str, Any]) -> None:
    """With output.mlflow in the run's config: eval's headline metrics go to its MLflow run too."""
    from latentprobe import tracking

    try:
        uri = (rundir.read_json(run_dir / rundir.SUMMARY).get("config") or {}).get("output", {}).get("mlflow")
    except UserError:
        return
    tracking.log_eval(uri, run_dir, report)


def _eval_many(run_dirs: list[Path], options: EvalOptions, jobs: int) -> None:
    """Every run, one line each as it finishes; exit 1 after all if any failed."""
    from latentprobe.evaluation.batch import evaluate_runs

    def line(result: Any) -> None:
        if result.ok:
            name, accuracy = result.main
            typer.echo(
                f"{result.run_dir}  eval/{name} {accuracy:.4f}  "
                f"test/probe_accuracy {result.probe_accuracy:.4f}  ({result.seconds:.1f}s)"
            )
            with contextlib.suppress(UserError):
                _log_eval(Path(result.run_dir), rundir.read_json(Path(result.run_dir) / rundir.EVAL))
        else:
            reason = result.error
            where = "" if reason.startswith(str(result.run_dir)) else f"{result.run_dir}: "
            typer.echo(f"error: {where}{reason}", err=True)

    started = time.perf_counter()
    try:
        results = evaluate_runs(run_dirs, options, jobs, on_result=line)
    except KeyboardInterrupt:
        typer.echo("interrupted: eval stopped; runs without a new eval.json keep their old one", err=True)
        raise typer.Exit(130) from None
    failed = sum(not r.ok for r in results)
    typer.echo(
        f"evaluated {len(results) - failed} of {len(results)} runs in {time.perf_counter() - started:.1f}s"
        + (f"; {failed} failed" if failed else ""),
        err=True,
    )
    if failed:
        raise typer.Exit(1)


@app.command()
def compare(
    runs: Annotated[
        list[Path],
        typer.Argument(
            help="Runs, or directories holding runs (a study, a sweep, an output directory).",
            show_default=False,
        ),
    ],
    format_: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="table (aligned text), markdown, json (every table, full precision) or csv (one table, "
            "full precision; see --table).",
        ),
    ] = "table",
    table_: Annotated[
        Optional[str],  # noqa: UP045 (typer needs Optional here)
        typer.Option(
            "--table",
            help="Print one table: runs (a row per run in csv), groups (mean ± 95% CI per seed group) or "
            "comparisons (paired tests against the first group). Default: every table; csv: runs.",
            show_default=False,
        ),
    ] = None,
    width: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            "--width",
            min=0,
            help="The table format's line width: wider tables are split into panels of columns, each "
            "repeating the row names; 0: no limit, one wide table. Default: 100.",
            show_default=False,
        ),
    ] = None,
    rows: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--rows", help="Pivot: a row per value of this config key, e.g. model.kind."),
    ] = None,
    cols: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--cols", help="Pivot: a column per value of this config key, e.g. model.latent."),
    ] = None,
    metric: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--metric",
            help="The pivot's and the plot's metric, e.g. test/probe_accuracy or eval/linear@all "
            "(default: test/probe_accuracy for a pivot, each headline metric the runs have for a plot).",
        ),
    ] = None,
    plot: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--plot",
            help="Write the capacity plot (the metric against model.latent, or --cols; a line per "
            "model.kind, or --rows) to this PNG (or .pdf, .svg); checked before anything is printed.",
        ),
    ] = None,
) -> None:
    """Set runs side by side; runs differing only by seed get mean ± 95% CI and paired tests.

    The table format fits 100 columns (--width); wider tables are split into panels of columns.
    Accuracies print with 4 decimals, counts as integers, other metrics with 4 significant digits.
    With --rows/--cols: a pivot table of one metric, each cell mean ± 95% CI (n runs).
    Exit codes: 0 shown, 2 bad input (nothing to compare, a bad option, runs that cannot be plotted).
    """
    from latentprobe import comparison
    from latentprobe.comparison import search as search_ranking

    try:
        _check_compare_options(format_, table_, width, rows, cols, metric, plot)
    except UserError as exc:
        raise _fail(exc) from None
    if len(runs) == 1 and search_ranking.is_search_dir(runs[0]) and not (rows or cols or plot or table_):
        # A search: its trials best first on the objective (test metrics shown, never used to rank).
        typer.echo(search_ranking.render_ranking(runs[0], format_), nl=False)
        return
    records, problems = comparison.load_runs(runs)
    if not records:
        for p in problems:
            typer.echo(f"warning: {_problem_line(p)}", err=True)
        raise _fail(UserError("no complete run to compare"))
    table = comparison.build_table(records, problems)
    try:
        which = comparison.check_table_option(table, table_, format_)
        pivot = None
        if rows is not None or cols is not None:
            pivot = comparison.build_pivot(
                table.records, table.labels, metric or comparison.DEFAULT_METRIC, rows, cols
            )
        # Plotted before anything is printed: runs that cannot be plotted print one line, nothing else.
        written = comparison.write_capacity_plot(table, plot, metric, rows, cols) if plot else None
    except UserError as exc:
        raise _fail(exc) from None
    for p in problems:
        typer.echo(f"warning: {_problem_line(p)}", err=True)
    if pivot is not None:
        typer.echo(comparison.render_pivot(pivot, format_, _width(width)), nl=False)
    else:
        typer.echo(comparison.render(table, format_, which, _width(width)), nl=False)
    if written is not None:
        typer.echo(f"wrote {written}", err=True)


def _width(width: int | None) -> int | None:
    """--width as the renderers take it: 100 when not given, None for no limit (0)."""
    from latentprobe.comparison import WIDTH

    return WIDTH if width is None else (width or None)


def _check_compare_options(
    format_: str,
    table_: str | None,
    width: int | None,
    rows: str | None,
    cols: str | None,
    metric: str | None,
    plot: Path | None,
) -> None:
    """The checks of compare's options that need no run: one UserError naming the option."""
    from latentprobe import comparison

    if format_ not in comparison.FORMATS:
        choices = ", ".join(comparison.FORMATS)
        raise UserError(f"--format: unknown format {format_!r} (expected one of: {choices})")
    if metric is not None and rows is None and cols is None and plot is None:
        raise UserError("--metric: picks the metric of a pivot (--rows, --cols) or a plot (--plot)")
    if table_ is not None and (rows is not None or cols is not None):
        raise UserError("--table: picks a table of the comparison; a pivot (--rows, --cols) is one table")
    if width is not None and format_ != "table":
        raise UserError(f"--width: only the table format is laid out to a width, not {format_}")
    if plot is not None:
        comparison.check_plot_path(plot)


def _problem_line(problem: Any) -> str:
    """A run compare could not read: its reason, led by its path."""
    reason = problem.reason
    return reason if reason.startswith(str(problem.path)) else f"{problem.path}: {reason}"


if __name__ == "__main__":  # python -m latentprobe.cli
    app()
