"""A real client for the margin explorer: JupyterLab on 127.0.0.1 driven by headless Debian Chromium.

Opens `tests/lab/margin_explorer.ipynb` (it shows `margin_explorer()`), runs it with Run ▸ Run All Cells, moves the
slider labelled "m" with the keyboard, and checks that the ψ(θ) curve drawn on the page changed to the values the
library computes for the new margin, and that no widget shows an error. Fully offline: the browser resolves no host
names and any request that is not to 127.0.0.1 (or a `blob:` URL) fails the test. If the browser or JupyterLab
cannot be had, the test FAILS with the reason (it never skips).
Recipe and pitfalls: `reference/jupyterlab_e2e.md` (shared design notes).
"""
import json, os, re, shutil, signal, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest

HERE = Path(__file__).resolve().parent
NB = HERE / "lab" / "margin_explorer.ipynb"
CHROMIUM = "/usr/lib/chromium/chromium"  # the real binary; /usr/bin/chromium is a shell wrapper (pitfall 3)
TIMEOUT_MS = 90_000
# Selectors for what a broken widget shows (pitfall 8)
ERRORS = ('.jupyter-widgets-error-widget, .jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"], '
          '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
TEXT_REPR = '.jp-OutputArea-output[data-mime-type="text/plain"]'


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    "A JupyterLab server on 127.0.0.1 serving a temp root that holds the explorer notebook; yields its URL."
    root = tmp_path / "root"; root.mkdir()
    shutil.copy(NB, root / NB.name)
    settings = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"; settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"), JUPYTER_DATA_DIR=str(tmp_path / "data"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"), IPYTHONDIR=str(tmp_path / "ipy"), JUPYTER_PLATFORM_DIRS="1",
               # the kernel must import this checkout's package even where it is not pip-installed
               PYTHONPATH=os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    port = _free_port()
    log = open(tmp_path / "lab.log", "w")
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--IdentityProvider.token=",
           f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={tmp_path / 'settings'}",
           f"--LabApp.workspaces_dir={tmp_path / 'ws'}", "--LabApp.news_url=None",
           "--LabApp.extension_manager=readonly", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        t0 = time.time()
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with code {proc.returncode}: {(tmp_path / 'lab.log').read_text()[-2000:]}")
            try:
                if urllib.request.urlopen(url + "/api/status", timeout=2).status == 200: break
            except OSError: pass
            if time.time() - t0 > 60: pytest.fail("JupyterLab did not answer /api/status within 60 s")
            time.sleep(0.2)
        yield url
    finally:
        try: os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError: pass
        try: proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL); proc.wait()
        log.close()


def _floats(a): return [None if v is None or v != v else float(v) for v in (a if a is not None else [])]

# JS: every plot's traces on the page, as [[{name, x, y}]] (NaN arrives as null)
ALL_JS = """() => Array.from(document.querySelectorAll('.jp-OutputArea .js-plotly-plot')).map(gd => (gd.data || []).map(t =>
  ({name: t.name, x: Array.from(t.x || [], v => (v === null || Number.isNaN(v)) ? null : v),
    y: Array.from(t.y || [], v => (v === null || Number.isNaN(v)) ? null : v)})))"""

# JS: the ψ trace (named "ψ(θ)") of the first plot that has one, as {x, y}
PSI_JS = """() => { for (const gd of document.querySelectorAll('.jp-OutputArea .js-plotly-plot')) {
  for (const t of (gd.data || [])) if (t.name === 'ψ(θ)') return {x: Array.from(t.x), y: Array.from(t.y)}; }
  return null; }"""


# JS: [drawn plot width, its cell's width, output-area width] for every plot on the page, in CSS pixels
SIZES_JS = """() => Array.from(document.querySelectorAll('.jp-OutputArea .js-plotly-plot')).map(gd =>
  [gd._fullLayout.width, gd.parentElement.getBoundingClientRect().width, gd.closest('.jp-OutputArea-output').getBoundingClientRect().width])"""

def test_margin_explorer_in_jupyterlab(lab, tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Debian's chromium is needed at {CHROMIUM} (apt-get install -y chromium); it is missing")
    try: from playwright.sync_api import sync_playwright
    except ImportError as e: pytest.fail(f"playwright is needed for the JupyterLab test: {e}")
    from emosynth_nb.viz.widgets import margin_explorer
    ex = margin_explorer()  # the same defaults as the notebook: we read the expected values from it
    m_slider = ex.controls["m"]
    m0, step = m_slider.value, m_slider.step
    m_new = round(m0 + 3 * step, 10)
    m_slider.value = m_new; y_expected = list(ex.fig.data[0].y)
    figs_expected = [[(t.name, _floats(t.x), _floats(t.y)) for t in f.data] for f in ex.figs]

    offsite, sockets = [], []
    with sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"])
        except Exception as e:
            pytest.fail(f"could not launch chromium at {CHROMIUM}: {e}")
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        def guard(route):
            u = route.request.url
            if u.startswith(lab) or u.startswith("blob:") or u.startswith("data:"): route.continue_()
            else: offsite.append(u); route.abort()
        ctx.route("**/*", guard)
        page = ctx.new_page()
        page.on("websocket", lambda ws: sockets.append(ws.url))
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{lab}/lab/tree/{NB.name}")
        # pitfall 5: wait for the kernel's status-bar text, not the toolbar's idle marker
        page.get_by_text(re.compile(r"^Python 3 \(ipykernel\) \| Idle$")).first.wait_for()
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).first.click()
        # the plot, or fail fast on an error element / a bare text repr (pitfall 8)
        page.wait_for_selector(f".jp-OutputArea .js-plotly-plot .scatterlayer path.js-line, {ERRORS}, {TEXT_REPR}")
        errs = page.locator(ERRORS)
        assert errs.count() == 0, f"widget error on the page: {errs.first.inner_text()[:500]}"
        assert page.locator(TEXT_REPR).count() == 0, f"widgets not rendered: {page.locator(TEXT_REPR).first.inner_text()[:300]}"
        try: page.wait_for_function(f"({PSI_JS})() !== null")
        except Exception:
            page.screenshot(path=str(tmp_path / "lab-fail.png"))
            names = page.evaluate("() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => (gd.data || []).map(t => t.name))")
            pytest.fail(f"no ψ(θ) trace on the page; plots and their traces: {names} (screenshot: {tmp_path / 'lab-fail.png'})")
        before = page.evaluate(PSI_JS)
        label = m_slider.description  # the margin's own label and unit, e.g. "margin m [rad]"
        slider = page.locator(".jp-OutputArea .widget-slider", has=page.locator(".widget-label", has_text=re.compile(f"^{re.escape(label)}$")))
        assert slider.count() == 1, f"expected one slider labelled {label!r}, found {slider.count()}"
        # figures fit their column: each plot is narrower than the output area and not collapsed
        sizes = page.evaluate(SIZES_JS)
        # the plot as drawn (plotly's own width) fits the cell it sits in and the output area (not clipped)
        assert sizes and all(150 < w <= cell + 1 and w <= area + 1 for w, cell, area in sizes), \
            f"drawn plot width vs its cell and the output area (px): {sizes}"
        readout = slider.locator(".widget-readout")
        assert float(readout.inner_text()) == pytest.approx(m0)
        slider.locator(".noUi-handle").focus()
        for _ in range(3): page.keyboard.press("ArrowRight")
        # pitfall 6: the slider passes through intermediate values; wait for the final readout and curve
        page.wait_for_function("(el) => parseFloat(el.textContent) === %r" % m_new, arg=readout.element_handle())
        page.wait_for_function(f"(yy) => {{ const t = ({PSI_JS})(); return t && Math.abs(t.y[5] - yy[5]) < 1e-6 "
                               f"&& Math.abs(t.y[t.y.length-6] - yy[yy.length-6]) < 1e-6; }}", arg=y_expected)
        # the other plots' updates are separate messages: wait until the whole page matches Python (or time out)
        match_js = f"""(exp) => {{ const got = ({ALL_JS})(); if (got.length !== exp.length) return false;
          const same = (a, b) => a.length === b.length && a.every((v, i) => (v === null) === (b[i] === null) && (v === null || Math.abs(v - b[i]) < 1e-6));
          return got.every((f, i) => f.length === exp[i].length && f.every((t, j) => same(t.x, exp[i][j][1]) && same(t.y, exp[i][j][2]))); }}"""
        try: page.wait_for_function(match_js, arg=figs_expected, timeout=30_000)
        except Exception: pass  # the assertions below say what differs
        after = page.evaluate(PSI_JS)
        page_figs = page.evaluate(ALL_JS)
        # the browser-computed explorer (anywidget): rendered by its own JavaScript, and its numbers are the library's
        live = page.locator(".jp-OutputArea .emosynth-live").first
        live.wait_for()
        live_psi = json.loads(live.get_attribute("data-psi"))
        page.locator(".jp-OutputArea .emosynth-live select[aria-label=loss]").first.select_option("cosface")
        page.locator(".jp-OutputArea .emosynth-live input[name=s]").first.evaluate(
            "e => { e.value = 5; e.dispatchEvent(new Event('input')); }")
        live_pt = json.loads(live.get_attribute("data-pt"))
        page.screenshot(path=str(tmp_path / "lab.png"))
        assert errs.count() == 0, f"widget error on the page after moving the slider: {errs.first.inner_text()[:500]}"
        browser.close()
    assert before["y"] != after["y"], "the ψ curve did not change when the margin slider moved"
    assert after["y"] == pytest.approx(y_expected, abs=1e-6), "the ψ curve on the page is not the library's ψ for the new m"
    # every figure of the explorer on the page holds exactly what Python holds (x and y of every trace)
    assert len(page_figs) == len(figs_expected), f"{len(page_figs)} plots on the page, the explorer has {len(figs_expected)}"
    for i, (got, exp) in enumerate(zip(page_figs, figs_expected)):
        assert [t["name"] for t in got] == [n for n, _, _ in exp], f"plot {i}: trace names differ"
        for t, (name, x, y) in zip(got, exp):
            for k, want in (("x", x), ("y", y)):
                have = t[k]
                assert len(have) == len(want) and all((a is None) == (b is None) and (a is None or abs(a - b) < 1e-6)
                                                      for a, b in zip(have, want)), f"plot {i}, trace {name!r}: {k} on the page differs from Python"
    from emosynth_nb.viz.live import live_curves
    from emosynth_nb.viz.numbers import target_prob_curve
    from emosynth_nb.losses import make_margin
    assert live_psi == pytest.approx(list(live_curves("arcface")["psi"]), abs=1e-9), "live explorer: ψ differs from live_curves"
    assert live_pt == pytest.approx(list(target_prob_curve(make_margin("cosface", s=5.))[0]), abs=1e-5), \
        "live explorer (CosFace, s = 5): p_t differs from the library's"
    assert not offsite, f"the page asked for off-box URLs: {offsite[:5]}"
    assert all(u.startswith(lab.replace("http", "ws")) for u in sockets), f"off-box websockets: {sockets}"
