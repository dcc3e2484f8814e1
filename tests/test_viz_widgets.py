"""Headless checks of the explorers (no kernel, no browser): move a control, check the figure's new values; redraw time.

The values are compared with the loss library's own functions, so a picture that drifts from the loss fails here.
"""
import json, math, time
from pathlib import Path
import numpy as np
import pytest
import torch
from emosynth_nb.losses import ArcFace, CosFace, DAMS, LSoftmax, CrossEntropy, Focal, MAM
from emosynth_nb.viz import *
from emosynth_nb.viz.numbers import theta_grid, make_margin, boundary_curve, criterion_curves, scale_lower_bound

TH = theta_grid()
EXPLORERS = {  # factory: (control to move, values to step through)
    "margin_explorer": (margin_explorer, "m", (0.2, 0.3, 0.4, 0.5, 0.6)),
    "psi_explorer": (psi_explorer, "m", (0.2, 0.3, 0.4, 0.5, 0.6)),
    "boundary_explorer": (boundary_explorer, "m", (0.1, 0.15, 0.2, 0.25, 0.3)),
    "criterion_explorer": (criterion_explorer, "gamma", (0.5, 1.0, 1.5, 2.5, 3.0)),
    "contour_explorer": (contour_explorer, "m", (0.1, 0.2, 0.3, 0.4, 0.6)),
    "scale_explorer": (scale_explorer, "m", (0.1, 0.2, 0.3, 0.4, 0.5)),
    "mam_explorer": (mam_explorer, "eps", (0.3, 0.4, 0.5, 0.6, 0.7)),
}


@pytest.mark.parametrize("name", list(EXPLORERS))
def test_explorer_api_and_redraw_time(name):
    make, ctrl, values = EXPLORERS[name]
    ex = make()
    assert isinstance(ex.controls, dict) and ctrl in ex.controls and ex.figs and ex.fig is ex.figs[0]
    if "m" in ex.controls: assert ex.controls["m"].description == "m"  # the margin slider is "m" everywhere
    before = [json.dumps(f.to_plotly_json()["data"], default=str) for f in ex.figs]
    msgs = []  # what the FigureWidgets send to the browser
    for f in ex.figs: f.observe(lambda ch: msgs.append(ch["new"]), names=["_py2js_update", "_py2js_restyle"])
    # The CI machine has 2 cores shared with other jobs and these tensors are tiny (≤ 150×7): intra-op threads only
    # add wake-up latency there, so time the redraw on one thread (what a laptop kernel effectively does).
    n = torch.get_num_threads(); torch.set_num_threads(1)
    try:
        times = []
        for v in values:
            ex.controls[ctrl].value = v; times.append(ex.last_update_s)
    finally: torch.set_num_threads(n)
    after = [json.dumps(f.to_plotly_json()["data"], default=str) for f in ex.figs]
    assert before[0] != after[0], f"{name}: moving {ctrl} did not change the first figure"
    assert np.median(times) < 0.1, f"{name}: median redraw {1000 * np.median(times):.0f} ms (must be < 100 ms)"
    # A restyle that names several traces marks unchanged entries "undefined", which the browser turns into null and
    # resets (seen in JupyterLab: x became 0, 1, 2, ...). Every message must name at most one trace.
    for m in filter(None, msgs):
        traces = m.get("style_traces", m.get("restyle_traces"))
        assert traces is None or len(traces) <= 1, f"{name}: one message restyles traces {traces}"
    ex.reset()
    assert ex.params() == ex._initial and json.dumps(ex.figs[0].to_plotly_json()["data"], default=str) == before[0]


def test_margin_explorer_follows_the_library():
    ex = margin_explorer("arcface", m=0.5, fallback="none")
    np.testing.assert_allclose(ex.fig.data[0].y, ArcFace(m=0.5, fallback="none").psi(TH).numpy(), atol=1e-6)
    ex.controls["m"].value = 0.8
    np.testing.assert_allclose(ex.fig.data[0].y, ArcFace(m=0.8, fallback="none").psi(TH).numpy(), atol=1e-6)
    (a, b), = [(s["x0"], s["x1"]) for s in ex.fig.layout.shapes if s["type"] == "rect"]  # the non-monotone zone
    assert abs(a - (180 - math.degrees(0.8))) < 1.5 and b == pytest.approx(180)
    ex.controls["loss"].value = "cosface"
    assert ex.controls["m"].value == pytest.approx(0.35) and ex.controls["fallback"].disabled
    np.testing.assert_allclose(ex.fig.data[0].y, np.cos(TH) - 0.35, atol=1e-6)
    ex.controls["s"].value = 10
    cos = np.zeros((len(TH), 7)); cos[:, 0] = np.cos(TH)
    z = 10 * cos; z[:, 0] = 10 * (np.cos(TH) - 0.35)
    np.testing.assert_allclose(ex.figs[2].data[0].y, torch.softmax(torch.tensor(z), 1)[:, 0].numpy(), atol=1e-5)


def test_dams_is_cosface_with_twice_the_margin_in_the_explorer():
    ex = boundary_explorer("dams", m=0.25)
    assert ex.fig.data[2].visible
    np.testing.assert_allclose(ex.fig.data[0].y[:121], ex.fig.data[2].y, atol=0.05)
    np.testing.assert_allclose(ex.fig.data[2].y, np.degrees(boundary_curve(CosFace(m=0.5))[1]), atol=1e-9)


def test_criterion_explorer_limits():
    ex = criterion_explorer()
    ex.controls["gamma"].value = 0.0; ex.controls["eps"].value = 0.0
    for i in (4, 8): np.testing.assert_allclose(ex.fig.data[i].y, ex.fig.data[0].y, rtol=1e-6)  # LS(0), focal(0) = CE
    ex.controls["gamma"].value = 2.0
    r = criterion_curves(Focal(gamma=2.0), n_classes=7, kind="confident_wrong")
    np.testing.assert_allclose(ex.fig.data[8].y, r["loss"]); np.testing.assert_allclose(ex.fig.data[9].y, r["grad_norm"])


def test_static_slider_figures_hold_the_library_values():
    fig = psi_slider_figure("cosface", values=[0.1, 0.2, 0.3])
    assert [f.name for f in fig.frames] == ["0.10", "0.20", "0.30"] and fig.layout.sliders[0].active == 1
    for f, m in zip(fig.frames, (0.1, 0.2, 0.3)): np.testing.assert_allclose(f.data[0].y, np.cos(TH) - m, atol=1e-12)
    steps = fig.layout.sliders[0].steps
    assert all(s.method == "animate" for s in steps) and list(steps[2].args[0]) == ["0.30"]
    assert len(boundary_slider_figure("dams").frames) <= 15 and len(focal_slider_figure().frames) <= 15


def test_bad_input_says_what_is_allowed():
    with pytest.raises(ValueError, match="loss must be one of"): margin_explorer("arcfase")
    with pytest.raises(ValueError, match="loss must be one of"): contour_explorer("hinge")
    with pytest.raises(ValueError, match="margin name must be one of"): make_margin("x")
    with pytest.raises(ValueError, match="1 to 101"): slider_figure(lambda v: [], [], "a")
    with pytest.raises(ValueError, match="p must be in"): scale_lower_bound(7, 1.5)


def test_e2e_notebook_is_shipped_clean():
    nb = json.loads((Path(__file__).parent / "lab" / "margin_explorer.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert all(not c.get("outputs") for c in code) and "widgets" not in nb["metadata"]
    assert any("margin_explorer()" in "".join(c["source"]) for c in code)
