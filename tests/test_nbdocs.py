"""The docs builder's page structure and rewriting (`tools/nbdocs.py`), without building the site (fast)."""
import importlib.util, json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location('_nbdocs_unit', ROOT / 'tools' / 'nbdocs.py')
nbdocs = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(nbdocs)


def test_course_first_then_reference_by_package_with_new_notebooks():
    "Course pages first in reading order; every other page under Reference, overview pages before their sub-pages."
    docs = ['core', 'install', 'losses.functional', 'losses.criteria', 'losses.margins', 'losses.heads', 'losses',
            'data.synth', 'data.digits', 'data', 'models.architecture', 'models.api', 'models', 'train.stats',
            'train.comparison', 'train', 'viz.curves', 'viz.spheres', 'viz', 'margin_explorer', 'feature_geometry',
            'analysis.geometry', 'results', 'references']
    titles = {d: d.title() for d in docs} | {'analysis.geometry': 'Feature geometry', 'viz.spheres': 'Feature geometry'}
    tocs, subs, course = nbdocs.site_structure(docs, titles)
    caps = [c for c, _ in tocs]
    assert caps == [None, 'Course', 'Reference']
    assert tocs[0][1] == ['install']
    assert course == ['index', 'losses', 'losses.criteria', 'losses.margins', 'losses.heads', 'margin_explorer',
                      'feature_geometry', 'models.architecture', 'train.comparison', 'results']
    ref = tocs[2][1]
    # new notebooks (models.api, train.stats, data.digits, viz.spheres) land under their package's overview page
    assert ref[:3] == ['core', 'losses.functional', 'data'] and subs['data'] == ['data.synth', 'data.digits']
    assert subs['models'] == ['models.api'] and subs['train'] == ['train.stats']
    assert ref.index('models') < ref.index('train') < ref.index('viz') and ref[-1] == 'references'
    # two pages with one title get their page name in the sidebar
    assert 'Feature geometry (viz.spheres) <viz.spheres>' in subs['viz']
    assert 'Feature geometry (analysis.geometry) <analysis.geometry>' in ref
    listed = tocs[0][1] + tocs[1][1] + ref + [e for v in subs.values() for e in v]
    names = [e.rsplit('<', 1)[-1].rstrip('>') for e in listed]
    assert sorted(names) == sorted(docs)                      # every page exactly once (index is the root)


def test_next_links_follow_the_course():
    class L:
        def _rel(self, t, d): return t
    course = ['index', 'losses', 'results']
    t = nbdocs.next_link('index', course, {'losses': 'Losses'}, {'losses': 'Every loss.'}, L())
    assert '[Losses](losses.html)' in t and 'step 1 of 2' in t and 'Every loss.' in t
    assert nbdocs.next_link('results', course, {}, {}, L()) is None
    assert nbdocs.next_link('core', course, {}, {}, L()) is None


def test_cross_references_and_numbered_equations():
    md = 'See @fig-boundary and @eq-psi.\n\n$$ \\psi(\\theta) = \\cos(\\theta + m) $$ {#eq-psi}\n\n$$\nx = 1\n$$\n\nInline $$a$$ here.'
    out = nbdocs.cross_refs(md, {'fig-boundary': 2}, {}, 'losses.margins')
    assert '[Figure 2](#fig-boundary)' in out and '{eq}`eq-psi`' in out
    assert '$$ (eq-psi)' in out and '$$ (losses-margins-eq-1)' in out
    assert 'Inline $$a$$ here.' in out                       # inline display maths untouched
    assert nbdocs.cross_refs('@fig-unknown', {}) == '@fig-unknown'


def test_figures_fit_the_column_and_are_numbered():
    h = nbdocs.plotly_html({'data': [{'type': 'scatter', 'x': [1], 'y': [2]}], 'layout': {'width': 900, 'height': 300}},
                           'nbdocs-fig-3', 'A caption', number=3, anchor='fig-x')
    payload = json.JSONDecoder().raw_decode(h, h.index('var f=') + len('var f='))[0]
    assert 'width' not in payload['layout'] and payload['layout']['autosize'] and payload['config']['responsive']
    assert 'max-width:900px' in h and 'width:100%' in h and 'id="fig-x"' in h
    assert 'Figure 3.</span> A caption' in h


def test_readme_keeps_the_install_page():
    index = {'metadata': {'nbdocs_frontmatter': {'title': 'pkg', 'description': 'What it is.'}}, 'cells': [
        {'cell_type': 'markdown', 'source': 'Intro, see [margins](12_losses.margins.ipynb#plain).'},
        {'cell_type': 'markdown', 'source': 'Install: [here](01_install.ipynb).\n<!-- nbdocs: readme-include 01_install.ipynb -->'},
        {'cell_type': 'code', 'source': 'fig', 'outputs': [{'output_type': 'display_data', 'data': {
            nbdocs.PLOTLY_MIME: {}, 'text/plain': 'fig'}}]}]}
    install = {'cells': [{'cell_type': 'markdown', 'source': '## Run all tests\n\n```sh\nnbdev_test && pytest -q tests\n```'}]}
    md = nbdocs.readme_from(index, {'01_install.ipynb': install})
    assert md.startswith('# pkg') and 'nbdev_test && pytest -q tests' in md
    assert md.index('Install: [here]') < md.index('## Run all tests')
    assert '](nbs/12_losses.margins.ipynb#plain)' in md and 'readme-include' not in md
    assert 'documentation site' in md                        # a figure is named, not dropped silently
