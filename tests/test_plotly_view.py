"""The light plotly widget: encoding, updates, the plotly.js message and clicks."""

import gzip
import re
from importlib import resources

import numpy as np
import plotly.graph_objects as go
import plotly.offline
import pytest

from stellar_nb.dashboard import plotly_view
from stellar_nb.dashboard.plotly_view import PlotlyView


def test_encode_makes_typed_arrays_and_plain_values():
    encoded = plotly_view.encode(
        {"x": np.array([1.5, 2.25]), "n": np.arange(3), "names": np.array(["a", "b"]),
         "scale": np.float64(2.0), "nested": [{"y": (np.array([7.0]),)}]}
    )  # fmt: skip
    assert encoded["x"]["dtype"] == "f4"
    np.testing.assert_array_equal(np.frombuffer(encoded["x"]["bdata"], "<f4"), [1.5, 2.25])
    assert encoded["n"]["dtype"] == "i4"
    np.testing.assert_array_equal(np.frombuffer(encoded["n"]["bdata"], "<i4"), [0, 1, 2])
    assert encoded["names"] == ["a", "b"]
    assert encoded["scale"] == 2.0 and type(encoded["scale"]) is float
    np.testing.assert_array_equal(
        np.frombuffer(encoded["nested"][0]["y"][0]["bdata"], "<f4"), [7.0]
    )


@pytest.fixture
def view():
    figure = go.Figure(
        [
            go.Scatter(x=np.array([1.0, 2.0]), y=[3.0, 4.0], name="a"),
            go.Scatter(x=[0.0], y=[1.0], name="b"),
        ]
    )
    figure.update_layout(title="t", height=300)  # fmt: skip
    return PlotlyView(figure)


def test_update_overwrites_keys_and_syncs_the_whole_figure(view):
    assert [trace["name"] for trace in view.data] == ["a", "b"]
    view.update([{"y": np.array([9.0]), "x": np.array([5.0])}], {"height": 500}, first=1)
    assert view.data[1]["name"] == "b" and view.data[1]["type"] == "scatter"  # other keys stay
    np.testing.assert_array_equal(view.data[1]["y"], [9.0])
    synced = view.figure["data"][1]
    np.testing.assert_array_equal(np.frombuffer(synced["y"]["bdata"], "<f4"), [9.0])
    assert view.figure["layout"]["height"] == 500 and view.figure["layout"]["title"]["text"] == "t"
    np.testing.assert_array_equal(
        np.frombuffer(view.figure["data"][0]["x"]["bdata"], "<f4"), [1, 2]
    )


def test_the_browser_gets_plotly_js_once_asked(view, monkeypatch):
    sent = []
    monkeypatch.setattr(view, "send", lambda content, buffers=None: sent.append((content, buffers)))
    view._handle(None, {"event": "plotly.js?"}, [])
    assert len(sent) == 1 and sent[0][0] == {"event": "plotly.js"}
    source = resources.files("stellar_nb") / "resources" / "plotly" / "plotly-basic.min.js"
    assert gzip.decompress(sent[0][1][0]) == source.read_bytes()
    assert len(sent[0][1][0]) < 0.5 * len(source.read_bytes())


def test_the_basic_bundle_matches_the_plotly_package():
    # Figures are built by the plotly package for its own plotly.js; the shipped basic bundle must
    # be at least of that major version to understand them.
    source = resources.files("stellar_nb") / "resources" / "plotly" / "plotly-basic.min.js"
    header = source.read_bytes()[:200].decode()
    match = re.search(r"plotly\.js \(basic - minified\) v(\d+)\.(\d+)\.(\d+)", header)
    assert match, header
    assert int(match.group(1)) >= int(plotly.offline.get_plotlyjs_version().split(".")[0])


def test_traces_outside_the_basic_bundle_are_refused():
    with pytest.raises(ValueError, match="histogram"):
        PlotlyView(go.Figure(go.Histogram(x=[1.0, 2.0])))


def test_clicks_reach_the_callbacks_and_junk_is_ignored(view):
    clicks = []
    view.on_click(lambda trace, point: clicks.append((trace, point)))
    view._handle(None, {"event": "click", "trace": 0, "point": 1}, [])
    view._handle(None, {"event": "click", "trace": "0", "point": None}, [])
    view._handle(None, ["not", "a", "dict"], [])
    view._handle(None, {"event": "unknown"}, [])
    assert clicks == [(0, 1)]
