"""Sphinx configuration of the documentation site (built by `python tools/nbdocs.py`, which writes the pages
into `docs/_proc_docs/src/` and runs `sphinx-build -c docs docs/_proc_docs/src docs/_site`).

Everything the pages load is served from the site itself: plotly.js (from the installed `plotly` package) and
MathJax 3 (from the `sphinx-mathjax-offline` package, used only as a source of its files) are copied into
`docs/_proc_docs/assets/` here, and the theme's own assets are local. No CDN is ever referenced.
"""
import configparser, importlib.metadata, re, shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PROC = HERE / '_proc_docs'
ASSETS = PROC / 'assets'

_cp = configparser.ConfigParser(delimiters=['='], interpolation=None)
_cp.read(ROOT / 'settings.ini', encoding='utf-8')
_s = _cp['DEFAULT']

project = _s.get('title', _s.get('lib_name'))
author = _s.get('author', '')
copyright = _s.get('copyright', author)
release = version = _s.get('version', '')


def _copy_assets():
    "plotly.min.js and MathJax 3 (SVG output: no web fonts; what plotly.js needs for LaTeX) into ASSETS."
    import plotly
    mj = next(Path(f.locate()).parent for f in importlib.metadata.files('sphinx-mathjax-offline')
              if str(f).endswith('mathjax/tex-svg-full.js'))
    stamp = f"plotly {plotly.__version__}; mathjax {importlib.metadata.version('sphinx-mathjax-offline')}"
    if (ASSETS / 'stamp.txt').is_file() and (ASSETS / 'stamp.txt').read_text() == stamp: return
    if ASSETS.exists(): shutil.rmtree(ASSETS)
    ASSETS.mkdir(parents=True)
    shutil.copy2(Path(plotly.__file__).parent / 'package_data' / 'plotly.min.js', ASSETS / 'plotly.min.js')
    # the SVG renderer and the components MathJax may load on demand (menu, accessibility, speech)
    shutil.copytree(mj, ASSETS / 'mathjax', ignore=shutil.ignore_patterns(
        'tex-chtml*.js', 'tex-mml-*.js', 'mml-*.js', 'node-main.js', 'chtml', 'chtml.js', 'latest.js'))
    (ASSETS / 'stamp.txt').write_text(stamp)

_copy_assets()

extensions = ['myst_nb', 'sphinx.ext.mathjax', 'sphinx_copybutton', 'sphinxcontrib.bibtex']

# copy buttons on code cells and shell/python blocks (not on outputs); prompts are not copied
copybutton_selector = ('div.cell_input div.highlight pre, div.highlight-sh div.highlight pre, '
                       'div.highlight-python div.highlight pre, div.highlight-bash div.highlight pre')
copybutton_exclude = '.linenos, .gp, .go'
# the bibliography page (nbs/98_references.ipynb) lists docs/references.bib
bibtex_bibfiles = [str(HERE / 'references.bib')]   # (relative paths would be read from the pages' folder)
bibtex_default_style = 'plain'
bibtex_reference_style = 'author_year'
# every display equation numbered, so the text can refer to it (`$$ ... $$ (eq-label)`, {eq}`eq-label`)
math_number_all = True
math_eqref_format = 'Eq. {number}'
numfig = True
source_suffix = {'.ipynb': 'myst-nb', '.md': 'myst-nb'}
exclude_patterns = ['_build', '**.ipynb_checkpoints', 'jupyter_execute']
root_doc = 'index'

# the executed notebooks are rendered as they are: nbdocs.py executed them
nb_execution_mode = 'off'
nb_output_stderr = 'show'
nb_render_markdown_format = 'myst'       # maths in Markdown outputs
nb_ipywidgets_js = {}                    # no widget manager from a CDN: nbdocs replaces widgets by figures
nb_merge_streams = True
myst_enable_extensions = ['dollarmath', 'amsmath', 'colon_fence', 'deflist', 'attrs_inline', 'attrs_block',
                          'html_image', 'substitution']
myst_dmath_double_inline = True
myst_all_links_external = True           # nbdocs.py writes every link as its final relative URL
myst_heading_anchors = 0
suppress_warnings = ['myst.header', 'mystnb.unknown_mime_type', 'misc.highlighting_failure']

mathjax_path = 'mathjax/tex-svg-full.js'
mathjax3_config = {'svg': {'fontCache': 'global'}}

html_theme = 'sphinx_book_theme'
html_title = project
templates_path = ['_templates']
html_static_path = ['_static', str(ASSETS)]
html_css_files = ['nbdocs.css']
html_favicon = '_static/favicon.svg'
html_extra_path = [str(PROC / 'extra')] if (PROC / 'extra').is_dir() else []
html_copy_source = False
html_show_sourcelink = False
html_last_updated_fmt = None
html_theme_options = {
    'home_page_in_toc': True,
    'show_navbar_depth': 1,
    'show_toc_level': 2,
    'use_download_button': False,
    'use_fullscreen_button': False,
    'navigation_with_keys': False,
    'search_bar_text': 'Search the docs ...',
}
pygments_style = 'tango'
html_context = {'default_mode': 'light'}   # no theme-mode console error on a first visit


def _page_assets(app, pagename, templatename, context, doctree):
    """plotly.js only on the pages that draw a plotly figure; MathJax only on pages with maths (Sphinx's own rule)
    or with a plotly figure whose labels hold LaTeX (`"$...$"` strings, which plotly typesets with MathJax)."""
    body = context.get('body') or ''
    if 'nbdocs-plotly' in body:
        app.add_js_file('plotly.min.js', priority=400)
        if re.search(r'"\$[^"\n]+\$"', body): context['has_maths_elements'] = True


def setup(app):
    app.connect('html-page-context', _page_assets, priority=400)   # before sphinx.ext.mathjax (500) reads the flag
