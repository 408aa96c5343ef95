"""Between epochs: the plateau schedules' steps and early stopping, and where each phase ends.

After every epoch :meth:`EpochControls.after_epoch` reads the val metrics of the phase that trained:
``plateau`` schedules of the blocks that trained take their step (:mod:`latentprobe.schedules`), and
early stopping keeps the best epoch of the phase's monitored metric. A phase ends at its last epoch or
after ``patience`` epochs without improvement; where it kept a best epoch other than the last, the run
goes on from (and finally saves, and measures on test) the weights of that epoch, which its checkpoint
file still holds (:func:`latentprobe.checkpoint.save` keeps it).

Which early stopping applies to which phase: ``train.early_stopping`` to the ``alternating`` epochs
(the whole run) or to ``frozen``'s autoencoder phase; ``probe.early_stopping`` to ``frozen``'s probe
phase. Everything here is JSON state in the checkpoint, so a resumed run decides as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from latentprobe import rundir
from latentprobe.errors import ConfigError
from latentprobe.schedules import BlockSchedule, improved
from latentprobe.strategies import autoencoder_epochs
from latentprobe.training_controls import VAL

#: Each phase's config block: its early stopping, and the blocks whose optimizers train in it.
PHASE_STOPPING = {"alternating": "train", "autoencoder": "train", "probe": "probe"}
PHASE_BLOCKS = {"alternating": ("train", "probe"), "autoencoder": ("train",), "probe": ("probe",)}


class BestEpoch:
    """One phase's early stopping: the best value of its monitor, at which epoch, and the wait since."""

    def __init__(self, spec: Any):
        self.spec = spec
        self.monitor = spec.monitor.partition("/")[2]
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0

    def update(self, epoch: int, value: float) -> None:
        if self.best is None or improved(value, self.best, self.spec.mode, self.spec.min_delta):
            self.best, self.best_epoch, self.wait = value, epoch, 0
        else:
            self.wait += 1

    @property
    def stop(self) -> bool:
        return self.wait >= self.spec.patience

    def state(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]


@dataclass
class PhaseEnd:
    """A phase that ended with its epoch: whether early stopping ended it, and its best epoch to go back
    to (None: keep the weights it has)."""

    phase: str
    epoch: int
    early: bool
    restore_epoch: int | None


class EpochControls:
    """A run's plateau schedules and early stopping, and the epochs where its phases ended."""

    def __init__(self, cfg: Any, blocks: dict[str, BlockSchedule]):
        self.cfg = cfg
        self.blocks = blocks
        frozen = cfg.probe.strategy == "frozen"
        self.stoppers: dict[str, BestEpoch] = {}
        if cfg.train.early_stopping is not None:
            self.stoppers["autoencoder" if frozen else "alternating"] = BestEpoch(cfg.train.early_stopping)
        if cfg.probe.early_stopping is not None:
            self.stoppers["probe"] = BestEpoch(cfg.probe.early_stopping)
        self.finished: dict[str, int] = {}  # phase -> its last epoch
        self.stopped_early: dict[str, bool] = {}

    def after_epoch(self, phase: str, epoch: int, val: dict[str, float]) -> PhaseEnd | None:
        """Take the plateau and early-stopping steps for the epoch just measured; say if its phase ended."""
        start = self.finished.get("autoencoder", 0) if phase == "probe" else 0
        for name in PHASE_BLOCKS[phase]:
            block = self.blocks.get(name)
            if block is not None and block.plateau is not None and epoch - start > block.spec.warmup_epochs:
                key = f"{name}.schedule.monitor"
                block.plateau.update(self.value(val, block.plateau.monitor, block.spec.monitor, key))
        stopper = self.stoppers.get(phase)
        if stopper is not None:
            key = f"{PHASE_STOPPING[phase]}.early_stopping.monitor"
            stopper.update(epoch, self.value(val, stopper.monitor, stopper.spec.monitor, key))
        early = stopper is not None and stopper.stop
        if not early and epoch < start + self.phase_epochs(phase):
            return None
        self.finished[phase] = epoch
        self.stopped_early[phase] = early
        restore = None
        if stopper is not None and stopper.best_epoch != epoch:
            restore = stopper.best_epoch
        return PhaseEnd(phase, epoch, early, restore)

    def phase_epochs(self, phase: str) -> int:
        return self.cfg.probe.epochs if phase == "probe" else self.cfg.train.epochs

    @staticmethod
    def value(val: dict[str, float], name: str, monitor: str, key: str) -> float:
        """The monitored metric's value; a plug-in kind's metrics are known only now, so its check is here."""
        if name not in val:
            valid = ", ".join(VAL + k for k in val)
            raise ConfigError(key, f"this run measures no {monitor} (valid here: {valid})")
        return val[name]

    def keep(self) -> list[str]:
        """Checkpoint files to keep: the best epoch of each phase still training."""
        return [
            rundir.checkpoint_weights(s.best_epoch)
            for phase, s in self.stoppers.items()
            if s.best_epoch is not None and phase not in self.finished
        ]

    def state(self) -> dict[str, Any]:
        return {
            "plateau": {n: b.plateau.state() for n, b in self.blocks.items() if b.plateau is not None},
            "early_stopping": {phase: s.state() for phase, s in self.stoppers.items()},
            "finished": dict(self.finished),
            "stopped_early": dict(self.stopped_early),
        }

    def load(self, state: dict[str, Any] | None, phase: str | None) -> None:
        """Restore :meth:`state` (None: a checkpoint older than schedules; ``phase``: its epoch's)."""
        if state is None:
            if phase == "probe":  # frozen, resumed in its probe phase: the autoencoder ran every epoch
                self.finished["autoencoder"] = autoencoder_epochs(self.cfg)
            return
        for name, plateau_state in state["plateau"].items():
            self.blocks[name].plateau.load(plateau_state)
        for phase_name, stopper_state in state["early_stopping"].items():
            self.stoppers[phase_name].load(stopper_state)
        # In place: the strategy holds the same dict.
        self.finished.update({k: int(v) for k, v in state["finished"].items()})
        self.stopped_early.update(state["stopped_early"])

    def describe(self, history: dict[str, list[Any]]) -> dict[str, Any]:
        """summary.json's ``best_epoch`` and ``stopped`` (of the run's last phase), and each phase's."""
        phases = {}
        last_phase = history["phase"][-1] if history["phase"] else None
        for phase in dict.fromkeys(history["phase"]):
            epochs = [e for e, p in zip(history["epoch"], history["phase"], strict=True) if p == phase]
            stopper = self.stoppers.get(phase)
            entry = {
                "epochs": len(epochs),
                "stopped": "early_stopping" if self.stopped_early.get(phase) else "epochs",
                "best_epoch": stopper.best_epoch if stopper is not None else epochs[-1],
            }
            if stopper is not None:
                entry.update(monitor=stopper.spec.monitor, mode=stopper.spec.mode, best=stopper.best)
            phases[phase] = entry
        last = phases.get(last_phase, {"best_epoch": None, "stopped": "epochs"})
        return {"best_epoch": last["best_epoch"], "stopped": last["stopped"], "phases": phases}
