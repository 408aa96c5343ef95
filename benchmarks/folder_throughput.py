"""Image-folder loading: the first decode (an empty cache) and a cached load, as JSON.

For a folder in ``data.name: folder``'s layout (e.g. MNIST written by ``benchmarks/write_mnist_folder.py``):

  scan_seconds            reading the layout from the names (what ``latentprobe validate`` does)
  first_decode_seconds    decoding every image with the process pool into an empty cache, written
  decode_images_per_second  images / first_decode_seconds
  cached_seconds          the same images from the cache (file listing, keys, reading the entry)
  load_cached_seconds     ``data.load`` of the folder with the cache warm (splitting and scaling too)

The cache goes to a fresh temporary folder (``$LATENTPROBE_CACHE_DIR``), so the data folder is untouched.
Also recorded: the cores decoding used and the load average before and after.

Usage::

    python benchmarks/folder_throughput.py /tmp/mnist-png
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="an image folder (class sub-folders, or train/ and test/)")
    return parser.parse_args(argv)


def measure(root: Path) -> dict:
    from latentprobe import data
    from latentprobe.data import folder, image_cache

    started = time.perf_counter()
    layout = folder.scan_layout(root)
    files = layout.train_files + (layout.test_files or ())
    scan = time.perf_counter() - started

    started = time.perf_counter()
    images = image_cache.load_images(layout.root, files)
    first = time.perf_counter() - started

    started = time.perf_counter()
    again = image_cache.load_images(layout.root, files)
    cached = time.perf_counter() - started
    assert (again == images).all()

    cfg = SimpleNamespace(
        name="folder", path=str(root), labels="all", validation=0.1, limit=None,
        image_size=None, color=None, test=0.2, unlabeled=None,
    )  # fmt: skip
    started = time.perf_counter()
    splits = data.load(cfg, 0)
    load_cached = time.perf_counter() - started
    return {
        "images": len(files),
        "shape": list(images.shape[1:]),
        "classes": len(splits.class_names),
        "cores": image_cache._cores(),
        "scan_seconds": round(scan, 2),
        "first_decode_seconds": round(first, 2),
        "decode_images_per_second": round(len(files) / first),
        "cached_seconds": round(cached, 3),
        "load_cached_seconds": round(load_cached, 3),
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as cache:
        os.environ["LATENTPROBE_CACHE_DIR"] = cache
        figures = measure(args.folder)
    figures["load_average_before"] = [round(v, 2) for v in load_before]
    figures["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    figures["machine"] = platform.processor() or platform.machine()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
