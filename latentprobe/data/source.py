"""What every reader returns: a dataset's raw arrays, its class names and any unlabeled examples.

A reader (``readers.py``: digits, Keras datasets, npz; ``folder.py``: image folders) only reads; the
checks, the splitting and the scaling are shared, in ``latentprobe.data``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


# eq=False: the fields are arrays, and a generated __eq__ would raise on `==` instead of comparing.
@dataclass(frozen=True, eq=False)
class Source:
    """A dataset as read, unchecked and unscaled.

    Attributes:
        x_train, y_train, x_test, y_test: the dataset's own train and test splits; images as
            (n, H, W) or (n, H, W, C), feature vectors as (n, d); labels 0..K-1.
        where: where the arrays came from (a file, a folder, ``digits``), for error messages.
        class_names: one name per class 0..K-1, or None (then the class numbers are the names).
        x_unlabeled: examples without labels, shaped like ``x_train``'s, or None.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    where: str
    class_names: tuple[str, ...] | None = None
    x_unlabeled: np.ndarray | None = None

    @property
    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.x_train, self.y_train, self.x_test, self.y_test


def one_line(error: Exception) -> str:
    """Return an exception's message on one line, for the CLI's one-line ``error:`` output."""
    return " ".join(str(error).split())
