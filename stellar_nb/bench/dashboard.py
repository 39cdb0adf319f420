"""``stellar-nb bench dashboard``: the dashboard's speed and memory, measured in Chromium.

Serves the dashboard with Voila on loopback, with the shipped settings
(``stellar_nb/resources/voila/voila.json``: preheated kernel pool, shutdown on tab close, idle
culling), and drives Debian's Chromium through Playwright (``/usr/bin/chromium`` by default; no
browser download), as a class would:

- **page load**: ``--loads`` visits, each to a preheated kernel (the benchmark waits for the
  pool to be full), timed on the page's own clock from navigation to the first prediction shown
  and to the plots drawn;
- **new spectrum**: ``--updates`` test stars picked by id, and as many uploads of test stars'
  FITS files, timed on the page's clock from the click (or the file's arrival) to the plots
  redrawn, beside the kernel's part (the analysis and the figure updates, as the status line
  reports it);
- **visitors together**: ``--visitors`` pages opened at once; each one's seconds from its
  navigation to its first prediction;
- **many visits**: ``--visits`` more visits one after the other, each tab closed as a user
  closes it (its ``beforeunload`` runs, so Voila's shutdown request is sent); then the resident
  memory of the server with every kernel, the kernels left, and the shutdown requests refused;
- **kernel memory**: resident memory of each kernel;
- side by side, in the same browser: evaluating plotly.js's full bundle (shipped by the plotly
  package, what ``FigureWidget`` loads once per figure) against the basic bundle the dashboard
  loads once per page.

Goals (issue 14): 10 visitors together each see a prediction within 15 s; after 30 visits, the
server with its kernels under 1.5 GB and each kernel under 250 MB; a new spectrum redrawn in
under 0.3 s (median); a first page load with a warm pool under 2 s. Timings depend on the machine
and its load; compare figures from one run.
"""

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = [
    "CHROMIUM",
    "kernel_memory_mb",
    "leave",
    "measure",
    "pool_size",
    "server_memory_mb",
    "stop",
    "voila_server",
    "wait_for_pool",
]

CHROMIUM = Path("/usr/bin/chromium")
#: JavaScript: count each plot's redraws (plotly_afterplot) from now on.
_WATCH = """() => {
  window.stellarDraws = new Map();
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    window.stellarDraws.set(plot, 0);
    plot.on('plotly_afterplot', () => window.stellarDraws.set(plot, window.stellarDraws.get(plot) + 1));
  }
}"""
#: JavaScript: the page clock (ms) once the status names ``text`` and every plot has redrawn.
_UPDATED = """text => {
  const status = document.querySelector('.stellar-status');
  const drawn = [...window.stellarDraws.values()].every(count => count > 0);
  return status && status.textContent.includes(text) && drawn ? performance.now() : false;
}"""
#: JavaScript: the page clock (ms) once the three plotly plots are drawn.
_PLOTS = (
    "() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 6 && performance.now()"
)
#: JavaScript: click the Load button; the page clock (ms) at the click.
_CLICK = """() => {
  const start = performance.now();
  document.querySelector('button.stellar-load').click();
  return start;
}"""
#: JavaScript: the page clock (ms) once the first prediction is shown, else false.
_PREDICTION = "() => document.querySelector('.stellar-prediction') !== null && performance.now()"
#: JavaScript: milliseconds to evaluate a script's source.
_EVALUATE = """source => {
  const start = performance.now();
  const script = document.createElement('script');
  script.textContent = source;
  document.head.appendChild(script);
  return performance.now() - start;
}"""


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def voila_server(config, survey, model_dir=None, *, timeout=300):
    """Serve the dashboard on a free loopback port with the shipped settings; yields
    ``(url, process, log_path)``."""
    from stellar_nb.dashboard import serve

    port = _free_port()
    command = serve.voila_command(serve.notebook_path(config.data_home), port=port, ip="127.0.0.1")
    environment = serve.voila_environment(config, survey, model_dir=model_dir)
    with tempfile.TemporaryDirectory(prefix="stellar-nb-bench-") as folder:
        log_path = Path(folder) / "voila.log"
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                command, env=environment, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"Voila exited with {process.returncode}:\n{log_path.read_text()[-2000:]}"
                    )
                with contextlib.suppress(OSError):
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Voila did not listen on port {port} in {timeout} s")
                time.sleep(0.3)
            yield f"http://127.0.0.1:{port}/", process, log_path
        finally:
            stop(process)


def stop(process):
    """Stop a server started in its own session, and its kernels: SIGTERM, then SIGKILL after 20 s."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def pool_size():
    """Voila's preheated kernel pool size in the shipped ``voila.json``."""
    from stellar_nb.dashboard import serve

    settings = json.loads((serve.VOILA_CONFIG_DIR / "voila.json").read_text())
    return int(settings["VoilaConfiguration"]["default_pool_size"])


def wait_for_pool(process, kernels, timeout=300):
    """Wait until the server runs at least ``kernels`` kernels and every one is idle (the
    preheated ones have run the notebook); return the number of kernels."""
    import psutil

    deadline = time.monotonic() + timeout
    idle = 0
    while idle < 3:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{kernels} idle kernels were not ready within {timeout} s")
        running = _kernels(process)
        try:
            for kernel in running:
                kernel.cpu_percent()
            time.sleep(0.5)
            busy = any(kernel.cpu_percent() > 5 for kernel in running)
        except psutil.NoSuchProcess:  # a kernel shut down meanwhile: look again
            busy = True
        idle = 0 if busy or len(running) < kernels else idle + 1
    return len(running)


def server_memory_mb(process):
    """Resident memory (MB) of the server and everything it started (its kernels)."""
    import psutil

    server = psutil.Process(process.pid)
    total = 0
    for member in [server, *server.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += member.memory_info().rss
    return total / 2**20


def _kernels(process):
    import psutil

    kernels = []
    for child in psutil.Process(process.pid).children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):  # one that ended meanwhile
            if "ipykernel" in " ".join(child.cmdline()):
                kernels.append(child)
    return kernels


def kernel_memory_mb(process):
    """Resident memory (MB) of each of the server's kernels, sorted."""
    import psutil

    memory = []
    for kernel in _kernels(process):
        with contextlib.suppress(psutil.NoSuchProcess):
            memory.append(kernel.memory_info().rss / 2**20)
    return sorted(memory)


def _bundle_seconds(browser):
    """Seconds to evaluate plotly.js's full bundle and the shipped basic bundle, in fresh pages."""
    bundles = {
        "full": resources.files("plotly") / "package_data" / "plotly.min.js",
        "basic": resources.files("stellar_nb") / "resources" / "plotly" / "plotly-basic.min.js",
    }
    seconds = {}
    for name, path in bundles.items():
        page = browser.new_page()
        seconds[name] = page.evaluate(_EVALUATE, path.read_text()) / 1000
        page.close()
    return seconds


def _page_clock(page, script, arg=None, timeout=180_000):
    return page.wait_for_function(script, arg=arg, timeout=timeout).json_value() / 1000


def leave(page):
    """Leave the dashboard as a user closing its tab does: the page unloads (Voila's
    ``beforeunload`` sends the kernel's shutdown request), then the tab closes.

    Playwright's ``close(run_before_unload=True)`` runs the handler but headless Chromium drops
    the request as the tab goes (measured: the kernel stays), so the page first navigates away.
    """
    page.goto("about:blank")
    page.close()


def _visitors_together(browser, url, visitors, timeout=240):
    """Open ``visitors`` pages at once; seconds from each one's navigation to its prediction."""
    pages = [browser.new_page(viewport={"width": 1280, "height": 800}) for _ in range(visitors)]
    for page in pages:
        page.goto(url, wait_until="commit", timeout=timeout * 1000)
    seconds = [None] * visitors
    deadline = time.monotonic() + timeout
    while any(value is None for value in seconds) and time.monotonic() < deadline:
        for i, page in enumerate(pages):
            if seconds[i] is None:
                with contextlib.suppress(Exception):  # a page still navigating has no context
                    seconds[i] = page.evaluate(_PREDICTION) or None
        time.sleep(0.2)
    for page in pages:
        leave(page)
    return [float("nan") if value is None else value / 1000 for value in seconds]


def _time_update(page, start_script, text, arg=None):
    """Seconds on the page's clock from ``start_script`` to the status naming ``text`` and every
    plot redrawn, and the kernel's part as the status line reports it."""
    page.evaluate(_WATCH)
    start = page.evaluate(start_script, arg)
    done = page.wait_for_function(_UPDATED, arg=text, timeout=60_000).json_value()
    status = page.locator(".stellar-status").inner_text()
    kernel_ms = re.search(r"updated in (\d+) ms", status)
    return (done - start) / 1000, int(kernel_ms.group(1)) / 1000


def measure(
    config, survey, model_dir=None, *, loads=3, updates=5, visitors=10, visits=30,
    chromium=CHROMIUM,
):  # fmt: skip
    """Run the measurements; returns a dict of lists (seconds, MB), counts and the bundle comparison.

    Raises
    ------
    FileNotFoundError
        If ``chromium`` is missing.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        raise ImportError(
            "stellar-nb bench dashboard drives Chromium through Playwright: pip install playwright"
        ) from error

    from stellar_nb import model_directory
    from stellar_nb.dashboard import survey_cache
    from stellar_nb.data import spec_lite

    if not Path(chromium).is_file():
        raise FileNotFoundError(
            f"{chromium}: Chromium not found (Debian: apt-get install chromium)"
        )
    model = model_directory.load(model_dir)
    cache = survey_cache.build_survey_cache(survey, model, config.dashboard_cache_dir)
    picks = np.random.default_rng(1).choice(len(cache.test), 2 * updates, replace=False)
    stars = cache.test.spec_id.astype(str).to_numpy()[picks[:updates]]
    pool = pool_size()
    result = {"load_prediction": [], "load_plots": [], "update": [], "update_kernel": [],
              "upload": [], "upload_kernel": [], "pool_size": pool}  # fmt: skip
    with (
        tempfile.TemporaryDirectory(prefix="stellar-nb-bench-files-") as folder,
        voila_server(config, survey, model_dir) as (url, process, log_path),
        sync_playwright() as playwright,
    ):
        uploads = [
            spec_lite.write_spectrum(Path(folder) / f"spec-upload-{i}.fits", cache.star(int(row)))
            for i, row in enumerate(picks[updates:])
        ]
        browser = playwright.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        for visit in range(loads):
            wait_for_pool(process, pool)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url)
            result["load_prediction"].append(_page_clock(page, _PREDICTION))
            result["load_plots"].append(_page_clock(page, _PLOTS))
            if visit == loads - 1:
                for spec_id in stars:
                    page.get_by_placeholder("spec_id of a test star").fill(spec_id)
                    page.evaluate("document.activeElement.blur()")  # the widget syncs the id
                    seconds, kernel = _time_update(page, _CLICK, spec_id)
                    result["update"].append(seconds)
                    result["update_kernel"].append(kernel)
                for path in uploads:
                    page.evaluate(_WATCH)
                    start = page.evaluate("performance.now()")
                    page.locator("input.stellar-upload-input").set_input_files(str(path))
                    done = page.wait_for_function(
                        _UPDATED, arg=f"showing {path.name}", timeout=60_000
                    )
                    result["upload"].append((done.json_value() - start) / 1000)
                    status = page.locator(".stellar-status").inner_text()
                    kernel_ms = re.search(r"updated in (\d+) ms", status)
                    result["upload_kernel"].append(int(kernel_ms.group(1)) / 1000)
                result["kernel_memory_mb"] = kernel_memory_mb(process)
            leave(page)
        wait_for_pool(process, pool)
        result["visitors"] = _visitors_together(browser, url, visitors)
        for _ in range(visits):
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url)
            page.wait_for_selector(".stellar-prediction", timeout=180_000)
            leave(page)
        result["visits"] = loads + visitors + visits
        time.sleep(3)  # the last shutdown requests
        result["kernels_after"] = wait_for_pool(process, pool)
        result["server_memory_mb"] = server_memory_mb(process)
        result["kernel_memory_after_mb"] = kernel_memory_mb(process)
        log = log_path.read_text()
        result["shutdowns_refused"] = log.count("403 POST")
        result["shutdowns"] = log.count("Kernel shutdown:")
        result["bundle_seconds"] = _bundle_seconds(browser)
        browser.close()
    return result
