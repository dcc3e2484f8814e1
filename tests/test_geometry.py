"Feature geometry and loss landscapes (`emosynth_nb.analysis`), their figures (`emosynth_nb.viz`), and the digits recipe the geometry page rests on."
import copy, math
import numpy as np
import pytest
import torch
from torch import nn

from emosynth_nb.analysis import (extract_embeddings, unit, class_centres, angles_to, sphere_measures, class_measures,
                                  loss_plane, loss_line, LossMetric)
from emosynth_nb.viz.features import sphere_figure, spheres_side_by_side, projection_figure, class_colours
from emosynth_nb.viz.numbers import project
from emosynth_nb.viz.landscape import landscape_figure, line_figure, landscapes_side_by_side
from emosynth_nb.analysis.landscape import _batches
from emosynth_nb.losses import make_loss

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def axis_points(delta):
    "Four points per class at angle `delta` (radians) from the class's coordinate axis in R³; labels 0, 1, 2."
    c, s, pts, ys = math.cos(delta), math.sin(delta), [], []
    for k in range(3):
        for other, sign in (((k + 1) % 3, 1), ((k + 1) % 3, -1), ((k + 2) % 3, 1), ((k + 2) % 3, -1)):
            p = torch.zeros(3, dtype=torch.float64); p[k], p[other] = c, sign * s
            pts.append(p); ys.append(k)
    return torch.stack(pts), torch.tensor(ys)


def random_rotation(seed=0):
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


# ---------------------------------------------------------------- measures against hand-computed values
@pytest.mark.parametrize("deg", [5, 10, 25, 40])
def test_axis_measures(deg):
    m = sphere_measures(*axis_points(math.radians(deg)), band=0.2)
    assert m['intra_mean_deg'] == pytest.approx(deg) and m['intra_p95_deg'] == pytest.approx(deg)
    assert m['inter_min_deg'] == pytest.approx(90) and m['inter_mean_deg'] == pytest.approx(90)
    assert m['sep_ratio'] == pytest.approx(90 / deg) and m['nearest_acc'] == 1.0
    # gaps are 90-2δ (toward a neighbour) and 90-δ (away): in the 0.2-rad band only when 90-2δ < 11.46°
    assert m['band_frac'] == (0.5 if 90 - 2 * deg < math.degrees(0.2) else 0.0)


def test_measures_invariant_to_rotation_and_length():
    P, y = axis_points(math.radians(25))
    Q = random_rotation(3)
    scale = torch.linspace(0.5, 3, len(P), dtype=torch.float64).unsqueeze(1)
    a, b = sphere_measures(P, y), sphere_measures(scale * P @ Q.T, y)
    for k in ('intra_mean_deg', 'intra_p95_deg', 'inter_min_deg', 'inter_mean_deg', 'band_frac', 'silhouette'):
        assert a[k] == pytest.approx(b[k], abs=1e-9), k


def test_known_pair_angles_and_centres():
    d = torch.tensor([[1., 0, 0], [math.cos(math.pi / 3), math.sin(math.pi / 3), 0], [-math.cos(math.pi / 6), 0.5, 0]])
    m = sphere_measures(d.repeat(3, 1), torch.arange(3).repeat(3))
    assert m['inter_min_deg'] == pytest.approx(60, abs=1e-4) and m['inter_mean_deg'] == pytest.approx(100, abs=1e-4)
    cen, cls = class_centres(d.repeat(3, 1) * 4, torch.arange(3).repeat(3))
    assert torch.allclose(cen, unit(d), atol=1e-12) and cls.tolist() == [0, 1, 2]
    assert torch.allclose(angles_to(d[:1], d[1:2]), torch.tensor([[math.pi / 3]], dtype=torch.float64))


def test_class_measures_table_and_ref_weights():
    P, y = axis_points(math.radians(40))
    t = class_measures(P, y, classes=['a', 'b', 'c'])
    assert list(t.index) == ['a', 'b', 'c'] and np.allclose(t.intra_mean_deg, 40) and np.allclose(t.nearest_deg, 90)
    assert sphere_measures(P, y, ref=3 * torch.eye(3))['band_frac'] == 0.5


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("call,msg", [
    (lambda: sphere_measures(torch.randn(10, 4), torch.arange(10) % 2, dim=3), "must be 3-dimensional here"),
    (lambda: sphere_measures(torch.randn(10, 3), torch.zeros(10, dtype=torch.long)), "need at least 2 classes"),
    (lambda: sphere_measures(torch.randn(10, 1), torch.arange(10) % 2), "at least 2 dimensions"),
    (lambda: sphere_measures(torch.zeros(4, 3), torch.arange(4) % 2), "zero vector"),
    (lambda: sphere_measures(torch.randn(6, 3), torch.arange(5) % 2), "got 5 labels for a batch of 6"),
    (lambda: sphere_measures(torch.randn(6, 3), torch.arange(6) % 2, band=-1), "band must be in (0,"),
    (lambda: sphere_figure(torch.randn(10, 5), torch.arange(10) % 2), "project wider embeddings first"),
    (lambda: sphere_figure(torch.randn(10, 3), torch.ones(10, dtype=torch.long)), "need at least 2 classes"),
    (lambda: spheres_side_by_side({}), "non-empty dict"),
    (lambda: project(torch.randn(10, 4), 'isomap'), "method must be one of"),
    (lambda: project(torch.randn(10, 4), 'pca', dim=1), "dim must be 2 or 3"),
    (lambda: class_colours(0), "n must be in [1, inf)"),
])
def test_bad_input_messages(call, msg):
    with pytest.raises((ValueError, TypeError)) as e: call()
    assert msg in str(e.value)


# ---------------------------------------------------------------- figures
def test_sphere_figure_traces():
    g = torch.Generator().manual_seed(0)
    E = torch.cat([torch.eye(3)[k] + 0.2 * torch.randn(40, 3, generator=g) for k in range(3)]); y = torch.arange(3).repeat_interleave(40)
    fig = sphere_figure(E, y, classes=['p', 'q', 'r'])
    assert [type(t).__name__ for t in fig.data] == ['Surface', 'Scatter3d', 'Scatter3d', 'Scatter3d', 'Scatter3d']
    assert [t.name for t in fig.data[1:]] == ['p', 'q', 'r', 'class centres']
    assert [t.marker.color for t in fig.data[1:4]] == class_colours(3)
    r = np.linalg.norm(np.stack([fig.data[2].x, fig.data[2].y, fig.data[2].z], 1), axis=1)
    assert np.allclose(r, 1)
    side = spheres_side_by_side({'a': (E, y), 'b': (E, y), 'c': (E, y)}, cols=2)
    assert len(side.data) == 15 and {t.scene for t in side.data} == {'scene', 'scene2', 'scene3'}


@pytest.mark.parametrize("method,dim", [('pca', 2), ('pca', 3), ('tsne', 2)])
def test_projection_figure(method, dim):
    X = torch.randn(60, 8); X[:, :3] += 3 * torch.eye(3).repeat_interleave(20, 0); y = torch.arange(3).repeat_interleave(20)
    fig = projection_figure(X, y, method, dim)
    assert [type(t).__name__ for t in fig.data] == ['Scatter' if dim == 2 else 'Scatter3d'] * 3
    assert sum(len(t.x) for t in fig.data) == 60


# ---------------------------------------------------------------- embeddings and landscapes on a tiny model
class Tiny(nn.Module):
    def __init__(self):
        super().__init__(); self.body, self.emb = nn.Linear(8, 16), nn.Linear(16, 3)
    def forward_features(self, x): return torch.relu(self.body(x))
    def forward_head(self, x, pre_logits=False): return self.emb(x)


@pytest.fixture(scope='module')
def trained():
    g = torch.Generator().manual_seed(0); y = torch.arange(240) % 3
    X = torch.randn(240, 8, generator=g) + 1.5 * nn.functional.one_hot(y, 8).float()
    torch.manual_seed(0); net, crit = Tiny(), make_loss('ce', 3, 3)
    init = copy.deepcopy(net), copy.deepcopy(crit)
    opt = torch.optim.Adam([*net.parameters(), *crit.parameters()], lr=1e-2)
    for _ in range(200):
        opt.zero_grad(); crit(net.forward_head(net.forward_features(X), True), y).backward(); opt.step()
    return (X, y), init, net, crit


def test_extract_embeddings(trained):
    (X, y), _, net, _ = trained
    emb, yy = extract_embeddings(net, (X, y), batch_size=50, progress=False)
    assert emb.shape == (240, 3) and torch.equal(yy, y)
    assert torch.allclose(emb, net.emb(torch.relu(net.body(X))), atol=1e-6)


def test_plane_shape_and_minimum_near_centre(trained):
    data, _, net, crit = trained
    before = [p.detach().clone() for p in [*net.parameters(), *crit.parameters()]]
    ls = loss_plane(net, crit, data, steps=9, span=0.5, progress=False)
    assert ls.loss.shape == ls.error.shape == (9, 9) and ls.alpha[4] == 0 and ls.beta[4] == 0
    j, i = np.unravel_index(ls.loss.argmin(), ls.loss.shape)
    assert abs(j - 4) <= 1 and abs(i - 4) <= 1
    assert ls.centre[0] == pytest.approx(LossMetric(net, crit, _batches(data, 512, 256, 'cpu'))()[0], rel=1e-5)
    after = [p.detach() for p in [*net.parameters(), *crit.parameters()]]
    assert all(torch.equal(a, b) for a, b in zip(before, after)) and next(net.parameters()).requires_grad
    fig = landscape_figure(ls)
    assert [type(t).__name__ for t in fig.data] == ['Contour', 'Scatter', 'Surface']
    assert [type(t).__name__ for t in landscapes_side_by_side({'a': ls, 'b': ls}).data] == ['Contour', 'Scatter'] * 2


def test_margin_loss_plane_moves_class_weights(trained):
    data, _, net, _ = trained
    arc = make_loss('arcface', 3, 3, s=16, m=0.3)
    a = loss_plane(net, arc, data, steps=3, span=0.5, progress=False, ignore_1d=True)
    assert a.loss.shape == (3, 3) and np.isfinite(a.loss).all() and a.meta['loss'] == 'arcface'


def test_line_ends_are_the_real_models(trained):
    data, (net0, crit0), net, crit = trained
    ln = loss_line(net0, crit0, net, crit, data, steps=5, t_min=0, t_max=1, progress=False)
    m0 = LossMetric(net0, crit0, _batches(data, 512, 256, 'cpu'))()
    m1 = LossMetric(net, crit, _batches(data, 512, 256, 'cpu'))()
    assert ln.loss[0] == pytest.approx(m0[0], rel=1e-5) and ln.loss[-1] == pytest.approx(m1[0], rel=1e-5)
    assert ln.loss[-1] < ln.loss[0]
    assert len(line_figure({'ce': ln}).data) == 1
    with pytest.raises(ValueError, match="same parameters"): loss_line(nn.Linear(2, 2), crit0, net, crit, data)


# ---------------------------------------------------------------- the real tiny EmoSynthNet (batch-norm buffers, 3-D embedding)
def test_tiny_emosynthnet_embeddings_and_line():
    from emosynth_nb.models import emosynthnet_tiny
    from emosynth_nb.data import SynthFER
    X, y = SynthFER(48, seed=0, size=16).tensors()
    torch.manual_seed(0); model, crit = emosynthnet_tiny(7, 1, embed_dim=3), make_loss('mam+sce', 3, 7)
    init = copy.deepcopy(model), copy.deepcopy(crit)
    model.train(); opt = torch.optim.SGD([*model.parameters(), *crit.parameters()], lr=0.05)
    for _ in range(3):   # a few steps, so that weights and batch-norm running statistics move away from init
        opt.zero_grad(); crit(model.forward_head(model.forward_features(X), pre_logits=True), y).backward(); opt.step()
    emb, yy = extract_embeddings(model, (X, y), batch_size=16, progress=False)
    assert emb.shape == (48, 3) and torch.equal(yy, y) and model.training
    assert len(sphere_figure(emb, yy).data) == 2 + len(torch.unique(y))
    ln = loss_line(*init, model, crit, (X, y), steps=5, t_min=-0.5, t_max=1.5, progress=False)
    assert np.isfinite(ln.loss).all()          # batch-norm variances are not extrapolated below zero
    m1 = LossMetric(model.eval(), crit.eval(), _batches((X, y), 512, 256, 'cpu'))()
    assert ln.loss[3] == pytest.approx(m1[0], rel=1e-5)   # t = 1 is the trained network, buffers included


# ---------------------------------------------------------------- the digits recipe still converges (the geometry page rests on it)
# The page `nbs/65_feature_geometry.ipynb` trains every loss with `recipe('digits', loss_name)` shortened by these
# overrides (its `BUDGET`); keep the two in step. About 1-2 s of CPU per run on an idle core.
PAGE_BUDGET = dict(epochs=60, batch_size=128, lr=1e-2)


@pytest.fixture(scope='module')
def digits_runs():
    from emosynth_nb.core import set_seed
    from emosynth_nb.train import fit
    from emosynth_nb.train.recipes import recipe, task_data, task_model
    train, test = task_data('digits', 0)
    out = {}
    for name in ('ce', 'am_softmax'):
        set_seed(0); model = task_model('digits')
        cfg, kw = recipe('digits', name, embed_dim=model.embed_dim, seed=0, progress=False, **PAGE_BUDGET)
        res = fit(model, make_loss(name, model.embed_dim, 10, **kw), train, test, cfg)
        emb, y = extract_embeddings(res.model, test, progress=False)
        out[name] = res.report, sphere_measures(emb, y)
    return out


@pytest.mark.parametrize("name", ['ce', 'am_softmax'])
def test_digits_recipe_converges(digits_runs, name):
    rep, m = digits_runs[name]
    assert rep.train_acc >= 0.99, f"{name}: training accuracy {rep.train_acc:.3f} < 0.99 under the digits recipe"
    assert rep.test_acc >= 0.9 and not rep.collapsed and not rep.near_chance, rep
    assert m['inter_min_deg'] > 20, m            # ten separate clusters, not a collapse


def test_digits_margin_tightens_classes(digits_runs):
    "What the page shows: AM-Softmax's classes are tighter on the sphere than CE's."
    assert digits_runs['am_softmax'][1]['intra_mean_deg'] < 0.85 * digits_runs['ce'][1]['intra_mean_deg']
