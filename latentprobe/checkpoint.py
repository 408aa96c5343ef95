"""Per-epoch checkpoints of a run, and reading them back to resume it.

``RUN_DIR/checkpoints/`` holds:

- ``epoch-0003.npz``: every variable of the autoencoder, the probe head and their optimizers (slots and
  step counters), and the layers' random seed states, in a fixed order (``v00000``, ``v00001``, ...).
- ``state.json``: the epoch, the history so far, the NumPy generator state that orders the batches, the
  timing so far, and which ``.npz`` goes with it.

The ``.npz`` is written under a new name (a temporary file, then a rename), and only then is
``state.json`` replaced atomically: a kill at any moment leaves a ``state.json`` that names a complete
``.npz``. Older ``.npz`` files are deleted after that.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from latentprobe import rundir
from latentprobe.errors import NonFiniteLoss, RunDirError


def collect_variables(model: keras.Model, head: keras.Model, optimizers: list[Any]) -> list[Any]:
    """Every variable a resumed run needs, in an order that depends only on the config.

    Args:
        model: the autoencoder (its ``variables`` cover the encoder, the decoder and seed generators).
        head: the probe head.
        optimizers: the probe's optimizer; the model's own optimizers are found on it.
    """
    found = [model.optimizer] + [
        v for _, v in sorted(vars(model).items()) if isinstance(v, keras.optimizers.Optimizer)
    ]
    unique = list({id(o): o for o in found + list(optimizers) if o is not None}.values())
    variables = list(model.variables) + list(head.variables)
    for optimizer in unique:
        variables += list(optimizer.variables)
    return variables


def save(
    run_dir: Path, epoch: int, variables: list[Any], state: dict[str, Any], keep: Sequence[str] = ()
) -> Path:
    """Write the checkpoint of ``epoch``: the variables' values and ``state`` (JSON-serialisable).

    Older checkpoint files are deleted, except those named in ``keep`` (an earlier best epoch's).

    Raises:
        NonFiniteLoss: if a weight is NaN or inf; the previous checkpoint is left as the last good one.
    """
    arrays = {f"v{i:05d}": np.asarray(v.numpy()) for i, v in enumerate(variables)}
    for array in arrays.values():
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise NonFiniteLoss("non-finite weights at the end of the epoch")
    directory = Path(run_dir) / rundir.CHECKPOINTS
    directory.mkdir(exist_ok=True)
    name = rundir.checkpoint_weights(epoch)
    rundir.write_npz(directory / name, **arrays)
    rundir.write_json(
        directory / rundir.CHECKPOINT_STATE,
        {
            "schema_version": rundir.CHECKPOINT_SCHEMA_VERSION,
            "epoch": epoch,
            "weights": name,
            "variables": [
                [str(v.path), list(a.shape)] for v, a in zip(variables, arrays.values(), strict=True)
            ],
            **state,
        },
    )
    # Temporary files a killed write left are named ``.<name>.*.tmp`` (rundir's atomic writes).
    stale = [
        *directory.glob(rundir.CHECKPOINT_WEIGHTS_GLOB),
        *directory.glob(f".{rundir.CHECKPOINT_WEIGHTS_GLOB}.*.tmp"),
    ]
    for old in stale:
        if old.name != name and old.name not in keep:  # older ones, and a killed write's temporary files
            old.unlink(missing_ok=True)
    return directory / name


def read_state(run_dir: Path) -> dict[str, Any] | None:
    """The last checkpoint's state, or None when the run wrote none (stopped in its first epoch)."""
    path = Path(run_dir) / rundir.CHECKPOINTS / rundir.CHECKPOINT_STATE
    if not path.exists():
        return None
    state = rundir.read_json(path)
    if state.get("schema_version") != rundir.CHECKPOINT_SCHEMA_VERSION or not isinstance(
        state.get("epoch"), int
    ):
        raise RunDirError(f"{path}: not a checkpoint state this latentprobe reads")
    return state


def restore(run_dir: Path, state: dict[str, Any], variables: list[Any]) -> None:
    """Assign the checkpoint's values to ``variables`` (built from the same config, same order)."""
    path = Path(run_dir) / rundir.CHECKPOINTS / state["weights"]
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = [npz[f"v{i:05d}"] for i in range(len(npz.files))]
    except (OSError, ValueError, KeyError) as exc:
        raise RunDirError(f"{path}: cannot read the checkpoint ({exc})") from None
    if len(arrays) != len(variables):
        raise RunDirError(
            f"{path}: holds {len(arrays)} variables, the model built from config.yaml has {len(variables)}"
        )
    for variable, array in zip(variables, arrays, strict=True):
        if tuple(variable.shape) != array.shape:
            raise RunDirError(
                f"{path}: {variable.path} has shape {array.shape}, the model {tuple(variable.shape)}"
            )
        variable.assign(array)
