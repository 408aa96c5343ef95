"""Write MNIST out as an image folder: ``OUT/train/<digit>/*.png`` and ``OUT/test/<digit>/*.png``.

60,000 train and 10,000 test 28x28 grayscale PNGs, read from ``$LATENTPROBE_DATA_DIR/mnist.npz`` (the
Keras format: x_train, y_train, x_test, y_test), for ``benchmarks/folder_throughput.py`` and for trying
``data.name: folder`` on a folder of realistic size. File names are the image's index in its split.

Usage::

    python benchmarks/write_mnist_folder.py /tmp/mnist-png
    python benchmarks/write_mnist_folder.py /tmp/mnist-png --npz path/to/mnist.npz
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the folder to write (made if missing)")
    default = Path(os.environ.get("LATENTPROBE_DATA_DIR", ".")) / "mnist.npz"
    parser.add_argument(
        "--npz", type=Path, default=default, help=f"MNIST in Keras's format (default {default})"
    )
    return parser.parse_args(argv)


def write_folder(npz: Path, out: Path) -> dict[str, int]:
    """Write every image of ``npz`` under ``out``; return the count per split."""
    counts = {}
    with np.load(npz) as arrays:
        for split in ("train", "test"):
            x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
            for digit in np.unique(y):
                (out / split / str(digit)).mkdir(parents=True, exist_ok=True)
            for i, (pixels, label) in enumerate(zip(x, y, strict=True)):
                Image.fromarray(pixels).save(out / split / str(label) / f"{i:05d}.png")
            counts[split] = len(x)
    return counts


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    counts = write_folder(args.npz, args.out)
    print(json.dumps({"out": str(args.out), **counts, "seconds": round(time.perf_counter() - started, 1)}))


if __name__ == "__main__":
    main()
