#!/usr/bin/env python
"""Build the documentation site from the notebooks, offline, with one command.

    python tools/nbdocs.py                 # incremental build -> docs/_site/index.html
    python tools/nbdocs.py --force         # re-execute every notebook (a cold build)
    python tools/nbdocs.py --flags gpu     # also run the `#| gpu` cells (on a GPU machine)
    python tools/nbdocs.py --readme        # also write README.md from nbs/index.ipynb
    python tools/nbdocs.py --only index,12_losses.margins   # a subset: execute and render only these pages

Two stages:

1. **Execute** (cached, in parallel, one fresh process per notebook). nbdev's own notebook processors run
   (front matter, `show_doc` for exported names, `#| hide`/`#| export` removal, ...), except that every code
   cell is executed, with `nbdev_test`'s skip rules: cells flagged with a `tst_flags` flag (`gpu`, `slow`) that
   `--flags` does not name are skipped (they keep their saved outputs), and so are `#| eval: false` cells and
   `nbdev_export()` calls. Any failing cell fails the build. An ipywidgets output holding plotly FigureWidgets
   is replaced, while its widgets are still alive, by kernel-free plotly figures: the first control (slider,
   dropdown, ...) is set to each of its positions, the figures are recorded as plotly frames, and a native plotly
   slider replays them; with no control, a static snapshot. A notebook is executed again only when it, a project
   module it imported, settings.ini, this tool or the flags changed (`docs/_build/exec/`).
2. **Render** (always, cheap). The executed notebooks become myst-nb pages (`docs/_proc_docs/src/`): title and
   summary, Quarto cell options turned into myst-nb tags, `show_doc` output turned into page sections with
   links to local source pages, names in backticks linked to their docs, plotly figures as `Plotly.newPlot`
   calls, `#| gpu` cells marked; then Sphinx (myst-nb, sphinx-book-theme; `docs/conf.py`) writes the site
   with plotly.js and MathJax served from `_static`. Nothing is fetched from the internet by the pages.

Exit status: 0 when every notebook executed and Sphinx succeeded, 1 otherwise.
"""
from __future__ import annotations

import argparse, ast, configparser, hashlib, html, json, multiprocessing, os, posixpath, re, shutil, subprocess
import sys, time, traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / 'docs'
BUILD = DOCS / '_build'            # caches and reports: exec/, doctrees/, state.json, screenshots/
PROC = DOCS / '_proc_docs'         # what Sphinx reads: src/ (pages), extra/ (source pages), assets/ (conf.py)
SRC = PROC / 'src'
EXEC = BUILD / 'exec'
STATE = BUILD / 'state.json'
CACHE_VERSION = '3'                # bump when the executed-notebook format changes

PLOTLY_MIME = 'application/vnd.plotly.v1+json'
WIDGET_MIME = 'application/vnd.jupyter.widget-view+json'
MAX_STEPS = 51                     # positions replayed per widget control
_ANSI = re.compile(r'\x1B(?:[@-Z\\-_]|\[[0-?]*[ -/]*[@-~])')


# ----------------------------------------------------------------------------------------------------------------
# Project configuration and notebook discovery

def read_settings() -> dict:
    "The `[DEFAULT]` section of settings.ini as a dict."
    cp = configparser.ConfigParser(delimiters=['='], interpolation=None)
    cp.read(ROOT / 'settings.ini', encoding='utf-8')
    return dict(cp['DEFAULT'])

def page_name(rel: Path) -> str:
    "Docname of notebook `rel` (relative to nbs/), as nbdev/Quarto name it: `00_core.ipynb` -> `core`."
    stem = re.sub(r'^\d+[a-zA-Z0-9]*_', '', rel.name.lower())
    stem = stem[:-len('.ipynb')] if stem.endswith('.ipynb') else stem
    return (rel.parent / stem).as_posix() if rel.parent != Path('.') else stem

def find_notebooks(nbs: Path, recursive: bool = True) -> list[Path]:
    "Notebooks under `nbs` (relative paths), skipping names starting with `_` or `.`, index first, then by path."
    pat = nbs.rglob('*.ipynb') if recursive else nbs.glob('*.ipynb')
    rels = sorted(p.relative_to(nbs) for p in pat)
    rels = [r for r in rels if not any(part.startswith(('_', '.')) for part in r.parts)]
    return sorted(rels, key=lambda r: (page_name(r) != 'index', r.as_posix()))

def sha(data: bytes) -> str: return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------------------------------------------
# Stage 1: execution (runs in a spawned worker process, one notebook per process)

class CellError(Exception):
    "A notebook cell (or the replay of one of its widgets) failed."

def _proc_classes(skip_flags: set, all_flags: set, nb_path: Path):
    "nbdev's default processors, with its show_doc-only execution replaced by executing every cell."
    from execnb.shell import CaptureShell, format_exc
    from fastcore.basics import str2bool
    from nbdev.process import Processor, nb_lang
    from nbdev.processors import (FrontmatterProc, populate_language, add_show_docs, strip_ansi, hide_line,
                                  filter_stream_, rm_header_dash, clean_show_doc, rm_export, ai_magics, clean_magics,
                                  hide_, add_fold, mv_exports, strip_hidden_metadata, _do_eval)

    class exec_all(Processor):
        "Execute every code cell, with nbdev_test's skip rules; replace widget outputs by kernel-free figures."
        def begin(self):
            fm = getattr(self.nb, 'frontmatter_', {}) or {}
            self.only_docs = str2bool(fm.get('skip_exec', False))   # as nbdev: then only imports/exports/show_doc
            self.k = None
            if nb_lang(self.nb) != 'python': return
            self.k = CaptureShell(nb_path)
            self.k.run_cell('from nbdev.showdoc import show_doc')

        def __call__(self, cell):
            if self.k is None or cell.cell_type != 'code' or not cell.source: return
            d = getattr(cell, 'directives_', None) or {}
            flags = sorted(all_flags & d.keys())
            if flags:
                cell.setdefault('metadata', {})['nbdocs'] = {'flags': flags, 'ran': not (skip_flags & set(flags))}
            if 'nbdev_export' + '(' in cell.source: return
            if d.get('eval:', [''])[0].lower() == 'false': return
            if skip_flags & set(flags): return                       # keeps its saved outputs
            if self.only_docs and not _do_eval(cell): return
            cell['outputs'] = []
            self.k.cell(cell)
            if self.k.exc is not None:
                tb = _ANSI.sub('', ''.join(format_exc(self.k.exc)))
                raise CellError(f'cell {cell.idx_} failed:\n{_fence("source")}\n{cell.source}\n'
                                f'{_fence("traceback")}\n{tb}')
            if _re_showdoc_call.search(cell.source) and not any(
                    'text/markdown' in (o.get('data') or {}) for o in cell.get('outputs') or []):
                raise CellError(f'cell {cell.idx_}: {cell.source.strip().splitlines()[-1]} rendered nothing: its '
                                'markdown renderer raised (traceback printed above; a numpy array as a default '
                                'argument is a known cause)')
            _replace_widgets(cell)

    return [FrontmatterProc, populate_language, add_show_docs, strip_ansi, hide_line, filter_stream_, rm_header_dash,
            clean_show_doc, exec_all, rm_export, ai_magics, clean_magics, hide_, add_fold, mv_exports,
            strip_hidden_metadata]

_re_showdoc_call = re.compile(r'^show_doc\(', re.M)

def _fence(s): return f'----- {s} ' + '-' * (60 - len(s))

def _plain(o):
    "Recursively convert execnb's AttrDicts to JSON-able dicts, dropping processor attributes (`idx_`, ...)."
    if isinstance(o, dict): return {k: _plain(v) for k, v in o.items() if not k.endswith('_') and k != 'has_sd'}
    if isinstance(o, (list, tuple)): return [_plain(v) for v in o]
    return o

def _project_deps() -> dict:
    "Hashes of the project's own modules imported so far (excluding `_modidx.py`, which every export rewrites)."
    deps = {}
    for m in list(sys.modules.values()):
        f = getattr(m, '__file__', None)
        if not f: continue
        try: rel = Path(f).resolve().relative_to(ROOT)
        except ValueError: continue
        if any(p.startswith('.') or p == 'site-packages' for p in rel.parts) or rel.name == '_modidx.py': continue
        if rel.suffix == '.py' and (ROOT / rel).is_file(): deps[rel.as_posix()] = sha((ROOT / rel).read_bytes())
    return deps

def execute_notebook(rel: str, flags: list, out: str) -> dict:
    "Worker: process and execute `nbs/rel`, write the result as JSON to `out`; report success, time and deps."
    t0 = time.time()
    os.chdir(ROOT)
    os.environ['IN_TEST'] = '1'                                  # as nbdev_test: nbdev_export() is a no-op
    if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))
    try:
        import plotly.io as pio
        pio.renderers.default = 'plotly_mimetype'                # JSON only: plotly.js is served by the site
    except ImportError: pass
    from execnb.nbio import read_nb
    from fastcore.xtras import working_directory
    from nbdev.config import get_config
    from nbdev.process import NBProcessor
    cfg = get_config()
    path = (cfg.config_path / cfg.nbs_path / rel).resolve()
    tst_flags = set(cfg.get('tst_flags', '').split())
    try:
        nb = read_nb(path)
        procs = _proc_classes(tst_flags - set(flags), tst_flags | set(flags), path)
        with working_directory(path.parent): NBProcessor(nb=nb, procs=procs).process()
        res = _plain(dict(nb))
        res['metadata'] = {k: v for k, v in res.get('metadata', {}).items() if k != 'widgets'}
        res['metadata']['nbdocs_frontmatter'] = _plain(getattr(nb, 'frontmatter_', {}) or {})
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(out + '.tmp'); tmp.write_text(json.dumps(res, ensure_ascii=False), encoding='utf-8')
        os.replace(tmp, out)
        return dict(ok=True, seconds=time.time() - t0, deps=_project_deps())
    except CellError as e: return dict(ok=False, seconds=time.time() - t0, error=str(e))
    except BaseException: return dict(ok=False, seconds=time.time() - t0, error=_ANSI.sub('', traceback.format_exc()))


# --- widgets -> kernel-free plotly figures -----------------------------------------------------------------------

def _widget_registry() -> dict:
    from ipywidgets.widgets.widget import _instances
    return _instances

def _walk(w, seen=None):
    "`w` and every widget inside it (Box children, widgets displayed in Output widgets)."
    import ipywidgets as W
    seen = set() if seen is None else seen
    if id(w) in seen: return
    seen.add(id(w)); yield w
    if isinstance(w, W.Box):
        for c in w.children: yield from _walk(c, seen)
    if isinstance(w, W.Output):
        reg = _widget_registry()
        for o in w.outputs:
            mid = ((o.get('data') or {}).get(WIDGET_MIME) or {}).get('model_id')
            if mid in reg: yield from _walk(reg[mid], seen)

def _is_figwidget(w) -> bool:
    return 'plotly' in sys.modules and type(w).__name__ == 'FigureWidget' and hasattr(w, 'to_dict')

def _fmt(v) -> str:
    if isinstance(v, float): return f'{v:.4g}'
    return str(v)

def _control(w):
    "For a control widget: (positions, labels, index of the current position, setter); None for anything else."
    import ipywidgets as W
    from ipywidgets.widgets import widget_float as wf, widget_int as wi, widget_selection as ws
    if getattr(w, 'disabled', False) or isinstance(w, (W.Play, ws._MultipleSelection, wf._FloatRange, wi._IntRange)):
        return None
    if isinstance(w, ws._Selection):
        if w.index is None: return None
        n = len(w._options_labels)
        return list(range(n)), list(w._options_labels), w.index, lambda i: setattr(w, 'index', i)
    if isinstance(w, (W.Checkbox, W.ToggleButton)):
        return [False, True], ['off', 'on'], int(bool(w.value)), lambda v: setattr(w, 'value', v)
    if isinstance(w, wf._BoundedLogFloat):
        import math
        n = int(round((w.max - w.min) / w.step)) + 1
        vals = [w.base ** (w.min + i * w.step) for i in range(n)]
        cur = min(range(n), key=lambda i: abs(math.log(vals[i], w.base) - math.log(w.value, w.base)))
    elif isinstance(w, wf._BoundedFloat):
        step = w.step or (w.max - w.min) / 50
        n = int(round((w.max - w.min) / step)) + 1
        vals = [round(w.min + i * step, 12) for i in range(n)]
        cur = min(range(n), key=lambda i: abs(vals[i] - w.value))
    elif isinstance(w, wi._BoundedInt):
        vals = list(range(w.min, w.max + 1, w.step or 1))
        cur = min(range(len(vals)), key=lambda i: abs(vals[i] - w.value))
    else: return None
    return vals, [_fmt(v) for v in vals], cur, lambda v: setattr(w, 'value', v)

def _subsample(n: int, cur: int) -> list:
    "At most MAX_STEPS evenly spread indices of range(n), always including `cur`."
    if n <= MAX_STEPS: return list(range(n))
    idx = sorted({round(i * (n - 1) / (MAX_STEPS - 1)) for i in range(MAX_STEPS)})
    if cur not in idx: idx[min(range(len(idx)), key=lambda j: abs(idx[j] - cur))] = cur
    return sorted(set(idx))

def _round(o):
    "Floats to 6 significant digits (replayed frames are stored in the page: keep them small)."
    if isinstance(o, float): return float(f'{o:.6g}')
    if isinstance(o, list): return [_round(v) for v in o]
    if isinstance(o, dict): return {k: _round(v) for k, v in o.items()}
    return o

def _figjson(d) -> dict:
    "Plain-JSON (lists, not numpy or base64) version of a plotly figure dict."
    from plotly.utils import PlotlyJSONEncoder
    return _round(json.loads(json.dumps(d, cls=PlotlyJSONEncoder)))

def _fig_output(fig: dict, caption: str | None = None) -> dict:
    md = {'nbdocs': {'caption': caption}} if caption else {}
    return {'output_type': 'display_data', 'metadata': md,
            'data': {PLOTLY_MIME: fig, 'text/plain': ['<plotly figure>']}}

def _note_output(text: str) -> dict:
    return {'output_type': 'display_data', 'metadata': {},
            'data': {'text/html': [f'<div class="nbdocs-note">{html.escape(text)}</div>']}}

def _replay(figs: list, ctrl, spec) -> list:
    "Set `ctrl` to each position, recording every figure: a kernel-free slider figure per FigureWidget it changes."
    vals, labels, cur, setter = spec
    idxs = _subsample(len(vals), cur)
    orig = ctrl.index if hasattr(ctrl, '_options_labels') else ctrl.value
    snaps = []
    try:
        for i in idxs:
            try: setter(vals[i])
            except Exception as e:
                raise CellError(f'replaying widget {getattr(ctrl, "description", "") or "value"!r} '
                                f'at {labels[i]} failed: {type(e).__name__}: {e}') from e
            snaps.append([_figjson(fw.to_dict()) for fw in figs])
    finally: setter(orig)
    desc = (getattr(ctrl, 'description', '') or 'value').rstrip(':')
    outs = []
    for j, fw in enumerate(figs):
        base = _figjson(fw.to_dict())
        if len({len(s[j].get('data', [])) for s in snaps} | {len(base.get('data', []))}) != 1:
            outs.append(_fig_output(base, 'Static snapshot (the number of traces changes with the control).'))
            continue
        keys = set()
        for s in snaps:
            lay = s[j].get('layout', {})
            for k in set(lay) | set(base.get('layout', {})):
                if k not in ('template', 'sliders', 'updatemenus') and lay.get(k) != base['layout'].get(k): keys.add(k)
        if all(s[j] == snaps[0][j] for s in snaps):                # this control does not change this figure
            outs.append(None); continue
        frames = []
        for i, s in zip(idxs, snaps):
            lay = s[j].get('layout', {})
            frames.append({'name': str(i), 'data': s[j].get('data', []),
                           'layout': {k: lay.get(k, base['layout'].get(k, {})) for k in keys}})
        step_args = {'mode': 'immediate', 'frame': {'duration': 0, 'redraw': True}, 'transition': {'duration': 0}}
        slider = {'active': idxs.index(cur), 'currentvalue': {'prefix': f'{desc} = '}, 'pad': {'t': 40},
                  'len': 0.9, 'x': 0.05, 'name': 'nbdocs',
                  'steps': [{'label': labels[i], 'method': 'animate', 'args': [[str(i)], step_args]} for i in idxs]}
        base.setdefault('layout', {})['sliders'] = list(base['layout'].get('sliders', [])) + [slider]
        base['frames'] = frames
        outs.append(_fig_output(base, f'Kernel-free replay of the widget: the slider shows the {len(idxs)} positions '
                                      f'of {desc!r} computed when this page was built.'))
    return outs

def _widget_outputs(model_id) -> list:
    "Replacement outputs for one displayed widget."
    import ipywidgets as W
    root = _widget_registry().get(model_id)
    if root is None: return [_note_output('An interactive widget (run the notebook in JupyterLab to use it).')]
    ws = list(_walk(root))
    figs = [w for w in ws if _is_figwidget(w)]
    if not figs:
        if any(isinstance(w, (W.FloatProgress, W.IntProgress)) for w in ws): return []   # progress bars
        return [_note_output('An interactive widget: run the notebook in JupyterLab to use it.')]
    ctrls = [(w, s) for w in ws if not _is_figwidget(w) for s in [_control(w)] if s is not None]
    if not ctrls: return [_fig_output(_figjson(fw.to_dict())) for fw in figs]
    # prefer a numeric slider (the explorers' margins and scales), then a choice, then a toggle
    ctrls.sort(key=lambda c: 0 if isinstance(c[1][0][0], (int, float)) and not isinstance(c[1][0][0], bool)
               and not hasattr(c[0], '_options_labels') else (1 if hasattr(c[0], '_options_labels') else 2))
    def shown(w): return (f'{(getattr(w, "description", "") or type(w).__name__.lower()).rstrip(":")} = '
                          f'{_fmt(w.value) if not hasattr(w, "_options_labels") else w.label}')
    # each figure gets a slider for the first control (in that order) that changes it; else a static snapshot
    outs, todo = [None] * len(figs), list(range(len(figs)))
    for ctrl, spec in ctrls:
        if not todo: break
        for j, o in zip(list(todo), _replay([figs[j] for j in todo], ctrl, spec)):
            if o is None: continue
            others = ', '.join(shown(w) for w, _ in ctrls if w is not ctrl)
            if others: o['metadata']['nbdocs']['caption'] += f' Other controls fixed: {others}.'
            outs[j] = o; todo.remove(j)
    for j in todo: outs[j] = _fig_output(_figjson(figs[j].to_dict()), 'Static snapshot: no control of the widget '
                                                                       'changes this figure.')
    return outs

def _has_figwidget(view) -> bool:
    "Whether the displayed widget (its widget-view data) holds a plotly FigureWidget (unknown: assume it does)."
    root = _widget_registry().get((view or {}).get('model_id'))
    return root is None or any(_is_figwidget(w) for w in _walk(root))

def _replace_widgets(cell):
    outs = cell.get('outputs') or []
    if not any(WIDGET_MIME in (o.get('data') or {}) for o in outs): return
    new = []
    for o in outs:
        data = o.get('data') or {}
        if WIDGET_MIME in data and 'text/html' in data and not _has_figwidget(data[WIDGET_MIME]):
            # a widget that renders itself without a kernel (an anywidget with its own JavaScript, e.g.
            # viz.live's explorer) ships a self-contained HTML copy: keep that, drop the widget view
            new.append({**o, 'data': {'text/html': data['text/html']}})
        elif WIDGET_MIME in data: new.extend(_widget_outputs((data[WIDGET_MIME] or {}).get('model_id')))
        else: new.append(o)
    cell['outputs'] = new


# ----------------------------------------------------------------------------------------------------------------
# Stage 2: executed notebooks -> myst-nb pages

_re_opt = re.compile(r'^\s*#\|\s*([\w-]+)\s*:\s*(.*?)\s*$')
_re_dir = re.compile(r'^\s*#\|')

def split_options(src: str):
    "Leading `#| key: value` cell options (Quarto style) and the code without any leading `#|` line."
    lines, opts = src.splitlines(), {}
    i = 0
    while i < len(lines) and (_re_dir.match(lines[i]) or (not lines[i].strip() and opts)):
        m = _re_opt.match(lines[i])
        if m: opts[m.group(1)] = m.group(2).strip('"\'').lower() if m.group(1) != 'code-summary' else m.group(2)
        i += 1
    return opts, '\n'.join(lines[i:]).strip('\n')

def _text(v) -> str: return ''.join(v) if isinstance(v, list) else (v or '')

def _clean_stream(s: str) -> str:
    "Strip ANSI codes and keep only the last state of lines rewritten with carriage returns (progress bars)."
    s = _ANSI.sub('', s)
    return '\n'.join(l.rstrip('\r').split('\r')[-1] for l in s.split('\n'))

class Linker:
    "Names in backticks -> links (nbdev's lookup), nbdev's absolute doc links -> relative links, source pages."
    def __init__(self, settings: dict, pages: dict):
        self.s, self.pages = settings, pages             # pages: nbs-relative notebook path -> docname
        from urllib.parse import urljoin
        host = settings.get('doc_host', '').rstrip('/')
        self.base = urljoin(host + '/', settings.get('doc_baseurl', '').strip('/')).rstrip('/') + '/' if host else None
        self.gh = f"{settings.get('git_url', '').rstrip('/')}/blob/{settings.get('branch', 'main')}/"
        self.lib = settings.get('lib_path', settings.get('lib_name', ''))
        try:
            from nbdev.doclinks import NbdevLookup
            self.lookup = NbdevLookup()
        except Exception as e:
            print(f'nbdocs: warning: no nbdev lookup, names in backticks are not linked ({e})', file=sys.stderr)
            self.lookup = None
        self.modules = set()
        self.anchors = {}                                   # docname -> ids of its headings (set by `index_anchors`)

    def index_anchors(self, docname: str, nb: dict):
        "Ids Sphinx will give the headings of page `docname` (prose headings and show_doc names)."
        ids = self.anchors.setdefault(docname, set())
        title = (nb.get('metadata', {}).get('nbdocs_frontmatter') or {}).get('title')
        if title: ids.add(self.make_id(str(title)))
        for c in nb.get('cells', []):
            texts = [_text(c.get('source'))] if c.get('cell_type') == 'markdown' else [
                _text((o.get('data') or {}).get('text/markdown')) for o in c.get('outputs') or []]
            for t in texts:
                for m in re.finditer(r'^#{1,6}\s+(.+?)\s*$', t, re.M): ids.add(self.make_id(re.sub(r'[`*]', '', m.group(1))))

    @staticmethod
    def make_id(s: str) -> str:
        from docutils.nodes import make_id
        return make_id(s)

    def _rel(self, target: str, docname: str) -> str:
        return posixpath.relpath(target, posixpath.dirname(docname) or '.')

    def relativize(self, md: str, docname: str, nb_dir: str) -> str:
        def doc_link(m):
            path, frag = m.group(1) or 'index.html', m.group(2)
            url = self._rel(path, docname)
            return url + self.fragment(path[:-len('.html')] if path.endswith('.html') else path, frag)
        if self.base: md = re.sub(re.escape(self.base) + r'([^\s)#"\'<>]*)(#[^\s)"\'<>]*)?', doc_link, md)
        def nb_link(m):
            target = posixpath.normpath(posixpath.join(nb_dir, m.group(1)))
            doc = self.pages.get(target)
            if doc is None: return m.group(0)
            return f'](' + self._rel(doc + '.html', docname) + self.fragment(doc, m.group(2)) + ')'
        return re.sub(r'\]\(((?![a-z]+:)[^)\s#]+\.ipynb)(#[^)\s]*)?\)', nb_link, md)

    def fragment(self, doc: str, frag: str | None) -> str:
        "`#id` of an anchor of page `doc`: nbdev's `#Class.method` falls back to `#class` (then to no anchor)."
        if not frag or len(frag) < 2: return ''
        ids = self.anchors.get(doc)
        name = frag[1:]
        while ids is not None and self.make_id(name) not in ids and '.' in name: name = name.rsplit('.', 1)[0]
        if ids is not None and self.make_id(name) not in ids: return ''
        return '#' + self.make_id(name)

    def linkify(self, md: str) -> str:
        if not self.lookup: return md
        try: return self.lookup.linkify(md) or md
        except Exception: return md

    def source_link(self, url: str, sym: str, docname: str) -> str:
        "Local source page for a link into this repository's library code, else `url`."
        if not url.startswith(self.gh): return url
        path, _, line = url[len(self.gh):].partition('#L')
        if not (ROOT / path).is_file(): return url
        if not line.isdigit(): line = str(_def_line(ROOT / path, sym) or 1)
        self.modules.add(path)
        return self._rel(f'_modules/{path}.html', docname) + f'#L-{line}'

def _def_line(py: Path, sym: str) -> int | None:
    "Line of the definition of `sym` (`f`, `Class`, `Class.method`) in module `py`."
    try: tree = ast.parse(py.read_text(encoding='utf-8'))
    except (OSError, SyntaxError): return None
    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    head, _, tail = sym.partition('.')
    for node in tree.body:
        if isinstance(node, defs) and node.name == head:
            if not tail: return node.lineno
            for sub in getattr(node, 'body', []):
                if isinstance(sub, defs) and sub.name == tail: return sub.lineno
            return node.lineno
        if isinstance(node, defs) and tail and node.name == tail:          # fastcore @patch'ed method
            return node.lineno
    return None

_re_srclink = re.compile(r'\[source\]\(([^)\s]+)\)(\{[^}]*\})?')
_re_heading = re.compile(r'^(#{1,6})\s+(.+?)\s*$')

def showdoc_markdown(md: str, linker: Linker, docname: str, nb_dir: str) -> str:
    "show_doc's markdown as page content: heading (a section, in the page ToC) first, then the source link."
    blocks = [b for b in re.split(r'\n\s*\n', md.strip()) if b.strip() and b.strip() != '---']
    head = next((i for i, b in enumerate(blocks) if _re_heading.match(b.strip()) and '\n' not in b.strip()), None)
    src = next((i for i, b in enumerate(blocks) if _re_srclink.fullmatch(b.strip())), None)
    sym = _re_heading.match(blocks[head].strip()).group(2).strip('`') if head is not None else ''
    out = []
    if head is not None: out.append(blocks[head])
    if src is not None:
        url = linker.source_link(_re_srclink.fullmatch(blocks[src].strip()).group(1), sym, docname)
        out.append(f'[source]({url}){{.nbdocs-source}}')
    out += [b for i, b in enumerate(blocks) if i not in (head, src)]
    text = '\n\n'.join(out)
    text = _re_srclink.sub(lambda m: f'[source]({m.group(1)}){{.nbdocs-source}}', text) if src is None else text
    return linker.relativize(linker.linkify(text), docname, nb_dir)

_callouts = {'note': 'note', 'tip': 'tip', 'warning': 'warning', 'important': 'important', 'caution': 'caution'}

def convert_markdown(md: str, linker: Linker, docname: str, nb_dir: str) -> str:
    "A markdown cell for myst: Quarto callouts -> admonitions, names in backticks -> links, links made relative."
    def callout(m):
        return ':::{' + _callouts[m.group(1)] + '}'
    md = re.sub(r'^:::+\s*\{\.callout-(note|tip|warning|important|caution)[^}]*\}\s*$', callout, md, flags=re.M)
    return linker.relativize(linker.linkify(md), docname, nb_dir)

def plotly_html(fig: dict, uid: str, caption: str | None = None, number: int | None = None,
                anchor: str | None = None) -> str:
    """A plotly figure as a div drawn by the site's plotly.js (after MathJax is ready, for LaTeX in figures).

    Figures fit the column: a fixed `layout.width` becomes the div's `max-width` (plotly's `responsive` config
    redraws it at the column's width, never wider), and on screens narrower than 560 px a legend beside the plot
    moves below it (and back when the window widens)."""
    layout = dict(fig.get('layout') or {})
    height = layout.get('height') or 450
    width = layout.pop('width', None)
    if width: layout['autosize'] = True
    cfg = {'responsive': True, 'displaylogo': False, **(fig.get('config') or {})}
    payload = json.dumps({'data': fig.get('data', []), 'layout': layout, 'frames': fig.get('frames'), 'config': cfg},
                         ensure_ascii=False, separators=(',', ':')).replace('<', '\\u003c')
    js = ('(function(){var f=' + payload + ';var L0=JSON.stringify(f.layout.legend||{});'
          'function fit(gd){var w=gd.clientWidth,L=JSON.parse(L0),side=(L.orientation||"v")==="v"&&(L.x==null||L.x>=1);'
          'if(!side||f.layout.showlegend===false)return;var narrow=w<560;if(narrow===!!gd._nbdocsNarrow)return;'
          'gd._nbdocsNarrow=narrow;Plotly.relayout(gd,narrow?{"legend.orientation":"h","legend.x":0,'
          '"legend.xanchor":"left","legend.y":null,"legend.yanchor":null}:{"legend.orientation":L.orientation||null,'
          '"legend.x":L.x==null?null:L.x,"legend.xanchor":L.xanchor||null,"legend.y":L.y==null?null:L.y,'
          '"legend.yanchor":L.yanchor||null});}'
          'function draw(){return Plotly.newPlot("' + uid + '",f.data,f.layout,f.config).then(function(gd){'
          'fit(gd);window.addEventListener("resize",function(){fit(gd);});'
          'return f.frames?Plotly.addFrames(gd,f.frames):gd;});}'
          'function go(){var m=window.MathJax&&window.MathJax.startup&&window.MathJax.startup.promise;'
          '(m?m.then(draw,draw):draw());}'
          'if(document.readyState==="loading")document.addEventListener("DOMContentLoaded",go);else go();})();')
    num = f'<span class="nbdocs-fignum">Figure {number}.</span> ' if number else ''
    cap = f'<div class="nbdocs-caption">{num}{html.escape(caption or "")}</div>' if caption or number else ''
    style = f'height:{int(height)}px; width:100%;' + (f' max-width:{int(width)}px;' if width else '')
    wrap_id = f' id="{anchor}"' if anchor else ''
    return (f'<div class="nbdocs-plotly-wrap"{wrap_id}><div id="{uid}" class="plotly-graph-div nbdocs-plotly" '
            f'style="{style}"></div><script type="text/javascript">{js}</script>{cap}</div>')

def _flag_note(meta: dict) -> str | None:
    nd = meta.get('nbdocs') or {}
    flags = nd.get('flags')
    if not flags: return None
    names = ', '.join(f'`{f}`' for f in flags)
    if 'gpu' in flags: what = 'This cell needs a GPU' + (f' (flags {names})' if len(flags) > 1 else '')
    else: what = f'This cell is flagged {names}' + (' (long-running)' if flags == ['slow'] else '')
    if nd.get('ran'): return f'{what}: it ran for this page.'
    return (f'{what}: it was not run when this page was built (outputs shown, if any, are the ones saved in the '
            f'notebook). Run it where it can run, or build with `python tools/nbdocs.py --flags {" ".join(flags)}`.')

# The course: the articles a newcomer reads in order (docnames; missing ones are skipped). Every other page goes
# under "Reference", by package in notebook order, each package's overview page (`losses`, `data`, ...) first
# with its sub-pages nested under it, so new notebooks need no change here.
START = ['install']
COURSE = ['losses', 'losses.criteria', 'losses.margins', 'losses.heads', 'margin_explorer', 'feature_geometry',
          'models.architecture', 'train.comparison', 'results']

def site_structure(docs: list, titles: dict) -> tuple[list, dict, list]:
    """The sidebar for pages `docs` (notebook order, without `index`): (toctrees of the index page as
    `[(caption, [entry, ...])]`, `{overview page: [its sub-pages' entries]}`, the course in reading order).
    An entry is a docname, or `Title (docname) <docname>` when another page has the same title."""
    seen = {}
    for d in docs: seen.setdefault(titles.get(d, d), []).append(d)
    def entry(d):
        t = titles.get(d, d)
        return f'{t} ({d}) <{d}>' if len(seen.get(t, [])) > 1 else d
    start = [d for d in START if d in docs]
    course = [d for d in COURSE if d in docs]
    rest = [d for d in docs if d not in start and d not in course]
    groups = {}
    for d in rest: groups.setdefault(d.split('/')[0].split('.')[0], []).append(d)
    ref, subs = [], {}
    for key, ds in groups.items():
        if key in ds and len(ds) > 1:                 # the package's overview page, its sub-pages nested under it
            ref.append(entry(key)); subs[key] = [entry(d) for d in ds if d != key]
        else: ref += [entry(d) for d in ds]
    tocs = [(None, [entry(d) for d in start]), ('Course', [entry(d) for d in course]), ('Reference', ref)]
    return [(c, e) for c, e in tocs if e], subs, ['index'] + course

def next_link(docname: str, course: list, titles: dict, descriptions: dict, linker) -> str | None:
    "The closing 'Next' paragraph of a course page (None for pages off the course and for its last page)."
    if docname not in course or course.index(docname) == len(course) - 1: return None
    nxt = course[course.index(docname) + 1]
    step = course.index(nxt)
    desc = descriptions.get(nxt)
    return ('{.nbdocs-next}\n' + f'**Next** (course step {step} of {len(course) - 1}): '
            f'[{titles.get(nxt, nxt)}]({linker._rel(nxt + ".html", docname)})' + (f': {desc}' if desc else ''))

_re_figref = re.compile(r'@(fig-[\w-]+)')
_re_eqlabel = re.compile(r'\$\$\s*\{#(eq-[\w-]+)\}')
_re_eqref = re.compile(r'@(eq-[\w-]+)')

def _figure_labels(nb: dict) -> dict:
    "`{label: number}` of the figures of a page: cells with a `#| label: fig-...` option, numbered in page order."
    n, labels = 0, {}
    for c in nb.get('cells', []):
        if c.get('cell_type') != 'code': continue
        opts, _ = split_options(_text(c.get('source')))
        if opts.get('include') == 'false' or opts.get('output') == 'false': continue
        k = sum(1 for o in c.get('outputs') or [] if PLOTLY_MIME in (o.get('data') or {}))
        if k and opts.get('label', '').startswith('fig-'): labels[opts['label']] = n + 1
        n += k
    return labels

_re_display = re.compile(r'^(\$\$)(?=\s*\S)((?:(?!\$\$).)+?)\$\$[ \t]*$(?![ \t]*\()', re.M | re.S)

def cross_refs(md: str, figs: dict, eqs: dict | None = None, docname: str = '') -> str:
    """Quarto-style references: `@fig-x` -> a link 'Figure N'; `$$ ... $$ {#eq-x}` -> a numbered, labelled
    equation, `@eq-x` -> a link to it. With `eqs` (a counter kept across the page's cells) every other display
    equation on lines of its own is numbered too (label `<page>-eq-<n>`)."""
    md = _re_figref.sub(lambda m: f'[Figure {figs[m.group(1)]}](#{m.group(1)})' if m.group(1) in figs else m.group(0), md)
    md = _re_eqlabel.sub(lambda m: f'$$ ({m.group(1)})', md)
    if eqs is not None:
        def number(m):
            if '```' in m.group(2): return m.group(0)
            eqs['n'] = eqs.get('n', 0) + 1
            return f'$${m.group(2)}$$ ({re.sub(r"[^a-z0-9]+", "-", docname.lower())}-eq-{eqs["n"]})'
        md = _re_display.sub(number, md)
    return _re_eqref.sub(lambda m: '{eq}`' + m.group(1) + '`', md)

def convert_notebook(nb: dict, rel: Path, docname: str, linker: Linker, toc: list | None,
                     tail: str | None = None, download: str | None = None) -> tuple[dict, str]:
    """An executed notebook -> (myst-nb notebook, page title). `toc`: toctrees to append; `tail`: markdown to end
    the page with (the course's next link); `download`: URL of the notebook, linked under the title."""
    nb_dir = rel.parent.as_posix() if rel.parent != Path('.') else ''
    fm = nb.get('metadata', {}).get('nbdocs_frontmatter') or {}
    title = str(fm.get('title') or page_name(rel))
    cells, uid = [], 0
    def md_cell(s): cells.append({'cell_type': 'markdown', 'metadata': {}, 'source': s})
    head = f'# {title}\n'
    if fm.get('description'):
        head += '\n{.nbdocs-lead}\n' + convert_markdown(str(fm['description']), linker, docname, nb_dir) + '\n'
    if download:
        head += (f'\n{{.nbdocs-download}}\n<a href="{download}" download>Download this notebook</a> '
                 f'(`{rel.name}`; run it in JupyterLab to use its widgets)\n')
    md_cell(head)
    figs, eqs = _figure_labels(nb), {}
    for c in nb.get('cells', []):
        src = _text(c.get('source'))
        if c.get('cell_type') == 'raw': continue
        if c.get('cell_type') == 'markdown':
            if src.strip(): md_cell(cross_refs(convert_markdown(src, linker, docname, nb_dir), figs, eqs, docname))
            continue
        if c.get('cell_type') != 'code': continue
        opts, code = split_options(src)
        if opts.get('include') == 'false': continue
        meta = c.get('metadata') or {}
        note = _flag_note(meta)
        outputs, asis_md, first_fig = [], [], True
        for o in c.get('outputs') or []:
            o = dict(o)
            data = dict(o.get('data') or {})
            if o.get('output_type') == 'error': continue
            if o.get('output_type') == 'stream':
                if opts.get('warning') == 'false' and o.get('name') == 'stderr': continue
                text = _clean_stream(_text(o.get('text')))
                if text.strip(): outputs.append({**o, 'text': text})
                continue
            if opts.get('output') == 'asis' and 'text/markdown' in data:
                asis_md.append(showdoc_markdown(_text(data['text/markdown']), linker, docname, nb_dir)); continue
            if PLOTLY_MIME in data:
                uid += 1
                cap = ((o.get('metadata') or {}).get('nbdocs') or {}).get('caption')
                label = opts.get('label') if first_fig and opts.get('label', '').startswith('fig-') else None
                user_cap = (opts.get('fig-cap') or '') if first_fig else ''
                cap = ' '.join(x for x in (user_cap, cap) if x)
                first_fig = False
                data = {'text/html': plotly_html(data[PLOTLY_MIME], f'nbdocs-fig-{uid}', cap or None, number=uid,
                                                 anchor=label or f'figure-{uid}')}
            elif WIDGET_MIME in data:
                data = {'text/html': '<div class="nbdocs-note">An interactive widget: run the notebook in '
                                     'JupyterLab to use it.</div>'}
            elif 'text/markdown' in data:
                data['text/markdown'] = linker.relativize(_text(data['text/markdown']), docname, nb_dir)
            if not data: continue
            o['data'] = data
            o['metadata'] = {k: v for k, v in (o.get('metadata') or {}).items() if k != 'nbdocs'}
            outputs.append(o)
        if note: md_cell(':::{note}\n' + note + '\n:::')
        tags = []
        if opts.get('echo') == 'false': tags.append('remove-input')
        if opts.get('output') == 'false': tags.append('remove-output'); outputs = []
        if opts.get('code-fold') in ('true', 'hide'): tags.append('hide-input')
        show_code = bool(code.strip()) and 'remove-input' not in tags
        if show_code or outputs:
            cells.append({'cell_type': 'code', 'execution_count': None, 'outputs': outputs, 'source': code,
                          'metadata': {'tags': tags} if tags else {}})
        for m in asis_md: md_cell(m)
    if tail: md_cell(tail)
    for caption, docs in toc or []:
        cap = f':caption: {caption}\n' if caption else ''
        md_cell('```{toctree}\n:hidden:\n:maxdepth: 1\n' + cap + '\n' + '\n'.join(docs) + '\n```')
    meta = {'kernelspec': {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'},
            'language_info': {'name': 'python', 'pygments_lexer': 'ipython3'}}
    if fm.get('description'): meta['myst'] = {'html_meta': {'description': str(fm['description'])}}
    for i, c in enumerate(cells): c['id'] = f'nbdocs-{i}'
    return {'cells': cells, 'metadata': meta, 'nbformat': 4, 'nbformat_minor': 5}, title

def source_pages(modules: set, out: Path, title: str):
    "Highlighted, line-anchored pages `_modules/<path>.html` for the library's source files."
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer
    fmt = HtmlFormatter(linenos='inline', linespans='L', cssclass='highlight')
    css = fmt.get_style_defs('.highlight')
    for path in sorted(modules):
        src = (ROOT / path).read_text(encoding='utf-8')
        depth = path.count('/') + 1
        up = '../' * depth
        body = highlight(src, PythonLexer(), fmt)
        page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(path)} - '
                f'{html.escape(title)}</title><link rel="icon" href="{up}_static/favicon.svg">'
                f'<style>body{{font-family:system-ui,sans-serif;margin:1.5rem}}pre{{font-size:13px;line-height:1.4;overflow-x:auto}}'
                f'span[id^="L-"]:target{{background:#fff3b0;display:inline-block;width:100%}}{css}</style></head>'
                f'<body><p><a href="{up}index.html">{html.escape(title)}</a> / source: <code>{html.escape(path)}</code>'
                f' (generated from the notebooks by nbdev)</p>{body}</body></html>\n')
        dest = out / '_modules' / (path + '.html')
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.exists() or dest.read_text(encoding='utf-8') != page: dest.write_text(page, encoding='utf-8')

def write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text(encoding='utf-8') == text: return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding='utf-8')
    return True


# ----------------------------------------------------------------------------------------------------------------
# README from index

_re_include = re.compile(r'<!--\s*nbdocs:\s*readme-include\s+(\S+?)\s*-->')

def readme_from(nb: dict, includes: dict | None = None, nbs_dir: str = 'nbs') -> str:
    """README.md from the executed index notebook: title, summary, prose, code and its text outputs. A markdown cell
    holding `<!-- nbdocs: readme-include X.ipynb -->` is followed by notebook X's cells (`includes[X]`, its title
    left out): the install page, whose commands the README keeps. Cells holding `<!-- nbdocs: readme-skip -->` are
    left out. Links to notebooks point into `nbs_dir`."""
    fm = nb.get('metadata', {}).get('nbdocs_frontmatter') or {}
    parts = [f"# {fm.get('title', 'README')}"]
    if fm.get('description'): parts.append(f"> {fm['description']}")
    def link(md): return re.sub(r'\]\(((?![a-z]+:)[^)\s#]+\.ipynb(?:#[^)\s]*)?)\)', rf'](' + nbs_dir + r'/\1)', md)
    def add(cells):
        for c in cells:
            src = _text(c.get('source'))
            if c.get('cell_type') == 'markdown' and src.strip():
                if '<!-- nbdocs: readme-skip -->' in src: continue      # a line for the site only
                inc = _re_include.search(src)
                parts.append(link(_re_include.sub('', src).strip()))
                if inc and (includes or {}).get(inc.group(1)):
                    add(includes[inc.group(1)].get('cells', []))
                continue
            if c.get('cell_type') != 'code': continue
            opts, code = split_options(src)
            if opts.get('include') == 'false': continue
            if code.strip() and opts.get('echo') != 'false': parts.append(f'```python\n{code}\n```')
            if opts.get('output') == 'false': continue
            for o in c.get('outputs') or []:
                data = o.get('data') or {}
                if o.get('output_type') == 'stream': text = _clean_stream(_text(o.get('text')))
                elif 'text/markdown' in data: parts.append(_text(data['text/markdown']).strip()); continue
                elif PLOTLY_MIME in data:
                    parts.append('*(The figure this draws is on the documentation site.)*'); continue
                elif 'text/plain' in data and not ({'text/html', 'image/png'} & set(data)):
                    text = _text(data['text/plain'])
                else: continue
                if text.strip(): parts.append(f'```\n{text.rstrip()}\n```')
    add(nb.get('cells', []))
    note = ('<!-- Generated from nbs/index.ipynb by `python tools/nbdocs.py --readme`: edit the notebook, not this '
            'file. -->')
    return '\n\n'.join([parts[0], note] + [x for x in parts[1:] if x]) + '\n'


# ----------------------------------------------------------------------------------------------------------------
# The build

def _stage1_source() -> str:
    "The execution stage's code (this file's 'Stage 1' section): changing the rendering re-executes nothing."
    text = Path(__file__).read_text(encoding='utf-8')
    a, b = text.find('# Stage 1: execution'), text.find('# Stage 2: executed notebooks')
    return text[a:b] if 0 <= a < b else text

def _load_json(p: Path, default):
    try: return json.loads(p.read_text(encoding='utf-8'))
    except (OSError, ValueError): return default

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--flags', default='', help='space-separated test flags whose cells also run (e.g. "gpu")')
    ap.add_argument('--force', action='store_true', help='re-execute every notebook (a cold build)')
    ap.add_argument('--readme', action='store_true', help='also write README.md from nbs/index.ipynb')
    ap.add_argument('--workers', type=int, default=2, help='notebooks executed in parallel (default 2)')
    ap.add_argument('--only', default='',
                    help='comma-separated notebooks (`12_losses.margins`, `12_losses.margins.ipynb`) or pages '
                         '(`losses.margins`) to execute (when changed) and render; the other pages keep their last '
                         'built state (a quick check of a few pages; the full build is the one to publish)')
    ap.add_argument('--keep-going', action='store_true',
                    help='render the site even when a notebook fails (failed pages say so); still exits 1')
    args = ap.parse_args(argv)
    t0 = time.time()
    os.chdir(ROOT)
    if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))   # this project's library (links, as the workers)
    settings = read_settings()
    flags = sorted(set(args.flags.split()))
    nbs = ROOT / settings.get('nbs_path', 'nbs')
    site = ROOT / settings.get('doc_path', 'docs/_site')
    rels = find_notebooks(nbs, settings.get('recursive', 'True').lower() in ('true', '1', 'yes'))
    if not rels: print(f'nbdocs: no notebooks in {nbs}', file=sys.stderr); return 1
    pages = {r.as_posix(): page_name(r) for r in rels}
    dup = {d for d in pages.values() if list(pages.values()).count(d) > 1}
    if dup:
        print(f'nbdocs: notebooks map to the same page {sorted(dup)}: {[r for r, d in pages.items() if d in dup]}; '
              'rename one', file=sys.stderr)
        return 1
    if 'index' not in pages.values(): print('nbdocs: nbs/index.ipynb is missing', file=sys.stderr); return 1
    only = None
    if args.only.strip():
        only, names = set(), [n.strip() for n in args.only.split(',') if n.strip()]
        by_name = {}
        for r, d in pages.items():
            for k in (r, r.removesuffix('.ipynb'), Path(r).name, Path(r).name.removesuffix('.ipynb'), d, d + '.html'):
                by_name.setdefault(k, r)
        unknown = [n for n in names if n not in by_name]
        if unknown:
            print(f'nbdocs: --only: no notebook or page named {unknown}; allowed: notebooks as in nbs/ '
                  f'(e.g. {next(iter(pages))!r}) or page names (e.g. {next(iter(pages.values()))!r})', file=sys.stderr)
            return 1
        only = {by_name[n] for n in names}

    # -- stage 1: execute what changed --------------------------------------------------------------------------
    common = sha(b'|'.join([CACHE_VERSION.encode(), (ROOT / 'settings.ini').read_bytes(),
                            _stage1_source().encode(), ' '.join(flags).encode(), sys.version.encode()]))
    jobs, cached, results = [], [], {}
    this = Path(__file__).resolve().relative_to(ROOT).as_posix()
    for r in rels:
        key = sha(common.encode() + (nbs / r).read_bytes())
        out, meta_p = EXEC / (r.as_posix() + '.json'), EXEC / (r.as_posix() + '.meta.json')
        meta = _load_json(meta_p, {})
        if only is not None and r.as_posix() not in only:          # a subset build: leave the others as they are
            if out.exists(): cached.append((r, key, out, meta_p, 0))
            continue
        fresh = (not args.force and meta.get('key') == key and out.exists() and
                 all((ROOT / p).is_file() and sha((ROOT / p).read_bytes()) == h for p, h in meta.get('deps', {}).items()
                     if p != this))       # this tool is a dependency only through its execution stage (`common`)
        (cached if fresh else jobs).append((r, key, out, meta_p, meta.get('seconds', 0)))
    n_exec = len(jobs)
    print(f'nbdocs: {len(rels)} notebooks: {n_exec} to execute, {len(cached)} unchanged'
          + (f' or kept as last executed (--only {len(only)})' if only is not None else '')
          + (f' (flags: {" ".join(flags)})' if flags else ''), flush=True)
    never = [r.as_posix() for r in rels if not (EXEC / (r.as_posix() + '.json')).exists()
             and not any(j[0] == r for j in jobs)]
    failed = {}
    t_exec = time.time()
    if jobs:
        jobs.sort(key=lambda j: -j[4])                             # longest first (times from the last build)
        ctx = multiprocessing.get_context('spawn')
        with ProcessPoolExecutor(max_workers=max(1, min(args.workers, len(jobs))), mp_context=ctx,
                                 max_tasks_per_child=1) as ex:
            futs = {ex.submit(execute_notebook, r.as_posix(), flags, str(out)): (r, key, out, meta_p)
                    for r, key, out, meta_p, _ in jobs}
            for f in as_completed(futs):
                r, key, out, meta_p = futs[f]
                try: res = f.result()
                except Exception as e: res = dict(ok=False, seconds=0, error=f'worker crashed: {e!r}')
                if res['ok']:
                    meta_p.write_text(json.dumps({'key': key, 'deps': res['deps'], 'seconds': res['seconds']}))
                    print(f'nbdocs:   executed {r} in {res["seconds"]:.1f} s', flush=True)
                else:
                    failed[r.as_posix()] = res['error']
                    meta_p.unlink(missing_ok=True); out.unlink(missing_ok=True)
                    print(f'nbdocs:   FAILED {r} after {res["seconds"]:.1f} s\n{res["error"]}', file=sys.stderr, flush=True)
    t_exec = time.time() - t_exec
    for stale in EXEC.rglob('*.json') if EXEC.exists() else []:      # notebooks that were removed
        rel = stale.relative_to(EXEC).as_posix()
        if rel.removesuffix('.meta.json').removesuffix('.json') not in pages: stale.unlink()
    if failed and not args.keep_going:
        print(f'nbdocs: {len(failed)} notebook(s) failed: {", ".join(failed)}; no site written '
              '(--keep-going renders the others)', file=sys.stderr)
        return 1

    # -- stage 2: pages, then Sphinx ----------------------------------------------------------------------------
    t_render = time.time()
    linker = Linker(settings, {k: v for k, v in pages.items()})
    titles, wanted = {}, set()
    readme_nb = None
    executed = {r.as_posix(): _load_json(EXEC / (r.as_posix() + '.json'), None) for r in rels
                if r.as_posix() not in failed}
    for r in never:                                                  # --only, never built: a placeholder page
        executed[r] = {'cells': [{'cell_type': 'markdown', 'source': f'Not built yet: this is a partial build '
                                  f'(`--only`); `python tools/nbdocs.py` builds `{r}`.'}],
                       'metadata': {'nbdocs_frontmatter': {'title': page_name(Path(r))}}}
    for r in rels:
        if executed.get(r.as_posix()): linker.index_anchors(pages[r.as_posix()], executed[r.as_posix()])
    fms = {pages[r]: ((executed.get(r) or {}).get('metadata', {}).get('nbdocs_frontmatter') or {}) for r in pages}
    page_titles = {d: str(fm.get('title') or d) for d, fm in fms.items()}
    descriptions = {d: convert_markdown(str(fm['description']), linker, d, '') for d, fm in fms.items()
                    if fm.get('description')}
    toc, subtocs, course = site_structure([pages[r.as_posix()] for r in rels if pages[r.as_posix()] != 'index'],
                                          page_titles)
    notebooks = PROC / 'extra' / '_notebooks'                     # every page links its source notebook
    for r in rels:
        dest = notebooks / r
        if not dest.exists() or dest.read_bytes() != (nbs / r).read_bytes():
            dest.parent.mkdir(parents=True, exist_ok=True); shutil.copyfile(nbs / r, dest)
    for p in notebooks.rglob('*.ipynb'):
        if p.relative_to(notebooks).as_posix() not in pages: p.unlink()
    for r in rels:
        docname = pages[r.as_posix()]
        dest = SRC / (docname + '.ipynb')
        wanted.add(dest)
        if r.as_posix() in failed:
            nb = {'cells': [{'cell_type': 'markdown', 'source': 'This notebook failed to execute when the site was built:'},
                            {'cell_type': 'code', 'source': '', 'outputs': [{'output_type': 'stream', 'name': 'stderr',
                             'text': failed[r.as_posix()]}], 'metadata': {}}],
                  'metadata': {'nbdocs_frontmatter': {'title': f'{docname} (failed)'}}}
        else: nb = executed[r.as_posix()]
        page_toc = toc if docname == 'index' else [(None, subtocs[docname])] if docname in subtocs else None
        page, titles[docname] = convert_notebook(
            nb, r, docname, linker, page_toc, tail=next_link(docname, course, page_titles, descriptions, linker),
            download=linker._rel('_notebooks/' + r.as_posix(), docname))
        write_if_changed(dest, json.dumps(page, indent=1, ensure_ascii=False) + '\n')
        if r.as_posix() == settings.get('readme_nb', 'index.ipynb') and r.as_posix() not in failed: readme_nb = nb
    for p in SRC.rglob('*.ipynb'):
        if p not in wanted: p.unlink()
    lib = settings.get('lib_path', settings.get('lib_name'))
    mods = {p.relative_to(ROOT).as_posix() for p in (ROOT / lib).rglob('*.py')
            if p.name != '_modidx.py' and '__pycache__' not in p.parts}
    extra = PROC / 'extra'
    if (extra / '_modules').exists():
        for p in (extra / '_modules').rglob('*.html'):
            if p.relative_to(extra / '_modules').as_posix()[:-len('.html')] not in mods: p.unlink()
    source_pages(mods, extra, settings.get('title', lib))
    state = _load_json(STATE, {})
    structure = sha(json.dumps([toc, subtocs, course, titles, descriptions], sort_keys=True).encode())
    cmd = [sys.executable, '-m', 'sphinx', '-b', 'html', '-q', '--keep-going', '-j', str(max(1, args.workers)),
           '-c', str(DOCS), '-d', str(BUILD / 'doctrees'), str(SRC), str(site)]
    if only is not None and (site / 'index.html').exists():       # Sphinx writes just these pages
        cmd += [str(SRC / (pages[r] + '.ipynb')) for r in sorted(only)]
        if state.get('structure') != structure:
            print('nbdocs: --only: the page structure changed; pages not named keep their old navigation until '
                  'a full build', flush=True)
    elif state.get('structure') != structure or not (site / 'index.html').exists(): cmd.insert(3, '-a')
    sp = subprocess.run(cmd, cwd=ROOT)
    t_render = time.time() - t_render
    if sp.returncode != 0:
        print(f'nbdocs: sphinx-build failed (exit {sp.returncode})', file=sys.stderr)
        return 1
    if args.readme:
        if readme_nb is None: print('nbdocs: README.md not written (index failed)', file=sys.stderr)
        elif write_if_changed(ROOT / 'README.md', readme_from(readme_nb, {
                m: {**nb_, 'cells': [c for c in nb_.get('cells', []) if not _text(c.get('source')).lstrip().startswith('# ')]}
                for m in _re_include.findall(json.dumps(readme_nb)) for nb_ in [executed.get(m) or {}]},
                settings.get('nbs_path', 'nbs'))):
            print('nbdocs: wrote README.md')
        else: print('nbdocs: README.md is up to date')

    total = time.time() - t0
    kind = 'cold' if n_exec == len(rels) else 'subset' if only is not None else 'incremental'
    now = datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    if kind != 'subset': state['structure'] = structure
    state.update({f'last_{kind}': {'seconds': round(total, 1), 'when': now,
                  'executed': n_exec, 'notebooks': len(rels), 'flags': flags}})
    if not failed: STATE.parent.mkdir(parents=True, exist_ok=True); STATE.write_text(json.dumps(state, indent=1))
    print(f'nbdocs: site: {(site / "index.html").relative_to(ROOT)} ({len(rels)} pages; {n_exec} executed, '
          f'{len(rels) - n_exec} unchanged)')
    print(f'nbdocs: this build ({kind}): {total:.1f} s (execute {t_exec:.1f} s, render {t_render:.1f} s)')
    for k in ('cold', 'incremental'):
        s = state.get(f'last_{k}')
        print(f'nbdocs: last {k} build: ' + (f"{s['seconds']} s ({s['executed']}/{s['notebooks']} notebooks executed, "
                                            f"{s['when']})" if s else 'none recorded yet'))
    if failed:
        print(f'nbdocs: {len(failed)} notebook(s) failed: {", ".join(failed)}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
