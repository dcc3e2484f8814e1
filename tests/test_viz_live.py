"""The kernel-free margin explorer (`emosynth_nb.viz.live`): its closed forms against the library, its JavaScript
against its closed forms (run in Node), and its page driven in headless Chromium (choose CosFace, set s = 5).
"""
import json, os, random, shutil, subprocess
import numpy as np
import pytest
from emosynth_nb.losses import make_margin, MultiplicativeMargin
from emosynth_nb.viz.numbers import psi_values, boundary_curve, target_prob_curve, theta_grid
from emosynth_nb.viz.live import (live_curves, live_margin_explorer, _CLOSED_FORMS, _live_specs, _JS_MATH)

SPECS = _live_specs()
CHROMIUM = "/usr/lib/chromium/chromium"


def _cases(n_random=6, seed=0):
    "Settings per margin: the defaults, each numeric setting at its ends, each choice, and seeded random mixes."
    rng, out = random.Random(seed), []
    for name, spec in SPECS.items():
        start = {st["name"]: st["start"] for st in spec["settings"]}
        out.append((name, dict(start)))
        for st in spec["settings"]:
            for v in (st["choices"] or [st["lo"], st["hi"]]): out.append((name, start | {st["name"]: v}))
        for _ in range(n_random):
            p = dict(start)
            for st in spec["settings"]:
                p[st["name"]] = rng.choice(st["choices"]) if st["choices"] else \
                    st["lo"] + st["step"] * rng.randint(0, round((st["hi"] - st["lo"]) / st["step"]))
            out.append((name, p))
    return out


CASES = _cases()


def test_every_closed_form_margin_is_offered_with_its_settings():
    assert set(SPECS) == set(_CLOSED_FORMS) and "mam" not in SPECS
    assert [st["name"] for st in SPECS["l_softmax"]["settings"]] == ["m", "form", "lam"]


@pytest.mark.parametrize("name,p", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_closed_forms_match_the_library(name, p):
    mg = make_margin(name, **p)
    r = live_curves(name, **p)
    np.testing.assert_allclose(r["psi"], psi_values(mg, theta_grid(), effective=isinstance(mg, MultiplicativeMargin)), atol=2e-5)
    # The forward pass clamps cosines at float32's ±(1 − 4.8e-7), which moves ArcFace's ψ at θ = 0° and 180° by up to
    # 1e-3 (sin m × √(2·4.8e-7)) and, at s = 64, its p_t there by a few 1e-3: at the two ends the two differ so.
    lib = target_prob_curve(mg)[0]
    np.testing.assert_allclose(r["pt"][1:-1], lib[1:-1], atol=2e-5); assert np.abs(r["pt"] - lib).max() < 1e-2
    t2 = boundary_curve(mg)[1]  # bisection on float32 logits: agree to 0.2°, except at a jump of ψ (ArcFace 'hard')
    bad = np.abs(r["plane_t2"] - t2) > np.radians(0.2)
    assert bad.sum() <= 1, (name, p, np.degrees(r["plane_t1"][bad]))


def test_javascript_computes_the_closed_forms():
    node = shutil.which("node")
    if node is None: pytest.fail("node is needed to run the explorer's JavaScript (apt-get install -y nodejs)")
    js = _JS_MATH + "\nconst cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));\n" \
         "console.log(JSON.stringify(cases.map(c => curves(c.name, c.p, 181, 121, c.C))));\n"
    cases = [dict(name=n, p=p, C=C) for (n, p) in CASES for C in (2, 7)]
    out = subprocess.run([node, "-e", js], input=json.dumps(cases), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    for c, got in zip(cases, json.loads(out.stdout)):
        want = live_curves(c["name"], c["C"], **c["p"])
        for k in ("psi", "plane_t2", "pt", "pt0"):
            np.testing.assert_allclose(np.array(got[k], dtype=float), want[k], atol=1e-9, err_msg=f"{c}: {k}")


def test_the_page_without_a_kernel(tmp_path):
    if not os.path.exists(CHROMIUM): pytest.fail(f"Debian's chromium is needed at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright
    html = "<!doctype html><meta charset='utf-8'><body style='margin:0'>" + live_margin_explorer("arcface")._standalone_html()
    offsite = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu",
                                                                     "--host-resolver-rules=MAP * ~NOTFOUND"])
        page = browser.new_page(viewport={"width": 390, "height": 900})
        page.route("**/*", lambda r: (offsite.append(r.request.url), r.abort()))
        errors = []; page.on("pageerror", lambda e: errors.append(str(e)))
        page.set_content(html)
        root = page.locator(".emosynth-live")
        read = lambda k: json.loads(root.get_attribute(f"data-{k}"))
        np.testing.assert_allclose(read("psi"), live_curves("arcface")["psi"], atol=1e-9)
        page.select_option("select[aria-label=loss]", "cosface")  # Exercise 1: pick CosFace, set s = 5
        page.eval_on_selector("input[name=s]", "e => { e.value = 5; e.dispatchEvent(new Event('input')); }")
        want = live_curves("cosface", m=0.35, s=5.)
        for k, w in (("psi", want["psi"]), ("pt", want["pt"]), ("t2", want["plane_t2"])):
            np.testing.assert_allclose(read(k), w, atol=1e-9)
        np.testing.assert_allclose(read("pt")[0], target_prob_curve(make_margin("cosface", s=5.))[0][0], atol=1e-5)
        page.select_option("select[aria-label=loss]", "l_softmax")  # m is L-Softmax's own integer multiplier
        m = page.locator("input[name=m]")
        assert (m.get_attribute("min"), m.get_attribute("max"), m.get_attribute("step"), m.input_value()) == ("1", "6", "1", "4")
        wide = page.evaluate("() => document.documentElement.scrollWidth")
        browser.close()
    assert not errors, errors
    assert not offsite, offsite
    assert wide <= 390, f"the page scrolls sideways at 390 px ({wide} px)"
