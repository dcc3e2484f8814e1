"Issue 15, the loss items: overflow, bad class weights, autocast precision, criterion checks in composed losses, buffers, label and embedding dtypes."
import math
import pytest
import torch
import torch.nn.functional as F
from emosynth_nb.losses import *

pytestmark = pytest.mark.usefixtures("one_torch_thread")
Y = torch.tensor([0, 1, 2, 0, 1, 2])

@pytest.mark.parametrize("name", ["l_softmax", "a_softmax"])
def test_huge_embeddings_do_not_overflow_the_norm(name):
    torch.manual_seed(0); loss = make_loss(name, 8, 3); emb = torch.randn(6, 8) * 1e20  # ‖x‖² = 1e41 > float32 max
    v = loss(emb, Y).detach()
    assert torch.isfinite(v), v
    ref = loss.double()(emb.double(), Y).detach()
    assert abs(float(v) - float(ref)) <= 1e-2 * abs(float(ref))  # a difference of logits ~1e20: float32 rounding

def test_overflowing_logits_are_an_error_not_inf():
    loss = make_loss("l_softmax", 8, 3)
    with torch.no_grad(): loss.weight.fill_(1.)
    with pytest.raises(FloatingPointError, match="logits overflow torch.float32"): loss(torch.full((6, 8), 3e38), Y)

@pytest.mark.parametrize("bad", [[1., float("nan"), 1.], [1., float("inf"), 1.], [0., 0., 0.], [1., -1., 1.]])
def test_bad_class_weights_are_refused(bad):
    for make in (lambda: make_loss("ce", 4, 3, class_weight=bad), lambda: make_loss("arcface+ce", 4, 3, class_weight=bad),
                 lambda: CrossEntropy(class_weight=torch.tensor(bad))):
        with pytest.raises(ValueError, match="class_weight must be a 1-D tensor of C non-negative, finite weights"): make()
    with pytest.raises(ValueError, match="alpha must be None, a number in"): make_loss("focal", 4, 3, alpha=bad)

def test_criterion_checks_run_inside_composed_losses():
    with pytest.raises(ValueError, match="class_weight has 4 entries for 3 classes"): make_loss("arcface+ce", 4, 3, class_weight=[1.] * 4)
    with pytest.raises(ValueError, match="class_weight has 2 entries for 3 classes"): make_loss("ce", 4, 3, class_weight=[1., 2.])
    with pytest.raises(ValueError, match="alpha has 2 entries for 5 classes"): make_loss("focal", 4, 5, alpha=[.5, .5])
    with pytest.raises(ValueError, match="alpha has 2 entries for 3 classes"): Focal(alpha=[.5, .5])(torch.randn(6, 3), Y)

def test_class_weight_and_alpha_are_buffers():
    ce, fo = make_loss("ce", 4, 3, class_weight=[1., 2., 3.]), make_loss("cosface+focal", 4, 3, alpha=[.2, .3, .5])
    assert "criterion.class_weight" in ce.state_dict() and "criterion.alpha" in fo.state_dict()
    assert fo.double().criterion.alpha.dtype == torch.float64 and ce.double().criterion.class_weight.dtype == torch.float64
    other = make_loss("ce", 4, 3, class_weight=[9., 9., 9.]); other.load_state_dict(ce.state_dict())
    assert other.criterion.class_weight.tolist() == [1., 2., 3.]

def _two_degrees(n_classes, name="cosface"):
    torch.manual_seed(0); loss = make_loss(name, 8, n_classes)
    w = F.normalize(loss.weight[0].detach(), dim=0); u = F.normalize(torch.randn(8) - (torch.randn(8) @ w) * w, dim=0)
    u = F.normalize(u - (u @ w) * w, dim=0); th = math.radians(2.)
    return loss, (math.cos(th) * w + math.sin(th) * u)[None].repeat(6, 1), torch.zeros(6, dtype=torch.long)

@pytest.mark.parametrize("n_classes", [7, 100])
def test_target_cosine_in_float32_under_bf16_autocast(n_classes):
    loss, emb, y = _two_degrees(n_classes)
    with torch.autocast("cpu", torch.bfloat16):
        if n_classes < 64: ct = loss.logits(emb)[:, 0] / loss.margin.s  # the whole head in float32
        else: ct = loss.head.with_target(emb, y)[1]  # many classes: the target cosines in float32
        v = loss(emb, y)
    assert ct.dtype == torch.float32 and (ct != 1).all()
    assert torch.allclose(ct, torch.full_like(ct, math.cos(math.radians(2.))), atol=1e-5), ct
    assert torch.isfinite(v) and abs(float(v.detach()) - float(loss(emb, y).detach())) < (1e-5 if n_classes < 64 else 0.5)

@pytest.mark.parametrize("name", LOSS_NAMES)
def test_every_loss_accepts_any_integer_label_dtype(name):
    torch.manual_seed(0); loss = make_loss(name, 4, 3); loss.eval(); emb = torch.randn(6, 4)
    ref = loss(emb, Y)
    for dt in (torch.int32, torch.int16, torch.int8, torch.uint8):
        torch.testing.assert_close(loss(emb, Y.to(dt)), ref, msg=f"{name} {dt}")
    crit = loss.criterion
    torch.testing.assert_close(crit(torch.randn(6, 3, generator=torch.Generator().manual_seed(1)), Y.to(torch.int32)),
                               crit(torch.randn(6, 3, generator=torch.Generator().manual_seed(1)), Y))

@pytest.mark.parametrize("name", LOSS_NAMES)
def test_every_loss_accepts_half_and_double_embeddings(name):
    torch.manual_seed(0); loss = make_loss(name, 4, 3); loss.eval(); emb = torch.randn(6, 4)
    for dt in (torch.float16, torch.bfloat16):
        e = emb.to(dt).requires_grad_(True); v = loss(e, Y); v.backward()
        assert v.dtype == torch.float32 and e.grad.dtype == dt
        torch.testing.assert_close(v, loss(e.detach().float(), Y), rtol=1e-5, atol=1e-5)
    e = emb.double().requires_grad_(True); v = loss(e, Y); v.backward()  # float64 in: computed in float64
    assert v.dtype == torch.float64 and torch.isfinite(e.grad).all() and loss.weight.grad.dtype == torch.float32
    torch.testing.assert_close(v.float(), loss(emb, Y), rtol=1e-4, atol=1e-4)

@pytest.mark.parametrize("name", LOSS_NAMES)
def test_every_loss_runs_under_bf16_autocast(name):
    torch.manual_seed(0); loss = make_loss(name, 4, 3); emb = torch.randn(6, 4, requires_grad=True)
    with torch.autocast("cpu", torch.bfloat16): v = loss(emb, Y)
    v.backward(); assert v.dtype == torch.float32 and torch.isfinite(emb.grad).all()
