"""A class's walkthrough in JupyterLab: Binder's JupyterLab, a notebook run in Chromium.

JupyterLab from the environment built from ``binder/`` alone (the ``binder_server`` fixture, a
first start: fresh user settings) opens ``notebooks/05_evaluation.ipynb``; the test runs it with
Run > Run All Cells from the menu, as a student would, with every request off loopback
refused (no CDN). It then checks that every cell ran without a traceback, that each plotly figure
rendered with data, and that the start was quiet: no news notification and no extension manager
(``stellar_nb/resources/jupyterlab/overrides.json``, installed by ``binder/postBuild``).
"""

import re
import time

import pytest
from test_binder import refuse_off_loopback

#: the first test to use ``binder_env`` builds it (minutes), within its own time limit
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(2400)]

NOTEBOOK = "notebooks/05_evaluation.ipynb"
#: JavaScript: "error: <outputs>" once an output shows a traceback, "done" once every code cell
#: has an execution count, false before.
ALL_CELLS_RAN = r"""() => {
  const cells = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')];
  const outputs = [...document.querySelectorAll('.jp-Notebook .jp-OutputArea')]
    .map(output => output.innerText).join('\n');
  if (/Traceback \(most recent call last\)/.test(outputs)) return 'error: ' + outputs.slice(-3000);
  const prompts = cells.map(cell => cell.querySelector('.jp-InputPrompt')?.textContent ?? '');
  return cells.length > 0 && prompts.every(prompt => /\[\d+\]/.test(prompt)) ? 'done' : false;
}"""
#: JavaScript: [plotly outputs, those whose figure holds data].
PLOTLY_RENDERED = """() => {
  const outputs = [...document.querySelectorAll('.jp-Notebook .jp-RenderedPlotly')];
  const drawn = outputs.filter(output => {
    const plot = output.closest('.js-plotly-plot') ?? output.querySelector('.js-plotly-plot');
    return plot && plot.data && plot.data.length > 0;
  });
  return [outputs.length, drawn.length];
}"""


def test_notebook_runs_in_jupyterlab(binder_server, chromium):
    from playwright.sync_api import sync_playwright

    base_url, token = binder_server
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        refused = refuse_off_loopback(page)
        page.goto(f"{base_url}/lab/tree/{NOTEBOOK}?token={token}", timeout=120_000)
        page.locator(".jp-Notebook .jp-CodeCell").first.click(timeout=120_000)
        started = time.perf_counter()
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        # enabled once the notebook is the current document
        page.locator(".lm-Menu-item:not(.lm-mod-disabled) .lm-Menu-itemLabel").filter(
            has_text=re.compile(r"^Run All Cells$")
        ).click(timeout=120_000)
        ran = page.wait_for_function(ALL_CELLS_RAN, timeout=600_000, polling=500).json_value()
        print(
            f"\n{NOTEBOOK} in JupyterLab: Run All Cells took {time.perf_counter() - started:.0f} s"
        )
        assert ran == "done", ran
        page.wait_for_function(f"() => {{ const [n, drawn] = ({PLOTLY_RENDERED})(); return n > 0 && n === drawn; }}", timeout=60_000)  # fmt: skip
        plotly_outputs, drawn = page.evaluate(PLOTLY_RENDERED)
        toasts = page.locator(".Toastify__toast").all_inner_texts()
        extension_manager = page.locator('[data-id="extensionmanager.main-view"]').count()
        browser.close()
    assert plotly_outputs >= 1 and drawn == plotly_outputs
    assert refused == []
    assert not [toast for toast in toasts if "news" in toast.lower()], toasts
    assert extension_manager == 0
