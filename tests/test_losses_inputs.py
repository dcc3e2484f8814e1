"Loss library: every bad input raises (or warns) with a message saying what is wrong and what is allowed; λ schedule; hypothesis properties."
import math, warnings
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st, HealthCheck
from emosynth_nb.losses import *

pytestmark = pytest.mark.usefixtures("one_torch_thread")

def _loss(name="arcface", **hp): return make_loss(name, 4, 3, **hp)
E, Y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])

# ---------------------------------------------------------------- forward inputs (one test per case)
BAD_FORWARD = {
    "emb-1d":            (lambda: _loss()(torch.randn(4), Y[:1]),                     ValueError, "emb must have shape (N, 4)"),
    "emb-wrong-cols":    (lambda: _loss()(torch.randn(5, 3), Y),                      ValueError, "emb must have 4 columns"),
    "emb-int-dtype":     (lambda: _loss()(torch.ones(5, 4, dtype=torch.long), Y),     TypeError, "floating-point"),
    "emb-not-tensor":    (lambda: _loss()([[0.] * 4] * 5, Y),                         TypeError, "must be a torch.Tensor"),
    "emb-nan":           (lambda: _loss()(torch.full((5, 4), float("nan")), Y),       ValueError, "NaN or infinite"),
    "emb-inf":           (lambda: _loss()(E.clone().index_fill_(0, torch.tensor([0]), float("inf")), Y), ValueError, "NaN or infinite"),
    "empty-batch":       (lambda: _loss()(torch.randn(0, 4), torch.zeros(0, dtype=torch.long)), ValueError, "empty batch"),
    "labels-too-big":    (lambda: _loss()(E, torch.tensor([0, 1, 3, 0, 1])),          ValueError, "labels must be in [0, 2]"),
    "labels-negative":   (lambda: _loss()(E, torch.tensor([0, -1, 2, 0, 1])),         ValueError, "labels must be in [0, 2]"),
    "labels-float":      (lambda: _loss()(E, Y.float()),                               TypeError, "integer tensor"),
    "labels-2d":         (lambda: _loss()(E, Y[:, None]),                              ValueError, "labels must have shape (N,)"),
    "labels-count":      (lambda: _loss()(E, Y[:4]),                                   ValueError, "got 4 labels for a batch of 5"),
    "logits-emb-cols":   (lambda: _loss().logits(torch.randn(5, 2)),                   ValueError, "emb must have 4 columns"),
    "crit-logits-1-col": (lambda: CrossEntropy()(torch.randn(5, 1), torch.zeros(5, dtype=torch.long)), ValueError, "at least 2 classes"),
    "crit-logits-nan":   (lambda: Focal()(torch.full((2, 3), float("nan")), Y[:2]),  ValueError, "NaN or infinite"),
    "crit-labels-range": (lambda: ThesisSCE()(torch.randn(2, 3), torch.tensor([0, 5])), ValueError, "labels must be in [0, 2]"),
    "crit-int-logits":   (lambda: SymmetricCE()(torch.ones(2, 3, dtype=torch.long), Y[:2]), TypeError, "floating-point"),
}

@pytest.mark.parametrize("case", list(BAD_FORWARD))
def test_bad_forward_input(case):
    fn, exc, msg = BAD_FORWARD[case]
    with pytest.raises(exc) as e: fn()
    assert msg in str(e.value), str(e.value)

# ---------------------------------------------------------------- hyper-parameters (one test per case)
BAD_HPARAMS = {
    "s-zero":                (lambda: _loss("cosface", s=0.),                 ValueError, "s must be in (0, inf)"),
    "s-negative":            (lambda: _loss("arcface", s=-1.),                ValueError, "s must be in (0, inf)"),
    "m-negative-cosface":    (lambda: _loss("cosface", m=-0.1),               ValueError, "m must be in [0, inf)"),
    "m-too-big-cosface":     (lambda: _loss("am_softmax", m=5.),              ValueError, "cosine units and must be in [0, 2]"),
    "m-negative-arcface":    (lambda: _loss("arcface", m=-0.5),               ValueError, "m must be in [0, inf)"),
    "arcface-degrees":       (lambda: _loss("arcface", m=28.6),               ValueError, "looks like degrees"),
    "arcface-fallback":      (lambda: _loss("arcface", fallback="soft"),      ValueError, "fallback must be one of"),
    "grad-mode":             (lambda: _loss("cosface", grad_mode="stop"),     ValueError, "grad_mode must be one of"),
    "m-negative-soft":       (lambda: _loss("soft_margin", m=-1.),            ValueError, "m must be in [0, inf)"),
    "lsoftmax-noninteger":   (lambda: _loss("l_softmax", m=2.5),              ValueError, "integer ≥ 1 for form='classic'"),
    "lsoftmax-m-below-1":    (lambda: _loss("a_softmax", m=0.),               ValueError, "m must be in [1, inf)"),
    "lsoftmax-form":         (lambda: _loss("l_softmax", form="poly"),        ValueError, "form must be one of"),
    "lambda-negative":       (lambda: _loss("l_softmax", lam_min=-1.),        ValueError, "lam_min must be in [0, inf)"),
    "schedule-type":         (lambda: _loss("a_softmax", schedule=5),         TypeError, "schedule must be a LambdaSchedule"),
    "dams-m":                (lambda: _loss("dams", m=1.5),                   ValueError, "must be in [0, 1]"),
    "dam-lam":               (lambda: _loss("dam_softmax", lam=0.),           ValueError, "lam must be in (0, inf)"),
    "dam-form":              (lambda: _loss("dam_softmax", form="x"),         ValueError, "form must be one of"),
    "dam-margin-fn":         (lambda: _loss("dam_softmax", margin_fn=3),      TypeError, "margin_fn must be a callable"),
    "mam-eps":               (lambda: _loss("mam", eps=0.),                   ValueError, "eps must be in (0, inf)"),
    "mam-reading":           (lambda: _loss("mam", reading="index"),          ValueError, "reading must be one of"),
    "mam-order":             (lambda: _loss("mam", order="x"),                ValueError, "order must be one of"),
    "mam-clip":              (lambda: _loss("mam", clip=(3., 1.)),            ValueError, "lo ≤ hi"),
    "mam-clip-shape":        (lambda: _loss("mam", clip=4.),                  ValueError, "clip must be a pair"),
    "mam-log-base":          (lambda: _loss("mam", log_base=1.),              ValueError, "not 1"),
    "label-smoothing":       (lambda: _loss("ce", label_smoothing=-0.1),      ValueError, "label_smoothing must be in [0, 1]"),
    "class-weight":          (lambda: _loss("ce", class_weight=[1., -1., 1.]), ValueError, "class_weight must be a 1-D tensor"),
    "focal-gamma":           (lambda: _loss("focal", gamma=-2.),              ValueError, "gamma must be in [0, inf)"),
    "focal-alpha":           (lambda: _loss("focal", alpha=1.5),              ValueError, "alpha must be in (0, 1]"),
    "focal-alpha-tensor":    (lambda: _loss("focal", alpha=[[1.]]),           ValueError, "1-D tensor of C non-negative"),
    "sce-a":                 (lambda: _loss("sce", a=-1.),                    ValueError, "a must be in [0, inf)"),
    "sce-alpha-mode":        (lambda: _loss("sce", alpha_mode="class"),       ValueError, "alpha_mode must be one of"),
    "symce-log-zero":        (lambda: _loss("symmetric_ce", log_zero=0.),     ValueError, "log_zero must be in (-inf, 0)"),
    "nan-hparam":            (lambda: _loss("cosface", s=float("nan")),       ValueError, "s must be a finite number"),
    "string-hparam":         (lambda: _loss("cosface", m="0.3"),              ValueError, "m must be a finite number"),
    "unknown-hparam":        (lambda: _loss("cosface", gamma=2.),             TypeError, "does not take ['gamma']"),
    "unknown-name":          (lambda: make_loss("sphereface2", 4, 3),         ValueError, "unknown loss 'sphereface2'"),
    "unknown-criterion":     (lambda: make_loss("arcface+hinge", 4, 3),       ValueError, "criterion in"),
    "name-type":             (lambda: make_loss(3, 4, 3),                     TypeError, "loss name must be a string"),
    "emb-dim":               (lambda: make_loss("ce", 0, 3),                  ValueError, "embed_dim must be in [1, inf)"),
    "n-classes-float":       (lambda: make_loss("ce", 4, 2.5),                ValueError, "n_classes must be an integer"),
    "reduction":             (lambda: Focal(reduction="avg"),                 ValueError, "reduction must be one of"),
}

@pytest.mark.parametrize("case", list(BAD_HPARAMS))
def test_bad_hyper_parameter(case):
    fn, exc, msg = BAD_HPARAMS[case]
    with pytest.raises(exc) as e: fn()
    assert msg in str(e.value), str(e.value)

def test_arcface_margin_above_half_pi_warns():
    with pytest.warns(UserWarning, match="radians"): _loss("arcface", m=2.0)

def test_arcface_radian_margin_does_not_warn():
    with warnings.catch_warnings(): warnings.simplefilter("error"); _loss("arcface", m=0.5)

# ---------------------------------------------------------------- λ schedule
def test_lambda_schedule_advances_in_training_only_and_is_saved():
    loss = make_loss("a_softmax", 4, 3); loss.train()
    lam0 = loss.lam
    for _ in range(3): loss(E, Y)
    assert int(loss.margin.step) == 3 and loss.lam < lam0 and loss.lam == loss.margin.schedule(3)
    loss.eval(); loss(E, Y); assert int(loss.margin.step) == 3
    sd = loss.state_dict(); assert "margin.step" in sd
    other = make_loss("a_softmax", 4, 3); other.load_state_dict(sd); assert other.lam == loss.lam
    with pytest.raises(AttributeError, match="lam"): make_loss("cosface", 4, 3).lam

def test_schedule_is_a_pure_function_of_the_step():
    s = LambdaSchedule(1000, 0.12, 1, 5)
    assert s(100) == s(100) == pytest.approx(1000 / 13) and s(10**9) == 5 and s.values([0, 10]).tolist() == [s(0), s(10)]

def test_parameters_keep_their_dtype_under_autocast_and_margin_does_not_touch_input():
    loss = make_loss("arcface", 4, 3); c = torch.rand(5, 3) * 2 - 1; c0 = c.clone()
    with torch.autocast("cpu", dtype=torch.bfloat16): l = loss(E, Y)
    assert loss.weight.dtype == torch.float32 and l.dtype == torch.float32
    loss.margin(c, Y); SoftMargin(0.5)(c, Y); MAM()(c, Y); assert torch.equal(c, c0)

# ---------------------------------------------------------------- hypothesis property tests (few examples)
_logits = st.integers(2, 6).flatmap(lambda c: st.tuples(st.just(c), st.integers(1, 6), st.floats(0.01, 30.), st.integers(0, 2**16)))

@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_logits, st.sampled_from(["ce", "focal", "sce", "symmetric_ce"]))
def test_hyp_criteria_grad_finite_rows_sum_zero(spec, name):
    c, n, scale, seed = spec
    g = torch.Generator().manual_seed(seed)
    z, y = torch.randn(n, c, generator=g, dtype=torch.float64) * scale, torch.randint(0, c, (n,), generator=g)
    crit = CRITERIA[name]()
    l, gr = crit.loss_and_grad(z, y)
    assert torch.isfinite(l).all() and torch.isfinite(gr).all() and (l >= -1e-12).all()
    assert gr.sum(1).abs().max() <= 1e-9 * max(1., float(gr.abs().max()))
    if name == "focal": assert (l <= CrossEntropy().per_sample(z, y) + 1e-9).all()

@settings(max_examples=20, deadline=None)
@given(st.sampled_from(["cosface", "arcface", "dams", "dam_softmax", "l_softmax", "a_softmax", "soft_margin"]),
       st.floats(0., 1.2), st.floats(0., math.pi))
def test_hyp_psi_below_cos(name, m, theta):
    kw = {"m": int(1 + 3 * m)} if name in ("l_softmax", "a_softmax") else {"m": min(m, 1.)}
    psi = make_loss(name, 2, 2, **kw).margin.psi(theta)
    assert float(psi) <= math.cos(theta) + 1e-9

@settings(max_examples=15, deadline=None)
@given(st.sampled_from(LOSS_NAMES), st.integers(1, 8), st.integers(0, 2**16))
def test_hyp_any_loss_finite(name, n, seed):
    g = torch.Generator().manual_seed(seed)
    emb, y = torch.randn(n, 3, generator=g) * 10, torch.randint(0, 4, (n,), generator=g)
    loss = make_loss(name, 3, 4); l = loss(emb, y); l.backward()
    assert torch.isfinite(l) and torch.isfinite(loss.weight.grad).all()
