"""The built docs site, checked in a real browser: Debian's headless Chromium driven by playwright.

The site is built by `python tools/nbdocs.py` (into `docs/_site/`). These tests serve it on 127.0.0.1 and open
every page (the generated source-code pages, plain HTML, are only fetched): no failed request, no request off the machine (the browser itself resolves no host name), no
JavaScript error, every plotly figure drawn (3D scenes rotate when dragged), maths typeset without errors,
every slider figure changes when its slider is clicked, no nbdev directive visible, every internal link and
anchor resolves, and search finds a documented name. Full-page screenshots go to `docs/_build/screenshots/`.

Without a built site the tests are skipped (so the README's test command passes on a fresh clone before the
docs are built); CI builds the site first and sets `NBDOCS_REQUIRE_SITE=1`, which turns that skip into a failure.
"""
import configparser, functools, http.server, json, os, re, threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlparse, unquote
from urllib.request import urlopen

import pytest

ROOT = Path(__file__).resolve().parents[1]
_cp = configparser.ConfigParser(delimiters=['='], interpolation=None)
_cp.read(ROOT / 'settings.ini', encoding='utf-8')
SITE = ROOT / _cp['DEFAULT'].get('doc_path', 'docs/_site')
SHOTS = ROOT / 'docs' / '_build' / 'screenshots'
CHROMIUM = os.environ.get('NBDOCS_CHROMIUM', '/usr/lib/chromium/chromium')
REQUIRE = os.environ.get('NBDOCS_REQUIRE_SITE') == '1'

def _missing():
    if not (SITE / 'index.html').is_file(): return f'no built site at {SITE} (run `python tools/nbdocs.py`)'
    if not os.access(CHROMIUM, os.X_OK): return f'no Chromium at {CHROMIUM} (apt-get install -y chromium)'
    try: import playwright  # noqa: F401
    except ImportError: return 'playwright is not installed'

if _missing():
    if REQUIRE: raise RuntimeError(f'NBDOCS_REQUIRE_SITE=1 but {_missing()}')
    pytest.skip(_missing(), allow_module_level=True)

ALL = sorted(p.relative_to(SITE).as_posix() for p in SITE.rglob('*.html') if '_static' not in p.parts)
PAGES = [p for p in ALL if not p.startswith('_modules/')]      # opened in the browser (source pages: plain HTML)
CONTENT = [p for p in PAGES if p not in ('search.html', 'genindex.html')]


@pytest.fixture(scope='module')
def server():
    handler = functools.partial(type('Quiet', (http.server.SimpleHTTPRequestHandler,),
                                     {'log_message': lambda *a: None}), directory=str(SITE))
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{srv.server_address[1]}/'
    srv.shutdown(); srv.server_close()

@pytest.fixture(scope='module')
def browser():
    from playwright.sync_api import sync_playwright
    pw = sync_playwright().start()
    b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
        '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',   # the browser looks no host name up
        '--no-sandbox', '--enable-unsafe-swiftshader', '--use-angle=swiftshader', '--ignore-gpu-blocklist'])
    yield b
    b.close(); pw.stop()


class Visit:
    "One page opened in a fresh browser context, with every request, failure and error recorded."
    def __init__(self, browser, url):
        self.ctx = browser.new_context(viewport={'width': 1280, 'height': 900})
        self.page = self.ctx.new_page()
        self.requests, self.failed, self.errors = [], [], []
        p = self.page
        p.on('request', lambda r: self.requests.append(r.url))
        p.on('requestfailed', lambda r: self.failed.append(f'{r.url} ({r.failure})'))
        p.on('response', lambda r: r.status >= 400 and self.failed.append(f'HTTP {r.status} {r.url}'))
        p.on('pageerror', lambda e: self.errors.append(f'page error: {e}'))
        p.on('console', lambda m: m.type == 'error' and self.errors.append(f'console error: {m.text}'))
        p.goto(url, wait_until='load', timeout=120_000)   # pages with several WebGL scenes load slowly here
        # MathJax typesets the page, then every figure is drawn (nbdocs draws plotly after MathJax is ready)
        p.evaluate('async () => { const m = window.MathJax; if (m && m.startup && m.startup.promise) '
                   'await m.startup.promise; }')
        p.wait_for_function("() => [...document.querySelectorAll('.nbdocs-plotly')].every("
                            "d => d._fullLayout && d.querySelector('.main-svg'))", timeout=60_000)
        p.wait_for_timeout(300)

    def close(self): self.ctx.close()


class _Links(HTMLParser):
    def __init__(self):
        super().__init__(); self.ids, self.hrefs = set(), []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for k in ('id', 'name'):
            if a.get(k): self.ids.add(a[k])
        if tag == 'a' and a.get('href'): self.hrefs.append(a['href'])

@functools.lru_cache(None)
def _parsed(url):
    with urlopen(url) as r: text = r.read().decode('utf-8', 'replace')
    p = _Links(); p.feed(text); return p


@pytest.mark.parametrize('page', PAGES)
def test_page(page, server, browser):
    "Offline, error-free, no directive visible; figures drawn (3D rotates, sliders slide); maths typeset."
    v = Visit(browser, server + page)
    try:
        SHOTS.mkdir(parents=True, exist_ok=True)
        v.page.screenshot(path=str(SHOTS / (page.replace('/', '__')[:-len('.html')] + '.png')), full_page=True)
        off = [u for u in v.requests if not u.startswith(server) and not u.startswith(('data:', 'blob:', 'about:'))]
        assert not off, f'requests off the machine: {off}'
        assert not v.failed, f'failed requests: {v.failed}'
        assert not v.errors, f'JavaScript errors: {v.errors}'
        text = v.page.inner_text('body')
        assert not re.search(r'^\s*#\|', text, re.M), 'an nbdev directive (#| ...) is visible'
        for junk in ('{target="_blank"', '{.callout', '{.nbdocs', 'show_doc(', '<!-- WARNING', ':::'):
            assert junk not in text, f'{junk!r} is visible on the page'
        if page in CONTENT: _check_figures_and_maths(v)
        assert not v.errors, f'JavaScript errors while interacting: {v.errors}'
    finally: v.close()


def _check_figures_and_maths(v):
    p = v.page
    # every plotly figure drawn; 3D scenes have a WebGL canvas
    figs = p.evaluate("""() => [...document.querySelectorAll('.nbdocs-plotly')].map(d => ({
        id: d.id, drawn: !!d.querySelector('.main-svg'), gl3d: !!(d._fullLayout && d._fullLayout._has('gl3d')),
        canvas: !!d.querySelector('canvas'), sliders: (d.layout.sliders || []).length}))""")
    assert p.locator('.js-plotly-plot').count() == len(figs), 'a plotly figure not made by the site'
    for f in figs:
        assert f['drawn'], f'figure {f["id"]} not drawn'
        if f['gl3d']: assert f['canvas'], f'3D figure {f["id"]} has no WebGL canvas'
    # maths: every math element typeset by MathJax, no TeX error
    n_math, n_done, errs = p.evaluate("""() => { const m = [...document.querySelectorAll('.math')];
        return [m.length, m.filter(e => e.querySelector('mjx-container')).length,
                document.querySelectorAll('mjx-merror, [data-mjx-error]').length]; }""")
    assert n_done == n_math, f'{n_math - n_done} of {n_math} maths not typeset'
    assert errs == 0, f'{errs} maths with TeX errors'
    # the first 3D figure rotates when dragged
    for f in [f for f in figs if f['gl3d']][:1]:
        cam = f"() => JSON.stringify(document.getElementById('{f['id']}')._fullLayout.scene._scene.getCamera())"
        before = p.evaluate(cam)
        p.locator(f'#{f["id"]}').scroll_into_view_if_needed()
        box = p.locator(f'#{f["id"]}').bounding_box()
        # the middle of the first scene's domain (figures may hold several scenes side by side)
        fx, fy = p.evaluate(f"""() => {{ const L = document.getElementById('{f['id']}')._fullLayout, s = L._size,
            d = L.scene.domain; return [s.l + s.w * (d.x[0] + d.x[1]) / 2, s.t + s.h * (1 - (d.y[0] + d.y[1]) / 2)]; }}""")
        x, y = box['x'] + fx, box['y'] + fy
        p.mouse.move(x, y); p.mouse.down(); p.mouse.move(x + 120, y + 40, steps=8); p.mouse.up()
        p.wait_for_timeout(300)
        assert p.evaluate(cam) != before, f'3D figure {f["id"]} did not rotate when dragged'
    # every slider figure changes when its slider is clicked
    for f in [f for f in figs if f['sliders']]:
        for k in range(f['sliders']):
            state = (f"() => {{ const d = document.getElementById('{f['id']}'); return JSON.stringify(["
                     f"d.layout.sliders[{k}].active, d.data, d.layout.shapes || null, d.layout.annotations || null, "
                     f"d.layout.title || null]); }}")
            n, active = p.evaluate(f"() => {{ const s = document.getElementById('{f['id']}').layout.sliders[{k}];"
                                   f" return [s.steps.length, s.active || 0]; }}")
            before = p.evaluate(state)
            rail = p.locator(f'#{f["id"]} .slider-group').nth(k).locator('.slider-rail-touch-rect')
            rail.scroll_into_view_if_needed()
            box = rail.bounding_box()
            frac = 0.95 if active < (n - 1) / 2 else 0.05
            rail.click(position={'x': box['width'] * frac, 'y': box['height'] / 2}, force=True)
            p.wait_for_timeout(500)
            after = p.evaluate(state)
            assert json.loads(after)[0] != json.loads(before)[0], f'slider {k} of {f["id"]} did not move'
            assert json.loads(after)[1:] != json.loads(before)[1:], f'figure {f["id"]} did not change with its slider'


@pytest.mark.parametrize('page', ALL)
def test_internal_links_resolve(page, server):
    "Every link to a page of the site (cross-links, show_doc source links) reaches a page and an existing anchor."
    url = server + page
    bad = []
    for href in _parsed(url).hrefs:
        target = urljoin(url, href)
        if not target.startswith(server) or href.startswith('#') and len(href) == 1: continue
        doc, _, frag = target.partition('#')
        try: t = _parsed(doc)
        except Exception as e: bad.append(f'{href} ({e})'); continue
        if frag and unquote(frag) not in t.ids: bad.append(f'{href} (no anchor #{frag})')
    assert not bad, f'broken internal links: {sorted(set(bad))}'


def test_navigation_lists_every_page(server, browser):
    v = Visit(browser, server + 'index.html')
    try:
        hrefs = v.page.evaluate("() => [...document.querySelectorAll('nav.bd-docs-nav a')].map(a => a.getAttribute('href'))")
        missing = [p for p in CONTENT if p != 'index.html' and not any(urlparse(h).path.endswith(p) for h in hrefs)]
        assert not missing, f'pages missing from the navigation: {missing}'
    finally: v.close()


def test_search_finds_a_documented_name(server, browser):
    v = Visit(browser, server + 'search.html?q=seed')
    try:
        v.page.wait_for_selector('#search-results li', timeout=30_000)
        assert v.page.locator('#search-results li').count() >= 1
        assert not v.errors, v.errors
    finally: v.close()
