"""``stellar-nb bench dashboard``: the dashboard's speed and memory, measured in Chromium.

Serves the dashboard with Voila on loopback and drives Debian's Chromium through Playwright
(``/usr/bin/chromium`` by default; no browser download), as a user would:

- **page load**: ``--loads`` visits, each to a freshly preheated kernel (Voila's pool is refilled
  and the benchmark waits for it), timed on the page's own clock from navigation to the first
  prediction shown and to both plots drawn;
- **new spectrum**: ``--updates`` test stars picked by id, timed on the page's clock from the
  click to both plots redrawn, beside the kernel's part (the analysis and the figure updates, as
  the status line reports it);
- **kernel memory**: resident memory of the dashboard's kernels;
- side by side, in the same browser: evaluating plotly.js's full bundle (shipped by the plotly
  package, what ``FigureWidget`` loads once per figure) against the basic bundle the dashboard
  loads once per page.

Goals (issue 7): page load under 3 s, new spectrum under 0.3 s, kernel under 300 MB. Timings
depend on the machine and its load; compare figures from one run.
"""

import contextlib
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
    "measure",
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
#: JavaScript: the page clock (ms) once two plotly plots are drawn.
_PLOTS = (
    "() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 4 && performance.now()"
)
#: JavaScript: click the Load button; the page clock (ms) at the click.
_CLICK = """() => {
  const start = performance.now();
  document.querySelector('button.stellar-load').click();
  return start;
}"""
#: Seconds Voila waits before refilling its kernel pool after a visit: long enough for a page load
#: to finish before the next kernel starts building the dashboard (the shipped setting is 30 s).
FILL_DELAY = 10
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
    """Serve the dashboard on a free loopback port; yields ``(url, process, log_path)``.

    The kernel pool refills :data:`FILL_DELAY` seconds after each visit, so that every visit of the
    benchmark can get a preheated kernel; :func:`wait_for_pool` waits for one.
    """
    from stellar_nb.dashboard import serve

    port = _free_port()
    command = serve.voila_command(serve.notebook_path(config.data_home), port=port, ip="127.0.0.1")
    command.append(f"--VoilaKernelManager.fill_delay={FILL_DELAY}")
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


def wait_for_pool(process, log_path, filled, timeout=300):
    """Wait until Voila has refilled its kernel pool (its log says so more than ``filled`` times)
    and the new kernel has run the notebook (every kernel idle); return the log's count.

    Voila logs the pool as filled when the kernel starts, before the notebook has run in it.
    """

    deadline = time.monotonic() + timeout
    while log_path.read_text().count("is filled with") <= filled:
        if time.monotonic() > deadline:
            raise RuntimeError(f"Voila's kernel pool was not refilled within {timeout} s")
        time.sleep(0.2)
    idle = 0
    while idle < 3:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the dashboard's kernels were still busy after {timeout} s")
        kernels = _kernels(process)
        for kernel in kernels:
            kernel.cpu_percent()
        time.sleep(0.5)
        busy = any(kernel.cpu_percent() > 5 for kernel in kernels)
        idle = 0 if busy or not kernels else idle + 1
    return log_path.read_text().count("is filled with")


def _kernels(process):
    import psutil

    return [
        child
        for child in psutil.Process(process.pid).children(recursive=True)
        if "ipykernel" in " ".join(child.cmdline())
    ]


def kernel_memory_mb(process):
    """Resident memory (MB) of each of the server's kernels, sorted."""
    return sorted(kernel.memory_info().rss / 2**20 for kernel in _kernels(process))


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


def measure(config, survey, model_dir=None, *, loads=3, updates=5, chromium=CHROMIUM):
    """Run the measurements; returns a dict of lists (seconds, MB) and the bundle comparison.

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

    if not Path(chromium).is_file():
        raise FileNotFoundError(
            f"{chromium}: Chromium not found (Debian: apt-get install chromium)"
        )
    model = model_directory.load(model_dir)
    cache = survey_cache.build_survey_cache(survey, model, config.dashboard_cache_dir)
    spec_ids = cache.test.spec_id.astype(str).to_numpy()
    stars = spec_ids[np.random.default_rng(1).choice(len(spec_ids), updates, replace=False)]
    result = {"load_prediction": [], "load_plots": [], "update": [], "update_kernel": []}
    with voila_server(config, survey, model_dir) as (url, process, log_path), sync_playwright() as playwright:  # fmt: skip
        browser = playwright.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        filled = wait_for_pool(process, log_path, 0)
        for visit in range(loads):
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url)
            page.wait_for_selector(".stellar-prediction", timeout=180_000)
            result["load_prediction"].append(page.evaluate("performance.now()") / 1000)
            drawn = page.wait_for_function(_PLOTS, timeout=180_000).json_value()
            result["load_plots"].append(drawn / 1000)
            if visit == loads - 1:
                for spec_id in stars:
                    page.evaluate(_WATCH)
                    page.get_by_placeholder("spec_id of a test star").fill(spec_id)
                    page.evaluate("document.activeElement.blur()")  # the widget syncs the id
                    start = page.evaluate(_CLICK)
                    done = page.wait_for_function(_UPDATED, arg=spec_id, timeout=60_000)
                    result["update"].append((done.json_value() - start) / 1000)
                    status = page.locator(".stellar-status").inner_text()
                    kernel_ms = re.search(r"updated in (\d+) ms", status)
                    result["update_kernel"].append(int(kernel_ms.group(1)) / 1000)
                result["kernel_memory_mb"] = kernel_memory_mb(process)
            page.close()
            if visit < loads - 1:
                filled = wait_for_pool(process, log_path, filled)
        result["bundle_seconds"] = _bundle_seconds(browser)
        browser.close()
    return result
