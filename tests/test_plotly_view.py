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


def test_encode_makes_typed_arrays_in_buffers_and_plain_values():
    encoded, buffers = plotly_view.encode(
        {"x": np.array([1.5, 2.25]), "n": np.arange(3), "names": np.array(["a", "b"]),
         "scale": np.float64(2.0), "nested": [{"y": (np.array([7.0]),)}]}
    )  # fmt: skip
    assert encoded["x"] == {"dtype": "f4", "buffer": 0}
    np.testing.assert_array_equal(np.frombuffer(buffers[0], "<f4"), [1.5, 2.25])
    assert encoded["n"] == {"dtype": "i4", "buffer": 1}
    np.testing.assert_array_equal(np.frombuffer(buffers[1], "<i4"), [0, 1, 2])
    assert encoded["names"] == ["a", "b"]
    assert encoded["scale"] == 2.0 and type(encoded["scale"]) is float
    assert encoded["nested"][0]["y"][0] == {"dtype": "f4", "buffer": 2}
    np.testing.assert_array_equal(np.frombuffer(buffers[2], "<f4"), [7.0])
    assert len(buffers) == 3


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


def _sent(view, monkeypatch):
    sent = []
    monkeypatch.setattr(view, "send", lambda content, buffers=None: sent.append((content, buffers)))
    return sent


def test_update_sends_only_what_changed_and_a_view_gets_the_whole_figure(view, monkeypatch):
    sent = _sent(view, monkeypatch)
    assert [trace["name"] for trace in view.data] == ["a", "b"]
    view.update([{"y": np.array([9.0]), "x": np.array([5.0])}], {"height": 500}, first=1)
    assert view.data[1]["name"] == "b" and view.data[1]["type"] == "scatter"  # other keys stay
    np.testing.assert_array_equal(view.data[1]["y"], [9.0])
    ((message, buffers),) = sent
    assert message["event"] == "update" and list(message["traces"]) == ["1"]
    assert set(message["traces"]["1"]) == {"x", "y"} and message["layout"] == {"height": 500}
    assert sorted(np.frombuffer(b, "<f4")[0] for b in buffers) == [5.0, 9.0]  # trace 0 not sent
    view.update(layout={"shapes": [{"type": "line", "x0": 1.0}]})
    assert sent[1][0] == {
        "event": "update",
        "traces": {},
        "layout": {"shapes": [{"type": "line", "x0": 1.0}]},
    }
    view._handle(None, {"event": "figure?"}, [])
    message, buffers = sent[2]
    assert message["event"] == "figure"
    figure = message["figure"]
    assert figure["layout"]["height"] == 500 and figure["layout"]["title"]["text"] == "t"
    assert figure["layout"]["shapes"] == [{"type": "line", "x0": 1.0}]
    x0, y1 = figure["data"][0]["x"], figure["data"][1]["y"]
    np.testing.assert_array_equal(np.frombuffer(buffers[x0["buffer"]], "<f4"), [1, 2])
    np.testing.assert_array_equal(np.frombuffer(buffers[y1["buffer"]], "<f4"), [9.0])


def test_the_browser_gets_plotly_js_once_asked(view, monkeypatch):
    sent = _sent(view, monkeypatch)
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
