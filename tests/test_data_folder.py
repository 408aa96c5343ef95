"""Image folders (data.name: folder) and unlabeled examples: real PNGs written to tmp_path from the digits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from latentprobe import data, pixels, rundir
from latentprobe.cli import app
from latentprobe.data import folder, image_cache
from latentprobe.errors import DataError

from .conftest import REPO, tiny_config, write_config

CLASSES = ("circle", "cross", "zero")  # digits 0, 1 and 2, named so that sorting them matters
DIGIT_OF = {"circle": 1, "cross": 2, "zero": 0}


def digit_images(digit: int, count: int, offset: int = 0) -> list[np.ndarray]:
    """``count`` 8x8 uint8 images (0..255) of one digit from scikit-learn's bundled set."""
    x, y = data.read_arrays("digits", None)[:2]
    return [(image * 15).astype(np.uint8) for image in x[y == digit][offset : offset + count]]


def write_folder(
    root: Path, per_class: int = 6, split: bool = False, rgb: bool = False, ext: str = "png"
) -> Path:
    """A class folder per name in CLASSES (under train/ and test/ with ``split``); returns ``root``."""
    parts = {"train": 0, "test": per_class} if split else {"": 0}
    for part, offset in parts.items():
        for name in CLASSES:
            folder_ = root / part / name
            folder_.mkdir(parents=True, exist_ok=True)
            for i, image_pixels in enumerate(digit_images(DIGIT_OF[name], per_class, offset)):
                image = Image.fromarray(image_pixels)
                (image.convert("RGB") if rgb else image).save(folder_ / f"{name}_{i:02d}.{ext}")
    return root


def make_cfg(path, **changes) -> SimpleNamespace:
    """A stand-in for config.DataConfig of an image folder."""
    values = dict(
        name="folder", path=str(path), labels="all", validation=1, limit=None,
        image_size=None, color=None, test=0.2, unlabeled=None,
    )  # fmt: skip
    values.update(changes)
    return SimpleNamespace(**values)


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Every test its own cache, so none reads another's entries."""
    monkeypatch.setenv(image_cache.CACHE_ENV, str(tmp_path / "cache"))


def invoke(*args) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


# --- reading ----------------------------------------------------------------------------------------------


def test_a_folder_with_train_and_test_reads_classes_from_the_folder_names(tmp_path):
    root = write_folder(tmp_path / "shapes", per_class=4, split=True)

    splits = data.load(make_cfg(root), seed=0)

    assert splits.class_names == ("circle", "cross", "zero")
    assert splits.input_shape == (8, 8, 1) and splits.is_image
    assert len(splits.test.y) == 12 and len(splits.train.y) + len(splits.val.y) == 12
    np.testing.assert_array_equal(np.bincount(splits.test.y), [4, 4, 4])
    # Label 0 is "circle", the digit 1: its test images are the digits' own pixels, scaled once.
    expected = np.stack(digit_images(1, 4, offset=4)).astype(np.float32) / 255
    stored = splits.test.x[splits.test.y == 0]
    assert stored.dtype == np.uint8 and splits.test.scale == 255  # bytes, divided in the compiled step
    np.testing.assert_array_equal(scaled(stored, splits.test.scale)[..., 0], expected)


def test_the_reader_returns_bytes(tmp_path):
    source = folder.read_folder(make_cfg(write_folder(tmp_path / "f", split=True)))
    assert source.x_train.dtype == np.uint8 and source.x_train.shape == (18, 8, 8, 1)


def test_without_test_folder_a_stratified_hold_out_that_no_seed_moves(tmp_path):
    root = write_folder(tmp_path / "shapes", per_class=10)

    a, b = data.load(make_cfg(root), seed=0), data.load(make_cfg(root), seed=5)

    np.testing.assert_array_equal(np.bincount(a.test.y), [2, 2, 2])  # 0.2 of each class of 10
    np.testing.assert_array_equal(a.test.x, b.test.x)
    assert not np.array_equal(a.val.x, b.val.x) or not np.array_equal(a.train.x, b.train.x)
    third = data.load(make_cfg(root, test=0.5), seed=0)
    np.testing.assert_array_equal(np.bincount(third.test.y), [5, 5, 5])


def test_colour_is_what_the_images_are_unless_set(tmp_path):
    gray = write_folder(tmp_path / "gray", split=True)
    rgb = write_folder(tmp_path / "rgb", split=True, rgb=True)
    # An RGB file of gray pixels is still colour: "what the images are" is the file's mode.
    assert data.load(make_cfg(gray), 0).input_shape == (8, 8, 1)
    assert data.load(make_cfg(rgb), 0).input_shape == (8, 8, 3)
    assert data.load(make_cfg(rgb, color="grayscale"), 0).input_shape == (8, 8, 1)
    assert data.load(make_cfg(gray, color="rgb"), 0).input_shape == (8, 8, 3)
    # One colour image among gray ones makes the whole folder rgb; the gray ones get 3 equal channels.
    Image.new("RGB", (8, 8), (255, 0, 0)).save(gray / "train" / "zero" / "red.png")
    splits = data.load(make_cfg(gray, validation=0.1), 0)
    assert splits.input_shape == (8, 8, 3)


def test_jpg_bmp_and_gif_decode_too(tmp_path):
    root = tmp_path / "mixed"
    for name, ext in (("a", "jpg"), ("b", "bmp"), ("c", "gif")):
        (root / name).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(np.full((8, 8), 50 * i, np.uint8)).save(root / name / f"{i}.{ext}")
    splits = data.load(make_cfg(root), 0)
    assert splits.class_names == ("a", "b", "c") and splits.input_shape == (8, 8, 1)


def test_image_size_resizes(tmp_path):
    root = write_folder(tmp_path / "f", split=True)
    Image.new("L", (12, 10)).save(root / "train" / "zero" / "big.png")
    splits = data.load(make_cfg(root, image_size=(6, 5)), 0)
    assert splits.input_shape == (6, 5, 1)


# --- the cache --------------------------------------------------------------------------------------------


def test_the_cache_is_reused_and_rebuilt_when_a_file_changes(tmp_path, monkeypatch):
    root = write_folder(tmp_path / "f", split=True)
    first = data.load(make_cfg(root), 0)
    entries = list((tmp_path / "cache").rglob("*.npy"))
    assert len(entries) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although the cache holds the images")

    with monkeypatch.context() as patch:
        patch.setattr(image_cache, "decode_files", no_decoding)
        again = data.load(make_cfg(root), 0)
    np.testing.assert_array_equal(first.train.x, again.train.x)
    assert first.sha256 == again.sha256

    changed = root / "test" / "zero" / "zero_00.png"
    Image.fromarray(np.full((8, 8), 255, np.uint8)).save(changed)
    os.utime(changed, ns=(1, 1))  # a new modification time, whatever the clock's resolution
    rebuilt = data.load(make_cfg(root), 0)
    assert rebuilt.test.x[rebuilt.test.y == 2].max() == 255 and rebuilt.sha256 != first.sha256
    assert [e.name for e in (tmp_path / "cache").rglob("*.npy")] != [entries[0].name]
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 1  # the stale entry is gone
    # Other decode options are another entry beside it.
    data.load(make_cfg(root, image_size=(4, 4)), 0)
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 2


def test_the_cache_defaults_to_a_hidden_folder_inside_the_data(tmp_path, monkeypatch):
    monkeypatch.delenv(image_cache.CACHE_ENV)
    root = write_folder(tmp_path / "f", split=True)
    data.load(make_cfg(root), 0)
    assert len(list((root / image_cache.CACHE_FOLDER).glob("*.npy"))) == 1
    data.load(make_cfg(root), 0)  # the cache folder itself is no class
    assert folder.scan_layout(root).class_names == CLASSES


def test_a_damaged_cache_entry_is_rebuilt(tmp_path):
    root = write_folder(tmp_path / "f", split=True)
    first = data.load(make_cfg(root), 0)
    (entry,) = (tmp_path / "cache").rglob("*.npy")
    entry.write_bytes(entry.read_bytes()[:100])
    np.testing.assert_array_equal(data.load(make_cfg(root), 0).train.x, first.train.x)


def _load_in_worker(root: str) -> bytes:
    layout = folder.scan_layout(root)
    return image_cache.load_images(layout.root, layout.train_files).tobytes()


def test_workers_loading_at_once_share_one_whole_entry(tmp_path):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    root = write_folder(tmp_path / "f", split=True)
    context = multiprocessing.get_context("spawn")  # the environment (cache folder) goes with them
    with ProcessPoolExecutor(3, mp_context=context) as pool:
        results = list(pool.map(_load_in_worker, [str(root)] * 3))
    assert results[0] == results[1] == results[2] == _load_in_worker(str(root))
    assert [p.suffix for p in (tmp_path / "cache").rglob("*") if p.is_file()] == [".npy"]


def test_the_process_pool_decodes_the_same_pixels(tmp_path, monkeypatch):
    root = write_folder(tmp_path / "f", per_class=6, split=True)
    files = folder.scan_layout(root).train_files
    in_process = image_cache.decode_files(files)
    monkeypatch.setattr(image_cache, "POOL_MIN_FILES", 4)
    monkeypatch.setattr(image_cache, "_cores", lambda: 2)
    np.testing.assert_array_equal(image_cache.decode_files(files), in_process)


# --- bad input --------------------------------------------------------------------------------------------


def load_error(root, **changes) -> str:
    with pytest.raises(DataError) as error:
        data.load(make_cfg(root, **changes), 0)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_a_truncated_image_is_named(tmp_path):
    root = write_folder(tmp_path / "f", split=True)
    bad = root / "train" / "cross" / "cross_03.png"
    bad.write_bytes(bad.read_bytes()[:60])
    message = load_error(root)
    assert str(bad) in message and "corrupt or truncated" in message


def test_a_file_that_is_not_an_image_is_named(tmp_path):
    root = write_folder(tmp_path / "f", split=True)
    (root / "train" / "zero" / "notes.txt").write_text("not a picture")
    message = load_error(root)
    assert str(root / "train" / "zero" / "notes.txt") in message and "not an image" in message
    (root / "train" / "zero" / "notes.txt").unlink()
    fake = root / "test" / "zero" / "fake.png"
    fake.write_text("not a picture either")
    message = load_error(root)
    assert str(fake) in message and "not an image" in message


def test_an_empty_class_folder_is_named(tmp_path):
    root = write_folder(tmp_path / "f")
    (root / "empty").mkdir()
    message = load_error(root)
    assert str(root / "empty") in message and "empty class folder" in message


def test_a_single_class_is_an_error(tmp_path):
    root = tmp_path / "one"
    (root / "only").mkdir(parents=True)
    Image.new("L", (8, 8)).save(root / "only" / "a.png")
    message = load_error(root)
    assert str(root) in message and "single class (only)" in message


def test_a_missing_folder_is_named(tmp_path):
    message = load_error(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in message and "no such folder" in message


def test_different_sizes_without_image_size_name_two_files_and_sizes(tmp_path):
    root = write_folder(tmp_path / "f", split=True)
    Image.new("L", (12, 10)).save(root / "train" / "zero" / "big.png")
    message = load_error(root)
    assert str(root / "train" / "zero" / "big.png") in message and "12x10" in message
    assert str(root / "train" / "circle" / "circle_00.png") in message and "8x8" in message
    assert "data.image_size" in message


def test_a_test_class_that_train_lacks_is_named(tmp_path):
    root = write_folder(tmp_path / "f", split=True)
    (root / "test" / "extra").mkdir()
    Image.new("L", (8, 8)).save(root / "test" / "extra" / "a.png")
    message = load_error(root)
    assert str(root / "test" / "extra") in message and "'extra' is not a class" in message


def test_bad_folder_in_train_is_one_line_exit_2_and_leaves_no_run(tmp_path):
    root = write_folder(tmp_path / "f", split=True)
    bad = root / "train" / "cross" / "cross_01.png"
    bad.write_bytes(bad.read_bytes()[:60])
    raw = tiny_config(tmp_path, data={"name": "folder", "path": str(root), "validation": 1})
    result = invoke("train", write_config(tmp_path, raw))
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "data.path" in line and str(bad) in line
    assert not (tmp_path / "runs").exists()


VALIDATE = """
import json, sys
from typer.testing import CliRunner
from latentprobe.cli import app
runner = CliRunner()
codes = [runner.invoke(app, ["validate", p]) for p in sys.argv[1:]]
heavy = [m for m in ("tensorflow", "keras", "PIL.Image") if m in sys.modules]
print(json.dumps({"codes": [c.exit_code for c in codes], "out": [c.output for c in codes], "heavy": heavy}))
"""


def test_validate_checks_the_layout_without_tensorflow_or_decoding(tmp_path):
    good = write_folder(tmp_path / "good", split=True)
    bad = write_folder(tmp_path / "bad", split=True)
    (bad / "train" / "zero" / "notes.txt").write_text("x")
    configs = []
    for root in (good, bad):
        raw = tiny_config(tmp_path, data={"name": "folder", "path": str(root)})
        configs.append(write_config(tmp_path, raw, f"{root.name}.yaml"))
    raw = tiny_config(
        tmp_path, data={"name": "folder", "path": str(good), "unlabeled": str(tmp_path / "nil")}
    )
    configs.append(write_config(tmp_path, raw, "nil.yaml"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", VALIDATE, *map(str, configs)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["codes"] == [0, 2, 2], report["out"]
    assert "notes.txt: not an image" in report["out"][1] and "bad.yaml" in report["out"][1]
    assert "data.unlabeled" in report["out"][2] and "no such folder" in report["out"][2]
    assert report["heavy"] == []


# --- unlabeled examples -----------------------------------------------------------------------------------


def write_unlabeled(root: Path, count: int = 10, value: int = 77) -> Path:
    """Unlabeled images in nested folders, every pixel ``value`` (no labeled digit image is constant)."""
    for i in range(count):
        sub = root / ("a" if i % 2 else "b/c")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8), value, np.uint8)).save(sub / f"{i}.png")
    return root


def scaled(x: np.ndarray, scale: float) -> np.ndarray:
    """Stored inputs (uint8 images stay bytes) as the networks see them."""
    return pixels.scale_array(np.asarray(x), scale)


def constant_rows(x: np.ndarray, value: float) -> int:
    return int(np.all(np.isclose(x.reshape(len(x), -1), value), axis=1).sum())


def test_unlabeled_folder_never_enters_labeled_val_or_test(tmp_path):
    root = write_folder(tmp_path / "f", per_class=10)
    unlabeled = write_unlabeled(tmp_path / "more", count=10)

    splits = data.load(make_cfg(root, unlabeled=str(unlabeled), labels=6), seed=0)

    assert splits.unlabeled.shape == (10, 8, 8, 1) and splits.unlabeled.dtype == splits.train.x.dtype
    assert constant_rows(scaled(splits.unlabeled, splits.train.scale), 77 / 255) == 10
    for part in (splits.train, splits.val, splits.test):
        assert constant_rows(scaled(part.x, part.scale), 77 / 255) == 0
    assert len(splits.train.y) + len(splits.val.y) + len(splits.test.y) == 30
    assert splits.labeled_idx.max() < len(splits.train.y)


def test_x_unlabeled_in_the_npz_and_an_unlabeled_npz_add_up(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 200, (30, 4, 4), dtype=np.uint8),
        "y_train": np.arange(30) % 3,
        "x_test": rng.integers(0, 200, (9, 4, 4), dtype=np.uint8),
        "y_test": np.arange(9) % 3,
    }
    np.savez(tmp_path / "plain.npz", **arrays)
    np.savez(tmp_path / "d.npz", **arrays, x_unlabeled=np.full((7, 4, 4), 255, np.uint8))
    np.savez(tmp_path / "u.npz", x_unlabeled=np.full((5, 4, 4), 255, np.uint8))
    cfg = make_cfg(tmp_path / "d.npz", name="npz", unlabeled=str(tmp_path / "u.npz"))

    splits = data.load(cfg, 0)

    assert splits.unlabeled.shape == (12, 4, 4, 1)
    assert constant_rows(scaled(splits.unlabeled, splits.train.scale), 1.0) == 12
    for part in (splits.train, splits.val, splits.test):
        assert constant_rows(scaled(part.x, part.scale), 1.0) == 0
    plain = data.load(make_cfg(tmp_path / "plain.npz", name="npz"), 0)
    assert plain.unlabeled.shape == (0, 4, 4, 1) and plain.sha256 != splits.sha256
    assert plain.sha256 == data.hash_arrays(*(arrays[k] for k in data.KEYS))


def test_an_unlabeled_folder_beside_float_arrays_is_scaled_as_bytes(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.random((30, 8, 8), dtype=np.float32),  # pixels in [0, 1]
        "y_train": np.arange(30) % 3,
        "x_test": rng.random((9, 8, 8), dtype=np.float32),
        "y_test": np.arange(9) % 3,
    }
    np.savez(tmp_path / "d.npz", **arrays)
    unlabeled = write_unlabeled(tmp_path / "more", count=4, value=255)

    splits = data.load(make_cfg(tmp_path / "d.npz", name="npz", unlabeled=str(unlabeled)), 0)

    # The folder's bytes cannot share the float arrays' encoding: every part float32 in [0, 1].
    assert splits.unlabeled.dtype == np.float32 and splits.train.scale == 1.0
    assert splits.unlabeled.shape == (4, 8, 8, 1) and constant_rows(splits.unlabeled, 1.0) == 4
    np.testing.assert_array_equal(splits.test.x[..., 0], arrays["x_test"])  # still divided by 1
    np.savez(tmp_path / "u.npz", x_unlabeled=np.full((2, 8, 8), 255, np.uint8))
    message = load_error(tmp_path / "d.npz", name="npz", unlabeled=str(tmp_path / "u.npz"))
    assert "x_unlabeled has dtype uint8 but x_train float32" in message


def test_unlabeled_of_another_shape_is_named(tmp_path):
    root = write_folder(tmp_path / "f", split=True)
    np.savez(tmp_path / "u.npz", x_unlabeled=np.zeros((3, 5, 5), np.uint8))
    message = load_error(root, unlabeled=str(tmp_path / "u.npz"))
    assert str(tmp_path / "u.npz") in message and "(5, 5)" in message
    message = load_error(root, unlabeled=str(tmp_path / "missing"))
    assert "missing" in message


@pytest.mark.parametrize(
    "model", [{"kind": "ae"}, {"kind": "aae", "aae": {"semi_supervised": True, "discriminator_hidden": [8]}}]
)
def test_the_autoencoder_trains_on_the_unlabeled_too_and_the_probe_never(tmp_path, model):
    from latentprobe import config as config_mod
    from latentprobe.components import build_components

    root = write_folder(tmp_path / "f", per_class=10)
    unlabeled = write_unlabeled(tmp_path / "more", count=14)
    data_cfg = {"name": "folder", "path": str(root), "unlabeled": str(unlabeled)}
    raw = tiny_config(tmp_path, data=data_cfg, model=model)
    cfg = config_mod.load(write_config(tmp_path, raw))
    splits = data.load(cfg.data, cfg.seed)

    strategy = build_components(cfg, splits).strategy

    assert strategy.n == len(splits.train.y) + 14
    # Every train example is labeled, yet the autoencoder's batches are not all labeled: no shared batch.
    assert len(splits.labeled_idx) == len(splits.train.y) and not strategy.shares_batches
    stored = scaled(strategy.x.numpy(), splits.train.scale)
    assert constant_rows(stored[strategy.labeled_idx], 77 / 255) == 0
    assert constant_rows(stored, 77 / 255) == 14
    assert (strategy.y.numpy()[len(splits.train.y) :] == -1).all()
    # The semi-supervised AAE's labeled batches come from the labeled subset; its other batches from all.
    assert strategy.labeled_batches(50).max() < len(splits.train.y)
    assert strategy.ae_batches().max() >= len(splits.train.y)


def test_train_on_a_folder_with_unlabeled_counts_them_in_the_summary(tmp_path):
    root = write_folder(tmp_path / "f", per_class=8, split=True)
    unlabeled = write_unlabeled(tmp_path / "more", count=9)
    data_cfg = {"name": "folder", "path": str(root), "unlabeled": str(unlabeled), "validation": 3}
    raw = tiny_config(tmp_path, data=data_cfg, model={"latent": 2}, train={"epochs": 1, "batch_size": 8})
    result = invoke("train", write_config(tmp_path, raw))
    assert result.exit_code == 0, result.output
    (summary_path,) = (tmp_path / "runs").rglob(rundir.SUMMARY)
    described = json.loads(summary_path.read_text())["data"]
    assert described["unlabeled"] == 9 and described["sizes"] == {"train": 21, "val": 3, "test": 24}


@pytest.mark.parametrize(
    ("data_section", "words"),
    [
        ({"name": "npz", "path": "{folder}"}, "data.path: {folder}: a folder, not an .npz file"),
        (
            {"name": "npz", "path": "{partial}"},
            "data.path: {partial}: missing key(s) y_train, x_test, y_test",
        ),
        (
            {"name": "digits", "unlabeled": "{partial}"},
            "data.unlabeled: {partial}: missing key(s) x_unlabeled",
        ),
    ],
    ids=["folder-as-npz", "npz-without-keys", "unlabeled-npz-without-key"],
)
def test_validate_finds_a_data_file_that_train_would_reject(tmp_path, data_section, words):
    """What the issue saw: an npz config naming a folder passed validate and failed in train 10 s later."""
    (tmp_path / "images" / "a").mkdir(parents=True)
    np.savez(tmp_path / "partial.npz", x_train=np.zeros((3, 4)))
    names = {"folder": str(tmp_path / "images"), "partial": str(tmp_path / "partial.npz")}
    section = {key: value.format(**names) for key, value in data_section.items()}
    raw = tiny_config(tmp_path, data=section)
    if section["name"] != "digits":
        raw["data"].pop("validation", None)
    result = CliRunner().invoke(app, ["validate", str(write_config(tmp_path, raw))])
    assert result.exit_code == 2, result.output
    assert words.format(**names) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
