"EmoSynthNet and the baselines: shapes, budget, gradients, train/eval behaviour, determinism, errors."
import re
from pathlib import Path
import pytest
import torch
import torch.nn.functional as F
from emosynth_nb.core import set_seed
from emosynth_nb.models import (EmoSynthNet, emosynthnet, emosynthnet_tiny, create_baseline, model_table, budget,
                                BASELINE_NAMES, THESIS_MODEL_TABLE, count_macs, weight_depth, EmbeddingModel, ModelAPI,
                                check_model, create_model, MODEL_NAMES, MLPProbe, BaselineAdapter, unused_parameters)
from emosynth_nb.losses import make_loss

SIZES = [(32, 3), (48, 1), (100, 3), (112, 3), (48, 3), (32, 1), (45, 1)]  # 45: odd sides, the decoder pads

@pytest.mark.parametrize("size,chans", SIZES)
def test_tiny_shapes(size, chans):
    m = emosynthnet_tiny(n_classes=7, in_chans=chans)
    x = torch.randn(2, chans, size, size)
    m.eval()
    assert m(x).shape == (2, 7)
    f = m.forward_features(x)
    assert f.shape == (2, m.num_features, size, size)
    assert m.forward_head(f, pre_logits=True).shape == (2, m.embed_dim)
    m.train()
    emb, aux = m.embed_with_aux(x)
    assert emb.shape == (2, m.embed_dim) and aux.shape == (2, 7) and m(x).shape == (2, 7)
    assert torch.isfinite(emb).all() and torch.isfinite(aux).all()

@pytest.mark.parametrize("size,chans", SIZES)
def test_default_shapes_meta(size, chans):
    "The full model on the meta device (shapes only, no compute): every input size and channel count."
    with torch.device('meta'):
        m = emosynthnet(n_classes=10, in_chans=chans).eval()
        x = torch.zeros(2, chans, size, size)
        assert m(x).shape == (2, 10)
        feats = m.forward_features(x)
        emb, aux = m.embed_with_aux(x)
        assert feats.shape == (2, 256, size, size) and aux.shape == (2, 10) and emb.shape == (2, 512)
        assert m.forward_head(feats, pre_logits=True).shape == (2, 512)

def test_non_square_and_bilinear():
    m = emosynthnet_tiny(upsample='bilinear').eval()
    assert m(torch.randn(2, 1, 48, 37)).shape == (2, 7)
    assert m.forward_features(torch.randn(2, 1, 37, 48)).shape == (2, m.num_features, 37, 48)

def test_feature_info_matches_shapes():
    m = emosynthnet_tiny().eval()
    mods, out = dict(m.named_modules()), {}
    hooks = [mods[f['module']].register_forward_hook(lambda mod, i, o, k=f['module']: out.__setitem__(k, o.shape))
             for f in m.feature_info]
    m(torch.randn(1, 1, 48, 48))
    for h in hooks: h.remove()
    for f in m.feature_info:
        assert out[f['module']][1] == f['num_chs'] and out[f['module']][-1] == 48 // f['reduction'], f

def test_budget():
    with torch.device('meta'): m = emosynthnet(n_classes=10, in_chans=3)
    b = budget(m, 32, 3)
    assert abs(b['params_M'] / 21 - 1) <= 0.10
    assert abs(b['macs_G'] / 1.12 - 1) <= 0.15
    assert abs(b['size_MB'] / 82 - 1) <= 0.10
    assert b['depth'] == 34

def test_embed_dim_3_and_no_head():
    m = emosynthnet_tiny(n_classes=7, embed_dim=3).eval()
    x = torch.randn(4, 1, 48, 48)
    assert m.forward_head(m.forward_features(x), pre_logits=True).shape == (4, 3)
    m0 = emosynthnet_tiny(n_classes=0, aux_classes=7, embed_dim=3)
    assert m0.eval()(x).shape == (4, 3)
    m0.train(); emb, aux = m0.embed_with_aux(x)
    assert emb.shape == (4, 3) and aux.shape == (4, 7) and m0(x).shape == (4, 3)

# the default topology (depths, decoder, fusion, 3-block side branch) at 8 channels keeps the test cheap
_narrow = lambda **kw: emosynthnet(widths=(8, 8, 8, 8), fuse_chs=8, embed_dim=8, aux_width=8, **kw)

@pytest.mark.parametrize("factory,size", [(emosynthnet_tiny, 48), (_narrow, 16)])
def test_gradients_reach_every_parameter(factory, size):
    set_seed(0)
    m = factory(n_classes=5, in_chans=1).train()
    x, y = torch.randn(4, 1, size, size), torch.randint(0, 5, (4,))
    emb, aux = m.embed_with_aux(x)
    (F.cross_entropy(m.head(emb), y) + 0.3 * F.cross_entropy(aux, y)).backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0]
    assert not missing, missing
    assert any(n.startswith('aux_head') for n, _ in m.named_parameters())

def test_train_eval_modes():
    m = emosynthnet_tiny()
    x = torch.randn(3, 1, 48, 48)
    assert isinstance(m.train()(x), torch.Tensor) and isinstance(m.train().forward_features(x), torch.Tensor)
    assert isinstance(m.eval()(x), torch.Tensor)
    emb, aux = m.embed_with_aux(x)   # aux available in eval too
    assert aux.shape == (3, 7)
    m2 = emosynthnet_tiny(aux=False)
    assert m2.aux_head is None and m2.aux_classes == 0
    assert isinstance(m2.train()(x), torch.Tensor)
    assert m2.embed_with_aux(x)[1] is None
    # eval is deterministic (no dropout), train is not when dropout is on
    m.eval(); torch.testing.assert_close(m(x), m(x))

def test_determinism():
    def run():
        set_seed(123)
        m = emosynthnet_tiny()
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        x, y = torch.randn(8, 1, 48, 48), torch.randint(0, 7, (8,))
        for _ in range(2):
            emb, aux = m.embed_with_aux(x); loss = F.cross_entropy(m.head(emb), y) + 0.3 * F.cross_entropy(aux, y)
            opt.zero_grad(); loss.backward(); opt.step()
        return m.eval()(x)
    torch.testing.assert_close(run(), run(), rtol=0, atol=0)

@pytest.mark.parametrize("kw,msg", [
    (dict(widths=(8, 16), depths=(1,)), "one entry per stage"),
    (dict(widths=(8, 16), depths=(1, 1), dec_depths=(1, 1)), "one entry per pooling"),
    (dict(widths=(8,), depths=(1,)), "at least 2 stages"),
    (dict(widths=(8, -1)), "integers >= 1"),
    (dict(widths='abc'), "sequence of integers"),
    (dict(embed_dim=0), "embed_dim must be in"),
    (dict(n_classes=-1), "n_classes must be in"),
    (dict(n_classes=2.5), "n_classes must be an integer"),
    (dict(in_chans=0), "in_chans must be in"),
    (dict(drop_rate=1.0), "drop_rate must be in"),
    (dict(aux_stage=9), "aux_stage must be in"),
    (dict(n_classes=0), "needs aux_classes"),
    (dict(act='nope'), "act must be one of"),
    (dict(upsample='cubic'), "upsample must be one of"),
])
def test_bad_config(kw, msg):
    with pytest.raises(ValueError, match=re.escape(msg)): EmoSynthNet(**kw)

def test_bad_input():
    m = emosynthnet_tiny(in_chans=1).eval()
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"): m(torch.randn(2, 3, 48, 48))
    with pytest.raises(ValueError, match="too small for 2 poolings"): m(torch.randn(2, 1, 3, 48))
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"): m(torch.randn(1, 48, 48))
    with pytest.raises(TypeError, match="torch.Tensor"): m([[0.0]])
    with torch.device('meta'):
        big = emosynthnet()
        with pytest.raises(ValueError, match="at least 8"): big(torch.zeros(1, 3, 4, 4))

@pytest.mark.parametrize("name", BASELINE_NAMES)
def test_baselines(name):
    with torch.device('meta'):
        for size, chans in ((32, 3), (48, 1), (100, 3)):
            assert create_baseline(name, 7, chans).eval()(torch.zeros(2, chans, size, size)).shape == (2, 7)

def test_baseline_real_forward_backward():
    m = create_baseline('mobilenet_v2', n_classes=3, in_chans=1).train()
    out = m(torch.randn(2, 1, 32, 32)); out.sum().backward()
    assert out.shape == (2, 3) and all(p.grad is not None for p in m.parameters())

def test_baseline_errors():
    with pytest.raises(ValueError, match="name must be one of"): create_baseline('alexnet')
    with pytest.raises(ValueError, match="in_chans must be in"): create_baseline('resnet50', 10, 0)

def test_model_table():
    t = model_table(32)
    assert list(t.index) == ['mobilenet_v2', 'efficientnet_b0', 'resnet50', 'vgg19', 'densenet121', 'emosynthnet']
    assert t.loc['vgg19', 'depth'] == 19 and t.loc['resnet50', 'depth'] == 50 and t.loc['densenet121', 'depth'] == 121
    # parameters of the 1000-class baselines match the thesis's rounded millions
    for name in BASELINE_NAMES[:5]: assert abs(t.loc[name, 'params_M'] - t.loc[name, 'thesis_params_M']) <= 0.5, name
    # MACs are of the same order as the thesis's "FLOPS" column (read as MACs at 32×32)
    for name in BASELINE_NAMES[:5]: assert 0.7 <= t.loc[name, 'macs_G'] / t.loc[name, 'thesis_macs_G'] <= 1.35, name
    t7 = model_table(48, n_classes=7, in_chans=1, models=('resnet18', 'emosynthnet'), thesis=False)
    assert (t7['classes'] == 7).all() and 'thesis_depth' not in t7
    with pytest.raises(ValueError, match="input_size must be in"): model_table(4)

THESIS = Path('/work/shared/seed/thesis.md')

@pytest.mark.skipif(not THESIS.exists(), reason="the thesis source is not on this machine")
def test_thesis_numbers_transcribed():
    "THESIS_MODEL_TABLE is the thesis's table, number for number."
    text = THESIS.read_text()
    text = text[text.index('## Model Evaluation'):text.index('## CIFAR10')]
    rows = {'mobilenet_v2': 'MobileNetV2', 'efficientnet_b0': 'EfficientNetB0', 'resnet50': 'ResNet50', 'vgg19': 'VGG19',
            'densenet121': 'DensNet121', 'emosynthnet': 'EmoSynthNet'}
    for key, label in rows.items():
        line = next(l for l in text.splitlines() if l.replace('<b>', '').startswith(label))
        nums = [float(v) for v in re.findall(r'\d+(?:\.\d+)?', line.split('\t', 1)[1])][:4]
        assert tuple(nums) == tuple(float(THESIS_MODEL_TABLE[key][k]) for k in ('params_M', 'flops_G', 'size_MB', 'depth')), (key, nums)

def test_every_loss_trains_through_the_embedding():
    "Every `make_loss` loss takes the model's embedding (3-D here, as for the sphere plots) and back-propagates."
    from emosynth_nb.losses import LOSS_NAMES
    set_seed(0)
    m = emosynthnet_tiny(n_classes=0, aux_classes=7, embed_dim=3).train()
    x, y = torch.rand(8, 1, 16, 16), torch.randint(0, 7, (8,))
    for name in LOSS_NAMES + ('mam+sce', 'arcface+focal'):
        m.zero_grad()
        emb, aux = m.embed_with_aux(x)
        loss = make_loss(name, embed_dim=m.embed_dim, n_classes=7)
        total = loss(emb, y) + 0.3 * F.cross_entropy(aux, y)
        total.backward()
        assert torch.isfinite(total), name
        assert m.embed_layer.weight.grad is not None and torch.isfinite(m.embed_layer.weight.grad).all(), name

def test_compiles_as_one_graph():
    "torch.compile traces the model without graph breaks (backend 'eager': checks the tracing, not the codegen)."
    m = emosynthnet_tiny().train()
    cm = torch.compile(m.embed_with_aux, backend='eager', fullgraph=True)
    x, y = torch.randn(2, 1, 32, 32).contiguous(memory_format=torch.channels_last), torch.randint(0, 7, (2,))
    emb, aux = cm(x)
    (F.cross_entropy(m.head(emb), y) + F.cross_entropy(aux, y)).backward()
    assert emb.shape == (2, m.embed_dim)


# ---- the model contract (emosynth_nb.models.api / zoo) ----

class _Toy(EmbeddingModel):
    "The smallest model that follows the contract: what a test toy has to write."
    def __init__(self, n_classes=0):
        super().__init__()
        self.embed_dim, self.in_chans, self.n_classes = 3, 1, n_classes
        self.body, self.emb = torch.nn.Linear(6, 8), torch.nn.Linear(8, 3)
        self.head = torch.nn.Linear(3, n_classes) if n_classes else torch.nn.Identity()
    def forward_features(self, x): return self.body(x.flatten(1)).relu()
    def forward_head(self, feats, pre_logits=False):
        e = self.emb(feats); return e if pre_logits else self.head(e)

def _kw(name, chans, size):
    return dict(in_features=chans * size * size) if name == 'mlp' else dict(aux_classes=7) if name.startswith('emosynthnet') else {}

@pytest.mark.parametrize("name", MODEL_NAMES)
def test_registry_models_follow_the_contract(name):
    "Every registry model, built headless, passes check_model and leaves no parameter unused (meta device: no compute)."
    with torch.device('meta'):
        for chans, size in ((3, 32), (1, 48)):
            m = create_model(name, 0, chans, **_kw(name, chans, size))
            assert isinstance(m, ModelAPI) and m.n_classes == 0 and m.in_chans == chans
            x = torch.zeros(2, chans, size, size)
            check_model(m, make_loss('arcface', m.embed_dim, 7), x)
            assert unused_parameters(m, x) == [], name
        with_head = create_model(name, 7, 3, **_kw(name, 3, 32))
        assert with_head.n_classes == 7 and with_head.eval()(torch.zeros(2, 3, 32, 32)).shape == (2, 7)

@pytest.mark.parametrize("factory", [lambda: create_model('emosynthnet_tiny', 0, 1, aux_classes=7),
                                     lambda: create_model('mlp', 0, 1, in_features=64, embed_dim=3),
                                     lambda: create_model('resnet18', 0, 1, embed_dim=3), _Toy])
def test_headless_no_unused_parameters_real_backward(factory):
    "A real backward through embed_with_aux + a margin loss reaches every parameter of a headless model."
    set_seed(0)
    m = factory()
    size = 8 if getattr(m, 'in_features', 0) == 64 else 32
    x = torch.rand(4, 6) if isinstance(m, _Toy) else torch.rand(4, 1, size, size)
    loss = make_loss('am_softmax', m.embed_dim, 7)
    assert unused_parameters(m, x, torch.tensor([0, 1, 2, 6]), loss) == []
    assert all(torch.isfinite(p.grad).all() for p in m.parameters())

def test_unused_parameters_finds_an_unused_head():
    m = create_model('emosynthnet_tiny', 7, 1)
    assert unused_parameters(m, torch.rand(2, 1, 32, 32), torch.tensor([0, 1]), make_loss('ce', m.embed_dim, 7)) == ['head.weight', 'head.bias']

def test_check_model_errors():
    toy = _Toy()
    assert check_model(toy, make_loss('ce', 3, 5), torch.randn(2, 6)) is toy
    with pytest.raises(TypeError, match="has no forward_features"): check_model(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="expects embeddings of size 4"): check_model(toy, make_loss('ce', 4, 5))
    with pytest.raises(TypeError, match=r"\.logits\(emb\)"): check_model(toy, torch.nn.CrossEntropyLoss())
    with pytest.raises(ValueError, match=r"does not fit inputs of shape \(7,\)"): check_model(toy, sample=torch.randn(2, 7))
    with pytest.raises(ValueError, match=r"does not fit inputs of shape \(3, 32, 32\)"):
        check_model(emosynthnet_tiny(in_chans=1), sample=torch.randn(2, 3, 32, 32))
    from torch.utils.data import TensorDataset
    check_model(toy, sample=TensorDataset(torch.randn(3, 6), torch.zeros(3, dtype=torch.long)))
    class NoAttr(_Toy): pass
    bad = NoAttr(); del bad.n_classes; NoAttr.n_classes = 'x'
    with pytest.raises(ValueError, match="n_classes must be a finite integer"): check_model(bad)

def test_forward_features_is_one_tensor():
    "The contract's methods return one tensor; the auxiliary logits only come from embed_with_aux."
    for m in (emosynthnet_tiny(n_classes=0, aux_classes=7), MLPProbe(64, embed_dim=3), _Toy()):
        x = torch.rand(2, 6) if isinstance(m, _Toy) else torch.rand(2, 64) if isinstance(m, MLPProbe) else torch.rand(2, 1, 32, 32)
        for mode in (True, False):
            m.train(mode)
            assert isinstance(m.forward_features(x), torch.Tensor) and isinstance(m(x), torch.Tensor)
            assert isinstance(m.embed(x), torch.Tensor)

def test_mlp_probe_on_digits_shapes():
    p = MLPProbe(64, hidden=(128, 32), embed_dim=3, n_classes=10)
    assert p.embed(torch.rand(5, 1, 8, 8)).shape == p.embed(torch.rand(5, 64)).shape == (5, 3)
    assert p(torch.rand(5, 64)).shape == (5, 10)
    with pytest.raises(ValueError, match="built for 64 input features"): p(torch.rand(5, 1, 7, 7))

def test_create_model_errors():
    with pytest.raises(ValueError, match="name must be one of"): create_model('alexnet', 7)
    with pytest.raises(ValueError, match="needs in_features"): create_model('mlp', 0)
    with pytest.raises(ValueError, match="needs aux_classes"): create_model('emosynthnet', 0, 3)
    with pytest.raises(ValueError, match="baselines take only embed_dim"): create_model('vgg19', 0, 3, hidden=3)
