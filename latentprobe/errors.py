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
        where = self.source or "<config>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {self.key}: {self.problem}" if self.key else f"{where}: {self.problem}"

    def located(self, source: str, line: int | None = None) -> ConfigError:
        """Return the same error with the file (and YAML line) filled in."""
        return ConfigError(self.key, self.problem, source, self.line if line is None else line)


class DataError(UserError):
    """The data cannot be used: a missing file, wrong keys, bad labels or values."""


class RunDirError(UserError):
    """A directory is not a (complete) latentprobe run."""
