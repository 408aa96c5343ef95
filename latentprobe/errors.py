"""Errors a user can fix: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user (config, data file, run directory).

    The CLI prints ``error: <message>`` on one line and exits with code 2, no traceback.
    """


class ConfigError(UserError):
    """A config value is wrong. The message names the file, the dotted key and, where known, the line."""

    def __init__(self, key: str, problem: str, source: str | None = None, line: int | None = None):
        self.key = key
        self.problem = problem
        self.source = source
        self.line = line
        super().__init__(self._format())

    def _format(self) -> str:
        # One line, whatever the YAML or a --set option held: newlines and control characters are quoted.
        where = (self.source or "<config>").replace("\r", "\\r").replace("\n", "\\n")
        if self.line is not None:
            where = f"{where}:{self.line}"
        key = self.key if self.key.isprintable() else repr(self.key)
        problem = self.problem.replace("\r", "\\r").replace("\n", "\\n")
        return f"{where}: {key}: {problem}" if key else f"{where}: {problem}"

    def located(self, source: str, line: int | None = None) -> ConfigError:
        """Return the same error with the file (and YAML line) filled in."""
        return ConfigError(self.key, self.problem, source, self.line if line is None else line)


class ConfigErrors(ConfigError):
    """Several config mistakes found in one pass, in file order: one line each.

    Behaves as its first error (``key``, ``problem``, ``source``, ``line``) where one error is expected.
    """

    #: At most this many mistakes are listed; the rest are counted.
    LIMIT = 10

    def __init__(self, errors: list[ConfigError]):
        flat = [e for error in errors for e in (error.errors if isinstance(error, ConfigErrors) else [error])]
        self.errors = flat
        first = flat[0]
        self.key, self.problem, self.source, self.line = first.key, first.problem, first.source, first.line
        shown = [str(e) for e in flat[: self.LIMIT]]
        if len(flat) > self.LIMIT:
            shown.append(f"{first.source or '<config>'}: {len(flat) - self.LIMIT} more mistake(s) not shown")
        UserError.__init__(self, "\n".join(shown))

    def located(self, source: str, line: int | None = None) -> ConfigError:
        return ConfigErrors([e.located(source, line) for e in self.errors])


def collect(errors: list[ConfigError]) -> ConfigError | None:
    """The error to raise for ``errors``: None, the one error, or all of them as :class:`ConfigErrors`."""
    if not errors:
        return None
    return errors[0] if len(errors) == 1 else ConfigErrors(errors)


def error_lines(error: Exception) -> list[str]:
    """The CLI's ``error: ...`` lines for an error: one per line of its message (one per config mistake)."""
    return [f"error: {line}" for line in str(error).splitlines() or [""]]


class DataError(UserError):
    """The data cannot be used: a missing file, wrong keys, bad labels or values."""


class RunDirError(UserError):
    """A directory is not a (complete) latentprobe run."""


class NonFiniteLoss(Exception):
    """Training produced a NaN or inf loss (or weights): the run stops, ``status: failed``, exit code 1.

    Not a :class:`UserError`: the input was valid, the optimisation diverged (e.g. a learning rate too
    large for the data). ``step`` is the step of the epoch that went bad, when known; ``epoch`` the epoch.
    """

    def __init__(self, message: str, step: int | None = None):
        super().__init__(message)
        self.step = step
        self.epoch: int | None = None  # filled in by the trainer, which counts epochs


class DataSettingError(ConfigError, DataError):
    """A ``data.*`` setting the data cannot satisfy (more labels than the train split holds, ...).

    A config error (file, dotted key, line) found once the data is read, still before any training.
    """
