"""Screenshots of TensorBoard on latentprobe runs: custom scalars, HParams, images and the projector.

Starts a real ``tensorboard`` on LOGDIR (a run directory or any directory holding runs) on a free port
of 127.0.0.1, opens it in headless Chromium through Selenium and saves one PNG per dashboard into
``--out``: ``tensorboard_custom_scalars.png``, ``tensorboard_hparams.png``, ``tensorboard_images.png``,
``tensorboard_projector.png``. Every shot waits for what it shows (chart lines drawn, table rows
filled, images decoded, projector points loaded), not for a fixed time; a dashboard that does not get
there within ``--timeout`` seconds fails the script with the page's state in the message.

TensorBoard is started with ``--samples_per_plugin images=1000`` (every epoch's reconstruction grid),
as the README tells users to. What the script sets, as a user would: custom scalars with smoothing 0,
"Ignore outliers in chart scaling" unticked (so each curve shows its step 0, the untrained model) and
each chart's "Matches" list open (which run and split each colour and marker is); HParams with the
hyperparameters that do not differ between the runs unticked, so the metric columns fit; images
filtered to ``test/reconstructions``; the projector on ``--projector-run`` (default: the first run
with projector data) coloured by label. Shots are ``--size`` (default 1400x800, cut where the page
ends early), saved with at most 256 colours.

Needs Selenium (``pip install selenium``), Chromium and its driver (Debian: ``apt-get install
chromium chromium-driver``). Usage::

    python scripts/tensorboard_screenshots.py runs/alternating-probe-mnist --out docs/img
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

#: Headless Chromium flags that work in a container without a display, a GPU or network access.
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)

#: Images TensorBoard keeps per tag and run: every epoch's reconstruction grid. Its default is 10; 0
#: keeps none (checked with TensorBoard 2.21, both data loaders).
IMAGE_SAMPLES = 1000

#: ``querySelectorAll`` that also searches every open shadow root (TensorBoard's Polymer dashboards
#: live in them); arguments[0] is the CSS selector, arguments[1] an optional root element.
DEEP_QUERY = """
const deep = (root, selector, out) => {
  root.querySelectorAll(selector).forEach((e) => out.push(e));
  root.querySelectorAll('*').forEach((e) => { if (e.shadowRoot) deep(e.shadowRoot, selector, out); });
  return out;
};
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read().decode("utf-8"))


@contextlib.contextmanager
def tensorboard(logdir: Path, log_path: Path, timeout: float) -> Iterator[str]:
    """A real TensorBoard over ``logdir`` on a free port; yields its URL once it lists a run."""
    port = free_port()
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--samples_per_plugin", f"images={IMAGE_SAMPLES}"]
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if server.poll() is not None:
                raise SystemExit(f"tensorboard exited with {server.returncode}:\n{log_path.read_text()}")
            with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
                if get_json(f"{url}/data/runs"):
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"tensorboard listed no run of {logdir} in {timeout:.0f} s")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


@contextlib.contextmanager
def chromium(width: int, height: int, chromium_path: str, driver_path: str) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = chromium_path
    profile = tempfile.mkdtemp(prefix="tb-screenshots-chromium-")
    for flag in (*CHROME_FLAGS, f"--window-size={width},{height}", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        # The screenshot is the viewport: make it exactly width x height at one pixel per CSS pixel.
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver: webdriver.Chrome, timeout: float, what: str, script: str, *args: Any) -> Any:
    """Run ``script`` (with :data:`DEEP_QUERY`'s ``deep``) until it returns something truthy."""
    last: list[Any] = [None]

    def check(d: webdriver.Chrome) -> Any:
        last[0] = d.execute_script(DEEP_QUERY + script, *args)
        return last[0] if last[0] and not (isinstance(last[0], dict) and not last[0].get("ok")) else False

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.5).until(check)
    except TimeoutException:
        raise SystemExit(
            f"timed out after {timeout:.0f} s waiting for {what}; last state: {last[0]!r}"
        ) from None


def open_page(driver: webdriver.Chrome, url: str) -> None:
    """Load ``url`` afresh: TensorBoard is one page, and a dashboard seen before would stay in it."""
    driver.get("about:blank")
    driver.get(url)


def settle(driver: webdriver.Chrome, seconds: float = 1.0) -> None:
    """Let transitions finish after the awaited state holds (charts animate their first draw)."""
    time.sleep(seconds)


# ---- one function per dashboard ----


def shoot_custom_scalars(driver: webdriver.Chrome, url: str, out: Path, timeout: float) -> Path:
    """Custom scalars with smoothing 0 and "Ignore outliers in chart scaling" unticked."""
    open_page(driver, f"{url}/#custom_scalars&_smoothingWeight=0")
    wait_for(
        driver,
        timeout,
        "the custom-scalars dashboard",
        "return deep(document, 'tf-custom-scalar-dashboard', [])[0];",
    )
    # The checkbox's state lives in the browser's local storage, not in the URL: untick it as a user would.
    driver.execute_script(
        DEEP_QUERY + "deep(document, 'tf-custom-scalar-dashboard', [])[0]._ignoreYOutliers = false;"
    )
    wait_for(
        driver,
        timeout,
        "the custom-scalars charts to draw their lines",
        """
        const cards = deep(document, 'tf-custom-scalar-multi-line-chart-card', []);
        const lines = cards.map((c) => deep(c.shadowRoot || c, 'path.line', [])
            .filter((p) => (p.getAttribute('d') || '').length > 20).length);
        const box = deep(document, 'tf-custom-scalar-dashboard', [])[0];
        return {ok: cards.length >= 2 && lines.every((n) => n >= 2) && box._ignoreYOutliers === false,
                cards: cards.length, lines: lines};
        """,
    )
    # Open each chart's "Matches" list: it names the run and tag behind each colour and marker.
    driver.execute_script(
        DEEP_QUERY
        + """
        deep(document, 'tf-custom-scalar-multi-line-chart-card', [])
            .forEach((card) => card.set('_matchesListOpened', true));
        """
    )
    settle(driver)
    # Cut the empty space below the charts and the run list.
    bottom = driver.execute_script(
        DEEP_QUERY
        + """
        const parts = [deep(document, 'tf-category-paginated-view', [])[0],
                       deep(document, 'tf-runs-selector', [])[0]];
        return Math.max(0, ...parts.filter((e) => e).map((e) => e.getBoundingClientRect().bottom));
        """
    )
    height = int(bottom) + 16 if bottom else None
    return save(driver, out / "tensorboard_custom_scalars.png", height=height)


def shoot_hparams(driver: webdriver.Chrome, url: str, out: Path, timeout: float, sessions: int) -> Path:
    """The HParams table with the hyperparameters that do not differ between the runs unticked, so the
    metric columns fit in the window."""
    open_page(driver, f"{url}/#hparams")
    wait_for(
        driver,
        timeout,
        "the HParams query pane",
        "const p = deep(document, 'tf-hparams-query-pane', [])[0]; return p && (p._hparams || []).length;",
    )
    driver.execute_script(
        DEEP_QUERY
        + """
        const pane = deep(document, 'tf-hparams-query-pane', [])[0];
        pane._hparams.forEach((h, i) => pane.set(`_hparams.${i}.displayed`, Boolean(h.info.differs)));
        """
    )
    wait_for(
        driver,
        timeout,
        f"the HParams table to list {sessions} sessions",
        """
        const cells = deep(document, 'vaadin-grid-cell-content', []).map((c) => c.textContent.trim());
        const named = cells.filter((t) => t.endsWith('/tb') || t === '.' || t === 'tb');
        return {ok: named.length >= arguments[0], named: named};
        """,
        sessions,
    )
    settle(driver)
    return save(driver, out / "tensorboard_hparams.png")


def shoot_images(driver: webdriver.Chrome, url: str, out: Path, timeout: float) -> Path:
    """The per-epoch reconstruction grids (tag filter ``test/reconstructions``) at the last epoch, each
    over its step slider; cut below them (eval's figures follow)."""
    open_page(driver, f"{url}/#images&tagFilter=test%2Freconstructions")
    state = wait_for(
        driver,
        timeout,
        "the reconstruction grids to load",
        """
        const loaders = deep(document, 'tf-image-loader', [])
            .filter((l) => (l.tag || '') === 'test/reconstructions');
        const shown = loaders.filter((l) => deep(l.shadowRoot || l, 'img', [])
            .some((i) => i.complete && i.naturalWidth > 0));
        // The category holding the grids (the tag filter's matches); per-prefix categories follow it.
        let category = loaders[0];
        while (category && category.tagName !== 'TF-CATEGORY-PAGINATED-VIEW') {
          category = category.parentNode || category.host;
        }
        const bottom = category ? category.getBoundingClientRect().bottom : 0;
        return {ok: loaders.length >= 1 && shown.length === loaders.length && bottom > 0,
                loaders: loaders.length, shown: shown.length, bottom: bottom};
        """,
    )
    settle(driver)
    return save(driver, out / "tensorboard_images.png", height=int(state["bottom"]) + 16)


def shoot_projector(driver: webdriver.Chrome, url: str, out: Path, timeout: float, run: str) -> Path:
    open_page(driver, f"{url}/#projector")
    # TensorBoard loads the projector in an iframe, which loads the projector itself in another.
    for depth in range(2):
        what = f"the projector's iframe ({depth + 1} of 2)"
        frame = wait_for(driver, timeout, what, "return deep(document, 'iframe', [])[0];")
        driver.switch_to.frame(frame)
    wait_for(
        driver,
        timeout,
        "the projector's data panel",
        "const p = deep(document, 'vz-projector-data-panel', [])[0]; return p && p.selectedRun ? p : null;",
    )
    driver.execute_script(
        DEEP_QUERY + "deep(document, 'vz-projector-data-panel', [])[0].selectedRun = arguments[0];", run
    )
    wait_for(
        driver,
        timeout,
        f"run {run!r}'s points in the projector",
        """
        const panel = deep(document, 'vz-projector-data-panel', [])[0];
        const variance = deep(document, '#total-variance', [])[0];
        const text = variance ? variance.textContent : '';
        const options = (panel.colorOptions || []).map((o) => o.name);
        return {ok: panel.selectedRun === arguments[0] && /[0-9.]+%/.test(text) && options.includes('label'),
                run: panel.selectedRun, variance: text, colorOptions: options};
        """,
        run,
    )
    driver.execute_script(
        DEEP_QUERY + "deep(document, 'vz-projector-data-panel', [])[0].selectedColorOptionName = 'label';"
    )
    settle(driver, 2.0)
    driver.switch_to.default_content()
    return save(driver, out / "tensorboard_projector.png")


def save(driver: webdriver.Chrome, path: Path, height: int | None = None) -> Path:
    """The viewport as a PNG of at most 256 colours (a third of the size, the same to the eye), cut
    to its top ``height`` pixels if given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    if height is not None:
        image = image.crop((0, 0, image.width, min(height, image.height)))
    image.quantize(colors=256).save(path, optimize=True)
    print(f"{path}  {image.width}x{image.height}  {path.stat().st_size // 1024} KiB")
    return path


def projector_runs(url: str) -> list[str]:
    return sorted(get_json(f"{url}/data/plugin/projector/runs"))


def hparams_sessions(url: str) -> int:
    request = urllib.request.Request(
        f"{url}/data/plugin/hparams/session_groups",
        data=json.dumps({"experimentName": "", "allowedStatuses": ["STATUS_UNKNOWN"]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(json.loads(response.read())["totalSize"])


DASHBOARDS: dict[str, Callable[..., Path]] = {
    "custom_scalars": shoot_custom_scalars,
    "hparams": shoot_hparams,
    "images": shoot_images,
    "projector": shoot_projector,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("logdir", type=Path, help="a run directory, or a directory holding runs")
    parser.add_argument("--out", type=Path, default=Path("docs/img"), help="where the PNGs go")
    parser.add_argument("--only", nargs="+", choices=sorted(DASHBOARDS), help="these dashboards only")
    parser.add_argument("--projector-run", help="the projector's run (default: the first with data)")
    parser.add_argument("--size", default="1400x800", help="window WIDTHxHEIGHT in px")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for each dashboard")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    args = parser.parse_args(argv)
    if not args.logdir.is_dir():
        parser.error(f"{args.logdir}: no such directory")
    width, height = (int(v) for v in args.size.lower().split("x"))
    wanted = args.only or sorted(DASHBOARDS)
    with tempfile.TemporaryDirectory(prefix="tb-screenshots-") as tmp:
        with tensorboard(args.logdir, Path(tmp) / "tensorboard.log", args.timeout) as url:
            with chromium(width, height, args.chromium, args.chromedriver) as driver:
                for name in wanted:
                    if name == "projector":
                        runs = projector_runs(url)
                        if not runs:
                            raise SystemExit(f"{args.logdir}: no projector data (run `latentprobe eval`)")
                        shoot_projector(driver, url, args.out, args.timeout, args.projector_run or runs[0])
                    elif name == "hparams":
                        shoot_hparams(driver, url, args.out, args.timeout, hparams_sessions(url))
                    else:
                        DASHBOARDS[name](driver, url, args.out, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
