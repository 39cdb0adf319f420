"""Binder's dashboard link, served as Binder serves it, loaded in Chromium.

The ``binder_server`` fixture is JupyterLab from the environment built from ``binder/`` alone,
started through ``binder/start``; the test opens the dashboard's Binder link
(``voila/render/notebooks/dashboard.ipynb``) with every request off loopback refused, and waits for
the first prediction: two plotly figures with data and no error on the page. The notebooks
themselves run in that environment in ``tests/test_notebooks.py``.
"""

import time

import pytest

#: the first test to use ``binder_env`` builds it (minutes), within its own time limit
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(2400)]

#: What Voila's page template requests from CDNs (refused here; the dashboard shows without them).
VOILA_TEMPLATE_CDN = (
    "https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free@",
    "https://cdnjs.cloudflare.com/ajax/libs/mathjax/",
)
#: JavaScript: "error: <page text>" once the page shows an error, "shown" once two plotly figures
#: hold data, false before. Voila without tracebacks says "There was an error when executing cell".
FIRST_PREDICTION = r"""() => {
  const text = document.body ? document.body.innerText : '';
  if (/Traceback|\w+Error:|There was an error/.test(text)) return 'error: ' + text.slice(0, 3000);
  const plots = [...document.querySelectorAll('.js-plotly-plot')].filter(p => p.data && p.data.length);
  return plots.length >= 2 ? 'shown' : false;
}"""


def refuse_off_loopback(page):
    """Abort every request that leaves 127.0.0.1 (no CDN); return ``(resource type, URL)`` of each."""
    refused = []

    def route(route):
        if route.request.url.startswith("http://127.0.0.1:"):
            route.continue_()
        else:
            refused.append((route.request.resource_type, route.request.url))
            route.abort()

    page.route("**/*", route)
    return refused


def test_binder_dashboard_link_shows_a_prediction(binder_server, chromium):
    from playwright.sync_api import sync_playwright

    base_url, token = binder_server
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        refused = refuse_off_loopback(page)
        started = time.perf_counter()
        # Voila answers once the notebook has run; the wait below bounds it, not goto's 30 s
        page.goto(
            f"{base_url}/voila/render/notebooks/dashboard.ipynb?token={token}", wait_until="commit"
        )
        shown = page.wait_for_function(FIRST_PREDICTION, timeout=900_000, polling=1000).json_value()
        print(
            f"\nBinder dashboard link: first prediction after {time.perf_counter() - started:.0f} s"
        )
        browser.close()
    assert shown == "shown"
    # Voila's page template asks CDNs for Font Awesome's stylesheets and MathJax, which the
    # dashboard does without; anything else (plotly.js, widgets) must come from the server
    assert [url for kind, url in refused if not url.startswith(VOILA_TEMPLATE_CDN)] == []
