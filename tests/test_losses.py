"Loss library: float64 loop references, identities, properties, gradcheck and singular points (see nbs/1?_losses*)."
import math, warnings
import pytest
import torch
import torch.nn.functional as F
from emosynth_nb.losses import *

pytestmark = pytest.mark.usefixtures("one_torch_thread")

D, C, N = 5, 4, 7

# ---------------------------------------------------------------- independent float64 references (plain loops)
def _softmax(row):
    mx = max(row); e = [math.exp(v - mx) for v in row]; s = sum(e)
    return [v / s for v in e]

def ref_criterion(cname, z, y, hp):
    "Mean loss from a list of logit rows, with python floats."
    n, c = len(z), len(z[0]); P = [_softmax(r) for r in z]
    out = []
    if cname == "ce":
        eps = hp.get("label_smoothing", 0.)
        for r, p in zip(y, P):
            out.append((1 - eps) * -math.log(p[r]) + eps / c * sum(-math.log(q) for q in p))
    elif cname == "focal":
        g = hp.get("gamma", 2.)
        for r, p in zip(y, P): out.append(-(1 - p[r]) ** g * math.log(p[r]))
    elif cname == "sce":
        a, b = hp.get("a", 1.), hp.get("b", 1.)
        al = [(1 - p[r]) ** 2 / c for r, p in zip(y, P)]
        if hp.get("alpha_mode", "batch") == "batch": al = [sum(al) / n] * n
        for i, (r, p) in enumerate(zip(y, P)):
            w = math.sqrt(sum(q * q for j, q in enumerate(p) if j != r))
            out.append(a * -math.log(p[r]) + b * -al[i] * w * math.log10(p[r]))
    elif cname == "symmetric_ce":
        al, be = hp.get("alpha", 0.1), hp.get("beta", 1.)
        for r, p in zip(y, P): out.append(al * -math.log(p[r]) + be * 4 * (1 - p[r]))
    return sum(out) / n

def ref_arc(c, m, fb="hard"):
    th = math.acos(max(-1., min(1., c)))
    if fb == "hard" and th + m > math.pi: return c - m * math.sin(m)
    if fb == "easy" and c <= 0: return c
    if fb == "clamp" and th + m > math.pi: return -1.
    return math.cos(th + m)

def ref_mult(c, m):
    th = math.acos(max(-1., min(1., c))); k = min(math.floor(m * th / math.pi), math.ceil(m) - 1)
    return (-1) ** k * math.cos(m * th) - 2 * k

def ref_logits(name, emb, W, b, y, hp, lam=None):
    "Margin logits as lists, from python floats."
    E, Wl = emb.tolist(), W.tolist(); bl = b.tolist() if b is not None else [0.] * len(Wl)
    dot = lambda u, v: sum(p * q for p, q in zip(u, v)); nrm = lambda u: math.sqrt(dot(u, u))
    Z = []
    for i, (x, r) in enumerate(zip(E, y)):
        if name in ("ce", "focal", "sce", "symmetric_ce", "soft_margin", "mam"):
            row = [dot(x, w) + bb for w, bb in zip(Wl, bl)]
            if name == "soft_margin": row[r] -= hp.get("m", 0.5)
        elif name in ("l_softmax", "a_softmax"):
            ws = Wl if name == "l_softmax" else [[v / nrm(w) for v in w] for w in Wl]
            row = [dot(x, w) for w in ws]
            A = nrm(x) * nrm(ws[r]); cy = row[r] / A; m = hp.get("m", 4)
            row[r] = A * (lam * cy + ref_mult(cy, m)) / (1 + lam)
        else:
            cs = [dot(x, w) / (nrm(x) * nrm(w)) for w in Wl]; s = hp.get("s", 64. if name == "arcface" else 30.)
            cy = cs[r]
            if name in ("am_softmax", "cosface"): t = cy - hp.get("m", 0.35)
            elif name == "arcface": t = ref_arc(cy, hp.get("m", 0.5), hp.get("fallback", "hard"))
            elif name == "dam_softmax": t = cy - hp.get("m", 0.2) * math.exp(1 - cy) / hp.get("lam", 2.)
            elif name == "norm_softmax": t = cy
            if name == "dams": m = hp.get("m", 0.175); row = [s * (v + m) for v in cs]; row[r] = s * (cy - m)
            else: row = [s * v for v in cs]; row[r] = s * t
        Z.append(row)
    if name == "mam":
        n, c = len(Z), len(Z[0]); eps = hp.get("eps", 0.2)
        pred = [max(range(c), key=lambda j: row[j]) for row in Z]
        if hp.get("reading", "class_density") == "class_density":
            mv = [sum(1 for p in pred if p == j) + eps for j in range(c)]
            mc = [math.log10(min(max(v, 0.), 4.)) for v in mv]
            mu = [sum(row[j] for row in Z) / n + mc[j] for j in range(c)]
            for row, r in zip(Z, y): row[r] -= mu[r]
        else:
            mv = sum(pred) + eps; mc = math.log10(min(max(mv, 0.), 4.))
            mu = sum(sum(row) for row in Z) / (n * c) + mc
            for row, r in zip(Z, y): row[r] -= mu
    return Z

CASES = [("ce", {}), ("ce", {"label_smoothing": 0.1}), ("focal", {}), ("focal", {"gamma": 0.5}), ("sce", {}),
         ("sce", {"alpha_mode": "sample", "a": 0.5, "b": 2.}), ("symmetric_ce", {}), ("soft_margin", {"m": 0.7}),
         ("l_softmax", {"m": 3}), ("a_softmax", {}), ("am_softmax", {}), ("cosface", {"s": 10., "m": 0.2}),
         ("arcface", {}), ("arcface", {"s": 8., "m": 1.2, "fallback": "clamp"}), ("arcface", {"s": 8., "m": 1.2, "fallback": "easy"}),
         ("arcface", {"s": 8., "m": 1.2}), ("dam_softmax", {}), ("dams", {}), ("mam", {}), ("mam", {"reading": "batch_index"}),
         ("norm_softmax", {})]

@pytest.mark.parametrize("name,hp", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_against_float64_loop_reference(name, hp):
    torch.manual_seed(1)
    loss = make_loss(name, D, C, **hp).double()
    with torch.no_grad():
        for p in loss.parameters(): p.normal_()
    emb, y = torch.randn(N, D, dtype=torch.float64), torch.randint(0, C, (N,))
    lam = loss.lam if name in ("l_softmax", "a_softmax") else None
    Z = ref_logits(name, emb, loss.weight.detach(), getattr(loss.head, "bias", None), y.tolist(), hp, lam)
    cname = name if name in CRITERIA else "ce"
    ref = ref_criterion(cname, Z, y.tolist(), {k: v for k, v in hp.items() if k == "label_smoothing" or name in CRITERIA})
    assert abs(float(loss(emb, y).detach()) - ref) <= 1e-10 * max(1., abs(ref))

@pytest.mark.parametrize("name,hp", [("arcface", {"m": 0.5}), ("arcface", {"m": 1.0, "fallback": "clamp"}),
                                     ("arcface", {"m": 0.5, "fallback": "easy"}), ("l_softmax", {"m": 4}), ("a_softmax", {"m": 2}),
                                     ("cosface", {"m": 0.35}), ("dam_softmax", {})])
def test_dense_angle_sweep(name, hp):
    "2-D embeddings at 0.25° steps over [0°, 180°], class 0 weight on the x-axis: loss equals the loop reference."
    th = torch.linspace(0, math.pi, 721, dtype=torch.float64)
    emb = torch.stack([th.cos(), th.sin()], 1) * 1.7
    loss = make_loss(name, 2, 3, **hp).double(); loss.eval()
    with torch.no_grad(): loss.weight.copy_(torch.tensor([[1., 0.], [0., 1.], [-0.6, -0.8]]) * 1.3)
    y = torch.zeros(len(th), dtype=torch.long)
    lam = loss.lam if name in ("l_softmax", "a_softmax") else None
    Z = torch.tensor(ref_logits(name, emb, loss.weight.detach(), None, y.tolist(), hp, lam), dtype=torch.float64)
    h, ht = loss.head.with_target(emb, y)
    got = loss.margin._margin_logits(h, y, ht)
    torch.testing.assert_close(got[1:-1], Z[1:-1], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(got, Z, rtol=0, atol=1e-5)  # at θ = 0, π the dtype-derived cosine clamp acts
    # ψ itself against the scalar reference
    m = loss.margin; psi = m.psi(th)
    ref = {"arcface": lambda c: ref_arc(c, hp["m"], hp.get("fallback", "hard")), "l_softmax": lambda c: ref_mult(c, hp["m"]),
           "a_softmax": lambda c: ref_mult(c, hp["m"]), "cosface": lambda c: c - hp["m"],
           "dam_softmax": lambda c: c - 0.2 * math.exp(1 - c) / 2}[name]
    # skip the grid points within the clamp epsilon of ±1 and exactly at a fallback switch
    inner = (th > 1e-6) & (th < math.pi - 1e-6)
    got, exp = psi[inner], torch.tensor([ref(c) for c in th.cos()[inner].tolist()], dtype=torch.float64)
    close = (got - exp).abs() < 1e-7
    assert close.float().mean() > 0.995 and (~close).sum() <= 2

# ---------------------------------------------------------------- identities
def _pair(a, b, n=N, d=D, c=C, seed=0, copy=True):
    torch.manual_seed(seed)
    A, B = make_loss(a[0], d, c, **a[1]).double(), make_loss(b[0], d, c, **b[1]).double()
    if copy:
        with torch.no_grad():
            for p, q in zip(A.parameters(), B.parameters()): q.copy_(p)
    emb, y = torch.randn(n, d, dtype=torch.float64, requires_grad=True), torch.randint(0, c, (n,))
    la = A(emb, y); ga, = torch.autograd.grad(la, emb)
    lb = B(emb, y); gb, = torch.autograd.grad(lb, emb)
    return la, lb, ga, gb

@pytest.mark.parametrize("a,b", [
    (("cosface", {"s": 12., "m": 0.}), ("norm_softmax", {"s": 12.})),
    (("arcface", {"s": 12., "m": 0.}), ("norm_softmax", {"s": 12.})),
    (("focal", {"gamma": 0.}), ("ce", {})),
    (("dams", {"s": 12., "m": 0.2}), ("cosface", {"s": 12., "m": 0.4})),
    (("dam_softmax", {"s": 12., "margin_fn": lambda c: 0.3}), ("cosface", {"s": 12., "m": 0.3})),
    (("mam", {"margin_scale": 0.}), ("soft_margin", {"m": 0.})),
    (("sce", {"b": 0.}), ("ce", {})),
    (("symmetric_ce", {"alpha": 1., "beta": 0.}), ("ce", {})),
    (("l_softmax", {"m": 1}), ("soft_margin", {"m": 0.})),
    (("arcface+focal", {"m": 0., "gamma": 0., "s": 5.}), ("norm_softmax", {"s": 5.})),
    (("ce", {"label_smoothing": 0.}), ("softmax+ce", {})),
], ids=lambda v: v[0])
def test_identities_value_and_gradient(a, b):
    la, lb, ga, gb = _pair(a, b)
    torch.testing.assert_close(la, lb, rtol=1e-10, atol=1e-12); torch.testing.assert_close(ga, gb, rtol=1e-9, atol=1e-12)

def test_a_softmax_m1_is_ce_on_norm_x_times_cos():
    torch.manual_seed(0); loss = make_loss("a_softmax", D, C, m=1).double()
    emb, y = torch.randn(N, D, dtype=torch.float64), torch.randint(0, C, (N,))
    z = emb @ F.normalize(loss.weight, dim=1).T
    torch.testing.assert_close(loss(emb, y), F.cross_entropy(z, y))

def test_lambda_to_infinity_is_plain_softmax():
    torch.manual_seed(0); loss = make_loss("l_softmax", D, C, lam_base=1e12, lam_min=1e12).double()
    emb, y = torch.randn(N, D, dtype=torch.float64), torch.randint(0, C, (N,))
    torch.testing.assert_close(loss(emb, y), F.cross_entropy(emb @ loss.weight.T, y), rtol=1e-9, atol=1e-9)

# ---------------------------------------------------------------- properties
TH = torch.linspace(0, math.pi, 2001, dtype=torch.float64)
PSI_MARGINS = {"soft_margin": SoftMargin(0.5), "cosface": CosFace(m=0.35), "arcface_hard": ArcFace(m=0.5),
               "arcface_clamp": ArcFace(m=0.5, fallback="clamp"), "arcface_easy": ArcFace(m=0.5, fallback="easy"),
               "l_softmax": LSoftmax(m=4), "a_softmax": ASoftmax(m=2),
               "general": LSoftmax(m=1.5, form="general"), "dam": DynamicAMSoftmax(), "dams": DAMS(), "mam": MAM()}

@pytest.mark.parametrize("key", list(PSI_MARGINS))
def test_psi_below_cos(key):
    assert (PSI_MARGINS[key].psi(TH) <= TH.cos() + 1e-12).all()

@pytest.mark.parametrize("key", ["soft_margin", "cosface", "arcface_hard", "arcface_clamp", "l_softmax", "a_softmax", "general", "dams", "dam"])
def test_psi_monotone_non_increasing(key):
    assert (PSI_MARGINS[key].psi(TH).diff() <= 1e-12).all()

def test_arcface_fallback_jumps_are_as_documented():
    hard, none = ArcFace(m=0.5).psi(TH), ArcFace(m=0.5, fallback="none").psi(TH)
    assert (none.diff() > 1e-6).any()  # cos(θ + m) rises again past π − m ...
    assert (none > TH.cos() + 1e-3).any()  # ... and even above cos θ: no margin there at all
    assert hard.diff().min() < -0.1    # the hard fallback's downward jump (≈ −0.117 at m = 0.5)
    assert (ArcFace(m=0.5, fallback="easy").psi(TH).diff() > 0.4).any()  # easy margin jumps up at 90°

@pytest.mark.parametrize("name", ["soft_margin", "cosface", "arcface", "dams", "l_softmax", "a_softmax", "dam_softmax"])
def test_loss_non_decreasing_in_m(name):
    torch.manual_seed(0); emb, y = torch.randn(32, D, dtype=torch.float64), torch.randint(0, C, (32,))
    ms = {"l_softmax": [1, 2, 3, 4], "a_softmax": [1, 2, 3, 4], "arcface": [0., 0.2, 0.4, 0.8, 1.2]}.get(name, [0., 0.1, 0.2, 0.4, 0.6])
    vals = []
    for m in ms:
        torch.manual_seed(1); loss = make_loss(name, D, C, m=m, **({"lam_base": 0., "lam_min": 0.} if name in ("l_softmax", "a_softmax") else {})).double()
        vals.append(float(loss(emb, y).detach()))
    assert all(b >= a - 1e-12 for a, b in zip(vals, vals[1:])), vals

@pytest.mark.parametrize("crit", [CrossEntropy(), CrossEntropy(0.2), Focal(), Focal(0.5), ThesisSCE(), ThesisSCE(alpha_mode="sample", detach=True),
                                  SymmetricCE()], ids=lambda c: type(c).__name__)
def test_logit_gradient_rows_sum_to_zero(crit):
    torch.manual_seed(0); z, y = torch.randn(16, 6, dtype=torch.float64) * 3, torch.randint(0, 6, (16,))
    g = crit.grad(z, y)
    torch.testing.assert_close(g.sum(1), torch.zeros(16, dtype=torch.float64), atol=1e-12, rtol=0)

def test_focal_ratio_and_bound():
    torch.manual_seed(0); z, y = torch.randn(64, 5) * 4, torch.randint(0, 5, (64,))
    ce, fl = CrossEntropy().per_sample(z, y), Focal(2.).per_sample(z, y)
    pt = F.softmax(z, 1)[torch.arange(64), y]
    assert (fl <= ce + 1e-7).all(); torch.testing.assert_close(fl, ce * (1 - pt) ** 2, rtol=1e-4, atol=1e-6)

# ---------------------------------------------------------------- gradcheck (float64, away from singular points)
EXACT = {"dam_softmax": {"detach": False}, "mam": {"detach": False}}  # detached margins are not the exact gradient
GRADCHECK = [(n, EXACT.get(n, {})) for n in LOSS_NAMES] + [
    ("sce", {"alpha_mode": "sample"}), ("l_softmax", {"m": 1.5, "form": "general"}), ("mam+sce", {"margin_kw": {"detach": False}}),
    ("arcface+focal", {"gamma": 0.5}), ("arcface", {"fallback": "clamp", "m": 1.0}), ("mam", {"detach": False, "reading": "batch_index"})]

@pytest.mark.parametrize("name,hp", GRADCHECK, ids=[f"{n}-{i}" for i, (n, _) in enumerate(GRADCHECK)])
def test_gradcheck(name, hp):
    torch.manual_seed(3); loss = make_loss(name, 4, 3, **hp).double(); loss.eval()
    emb, y = torch.randn(5, 4, dtype=torch.float64, requires_grad=True), torch.randint(0, 3, (5,))
    cos = F.normalize(emb, dim=1) @ F.normalize(loss.weight, dim=1).T
    assert cos.abs().max() < 1 - 1e-3
    W = loss.weight
    # gradient w.r.t. the embedding, and w.r.t. the class weights through a functional call
    assert torch.autograd.gradcheck(lambda e: loss(e, y), (emb,), eps=1e-6, atol=1e-5)
    w0 = W.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda w: torch.func.functional_call(loss, {"head.weight": w}, (emb.detach(), y)), (w0,), eps=1e-6, atol=1e-5)

@pytest.mark.parametrize("crit", [CrossEntropy(0.1), Focal(0.5), ThesisSCE(), SymmetricCE()], ids=lambda c: type(c).__name__)
def test_gradcheck_criteria(crit):
    torch.manual_seed(0); z = torch.randn(5, 4, dtype=torch.float64, requires_grad=True); y = torch.randint(0, 4, (5,))
    assert torch.autograd.gradcheck(lambda z: crit(z, y), (z,))

# ---------------------------------------------------------------- singular points, float32 and CPU bf16 autocast
@pytest.mark.parametrize("amp", [False, True], ids=["float32", "bf16-autocast"])
@pytest.mark.parametrize("name", list(LOSS_NAMES) + ["arcface+focal", "mam+sce", "a_softmax+focal"])
def test_finite_gradients_at_singular_points(name, amp):
    torch.manual_seed(0); loss = make_loss(name, 4, 3, **({"gamma": 0.5} if "focal" in name else {}))
    Wd = loss.weight.detach()
    emb = torch.cat([Wd[[0]], -Wd[[1]], Wd[[2]] * 1e-3, Wd[[0]] * 1e3, torch.randn(2, 4)]).clone().requires_grad_(True)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        l = loss(emb, y)
    l.backward()
    assert l.dtype == torch.float32 and torch.isfinite(l)
    assert torch.isfinite(emb.grad).all() and torch.isfinite(loss.weight.grad).all()
    assert loss.weight.dtype == torch.float32  # parameters are never cast

@pytest.mark.parametrize("crit", [CrossEntropy(), CrossEntropy(0.1), Focal(), Focal(0.5), Focal(0.), ThesisSCE(), ThesisSCE(alpha_mode="sample"),
                                  ThesisSCE(detach=True), SymmetricCE()], ids=lambda c: type(c).__name__)
@pytest.mark.parametrize("scale", [1e4, 100., 1e-6])
def test_criteria_finite_at_saturation(crit, scale):
    z = torch.tensor([[1., -1., 0.], [-1., 1., 0.], [0., 0., 0.]]) * scale  # p_t -> 1, p_t -> 0, uniform
    y = torch.tensor([0, 0, 2])
    l, g = crit.loss_and_grad(z, y)
    assert torch.isfinite(l).all() and torch.isfinite(g).all()

def test_arcface_psi_derivative_finite_at_plus_minus_one():
    for fb in ARC_FALLBACKS:
        c = torch.tensor([1., -1., 0.], requires_grad=True)
        psi_arc(c, 0.5, fb).sum().backward(); assert torch.isfinite(c.grad).all(), fb
    c = torch.tensor([1., -1.], requires_grad=True); psi_multiplicative(c, 4).sum().backward(); assert torch.isfinite(c.grad).all()

def test_detached_gradients_are_the_documented_surrogates():
    "DAM (detach=True): the gradient of CosFace at the fixed per-sample margins m_i; ArcFace grad_mode='detached': ψ' ≡ 1."
    torch.manual_seed(0)
    dam = make_loss("dam_softmax", D, C, s=10.).double()
    emb, y = torch.randn(N, D, dtype=torch.float64, requires_grad=True), torch.randint(0, C, (N,))
    g1, = torch.autograd.grad(dam(emb, y), emb); mi = dam.margin.last_margins.clone()
    fixed = make_loss("dam_softmax", D, C, s=10., margin_fn=lambda c: mi).double(); fixed.load_state_dict(dam.state_dict())
    g2, = torch.autograd.grad(fixed(emb, y), emb)
    torch.testing.assert_close(g1, g2)
    arc = make_loss("arcface", D, C, s=10., grad_mode="detached").double()
    g3, = torch.autograd.grad(arc(emb, y), emb)
    cos = F.normalize(emb, dim=1) @ F.normalize(arc.weight, dim=1).T
    ct = cos.gather(1, y[:, None]).squeeze(1)
    off = (10 * (psi_arc(ct, 0.5) - ct)).detach()
    g4, = torch.autograd.grad(F.cross_entropy(10 * cos + off[:, None] * F.one_hot(y, C), y), emb)
    torch.testing.assert_close(g3, g4)
