"""Label budgets: class-balanced subsets of the train split that eval's offline probes learn from.

A budget is a number of labeled examples per class (or ``all``). The subset is drawn from the run's
train part only (``Splits.train``: never validation, never test) by a fixed order over the dataset's own
train split: every example gets a key from (data sha256, eval seed, its index in the dataset's train
split), and each class takes its ``n`` smallest keys. So

- two runs on the same data are probed on the same labels: they share every example both runs hold in
  their train part (an example that one run's seed put in validation is replaced by the next in order);
- budgets are nested: the 10-per-class subset lies inside the 100-per-class one.

The subsets are saved as indices into the dataset's own train split and reused by later evals.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from latentprobe import rundir
from latentprobe.errors import RunDirError

#: Default budgets: labeled examples per class, then every train example.
DEFAULT_BUDGETS: tuple[int | str, ...] = (10, 100, "all")
ALL = "all"


def budget_name(budget: int | str) -> str:
    """``"10"``, ``"100"`` or ``"all"``: the budget's name in eval.json and plots."""
    return str(budget)


def example_keys(train_index: np.ndarray, sha256: str, eval_seed: int) -> np.ndarray:
    """A pseudo-random uint64 key per example, fixed by (data sha256, eval seed, index in the dataset).

    A counter-based hash (splitmix64) rather than a permutation, so the key of an example does not
    depend on which other examples a run holds.
    """
    salt = np.uint64(int(sha256[:16], 16) ^ (eval_seed * 0x9E3779B97F4A7C15 % 2**64))
    with np.errstate(over="ignore"):
        z = train_index.astype(np.uint64) ^ salt
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def select_budget(
    y_train: np.ndarray, train_index: np.ndarray, per_class: int | str, sha256: str, eval_seed: int
) -> np.ndarray:
    """Return sorted indices into the run's train part of a class-balanced subset.

    Args:
        y_train: labels of the run's train part (``Splits.train.y``).
        train_index: each train row's index in the dataset's own train split (``Splits.train_index``).
        per_class: examples per class (a class with fewer gives all it has), or ``"all"``.
        sha256: the data's hash (``Splits.sha256``); eval_seed: the eval's seed.
    """
    if per_class == ALL:
        return np.arange(len(y_train), dtype=np.int64)
    keys = example_keys(train_index, sha256, eval_seed)
    parts = []
    for k in np.unique(y_train):
        members = np.flatnonzero(y_train == k)
        parts.append(members[np.argsort(keys[members], kind="stable")[: int(per_class)]])
    return np.sort(np.concatenate(parts)).astype(np.int64)


def load_or_select_budgets(
    path: Path,
    y_train: np.ndarray,
    train_index: np.ndarray,
    budgets: tuple[int | str, ...],
    sha256: str,
    eval_seed: int,
) -> dict[str, np.ndarray]:
    """The subsets for ``budgets`` as indices into the run's train part, read from ``path`` or drawn.

    A saved file made for the same data and eval seed is reused (its indices are the dataset's own train
    indices, so they survive any change of run); budgets it lacks are drawn and the file rewritten.

    Raises:
        RunDirError: the saved file names an example that is not in this run's train part.
    """
    saved: dict[str, np.ndarray] = {}
    if path.exists():
        with np.load(path, allow_pickle=False) as npz:
            if str(npz["sha256"]) == sha256 and int(npz["eval_seed"]) == eval_seed:
                saved = {
                    name[len("budget_") :]: npz[name] for name in npz.files if name.startswith("budget_")
                }
    subsets: dict[str, np.ndarray] = {}
    for budget in budgets:
        name = budget_name(budget)
        if name == ALL:
            subsets[name] = np.arange(len(y_train), dtype=np.int64)
        elif name in saved:
            position = np.searchsorted(train_index, saved[name])
            position = np.minimum(position, len(train_index) - 1)
            if not np.array_equal(train_index[position], saved[name]):
                raise RunDirError(f"{path}: budget {name} holds examples outside this run's train part")
            subsets[name] = position.astype(np.int64)
        else:
            subsets[name] = select_budget(y_train, train_index, budget, sha256, eval_seed)
    stored = {**saved, **{n: train_index[i] for n, i in subsets.items() if n != ALL}}
    path.parent.mkdir(parents=True, exist_ok=True)
    rundir.write_npz(
        path,
        sha256=np.array(sha256),
        eval_seed=np.array(eval_seed),
        **{f"budget_{n}": v for n, v in stored.items()},
    )
    return subsets
