"EmoSynthNet and the baselines: shapes, budget, gradients, train/eval behaviour, determinism, errors."
import re
from pathlib import Path
import pytest
import torch
import torch.nn.functional as F
from emosynth_nb.core import set_seed
from emosynth_nb.models import (EmoSynthNet, emosynthnet, emosynthnet_tiny, create_baseline, model_table, budget,
                                BASELINE_NAMES, THESIS_MODEL_TABLE, count_macs, weight_depth)

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
    logits, aux = m(x)
    assert logits.shape == aux.shape == (2, 7)
    assert torch.isfinite(logits).all() and torch.isfinite(aux).all()

@pytest.mark.parametrize("size,chans", SIZES)
def test_default_shapes_meta(size, chans):
    "The full model on the meta device (shapes only, no compute): every input size and channel count."
    with torch.device('meta'):
        m = emosynthnet(n_classes=10, in_chans=chans).eval()
        x = torch.zeros(2, chans, size, size)
        assert m(x).shape == (2, 10)
        feats, aux = m.forward_features(x, return_aux=True)
        assert feats.shape == (2, 256, size, size) and aux.shape == (2, 10)
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
    m0.train(); emb, aux = m0(x)
    assert emb.shape == (4, 3) and aux.shape == (4, 7)

# the default topology (depths, decoder, fusion, 3-block side branch) at 8 channels keeps the test cheap
_narrow = lambda **kw: emosynthnet(widths=(8, 8, 8, 8), fuse_chs=8, embed_dim=8, aux_width=8, **kw)

@pytest.mark.parametrize("factory,size", [(emosynthnet_tiny, 48), (_narrow, 16)])
def test_gradients_reach_every_parameter(factory, size):
    set_seed(0)
    m = factory(n_classes=5, in_chans=1).train()
    x, y = torch.randn(4, 1, size, size), torch.randint(0, 5, (4,))
    logits, aux = m(x)
    (F.cross_entropy(logits, y) + 0.3 * F.cross_entropy(aux, y)).backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0]
    assert not missing, missing
    assert any(n.startswith('aux_head') for n, _ in m.named_parameters())

def test_train_eval_modes():
    m = emosynthnet_tiny()
    x = torch.randn(3, 1, 48, 48)
    assert isinstance(m.train()(x), tuple)
    assert isinstance(m.eval()(x), torch.Tensor)
    f, aux = m.forward_features(x, return_aux=True)   # aux available in eval too
    assert aux.shape == (3, 7)
    m2 = emosynthnet_tiny(aux=False)
    assert m2.aux_head is None and m2.aux_classes == 0
    assert isinstance(m2.train()(x), torch.Tensor)
    assert m2.forward_features(x, return_aux=True)[1] is None
    # eval is deterministic (no dropout), train is not when dropout is on
    m.eval(); torch.testing.assert_close(m(x), m(x))

def test_determinism():
    def run():
        set_seed(123)
        m = emosynthnet_tiny()
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        x, y = torch.randn(8, 1, 48, 48), torch.randint(0, 7, (8,))
        for _ in range(2):
            logits, aux = m(x); loss = F.cross_entropy(logits, y) + 0.3 * F.cross_entropy(aux, y)
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
        assert tuple(nums) == tuple(float(v) for v in THESIS_MODEL_TABLE[key]), (key, nums)

def test_every_loss_trains_through_the_embedding():
    "Every `make_loss` loss takes the model's embedding (3-D here, as for the sphere plots) and back-propagates."
    from emosynth_nb.losses import make_loss, LOSS_NAMES
    set_seed(0)
    m = emosynthnet_tiny(n_classes=7, embed_dim=3).train()
    x, y = torch.rand(8, 1, 16, 16), torch.randint(0, 7, (8,))
    for name in LOSS_NAMES + ('mam+sce', 'arcface+focal'):
        m.zero_grad()
        feats, aux = m.forward_features(x, return_aux=True)
        loss = make_loss(name, embed_dim=m.embed_dim, n_classes=7)
        total = loss(m.forward_head(feats, pre_logits=True), y) + 0.3 * F.cross_entropy(aux, y)
        total.backward()
        assert torch.isfinite(total), name
        assert m.embed.weight.grad is not None and torch.isfinite(m.embed.weight.grad).all(), name

def test_compiles_as_one_graph():
    "torch.compile traces the model without graph breaks (backend 'eager': checks the tracing, not the codegen)."
    m = emosynthnet_tiny().train()
    cm = torch.compile(m, backend='eager', fullgraph=True)
    x, y = torch.randn(2, 1, 32, 32).contiguous(memory_format=torch.channels_last), torch.randint(0, 7, (2,))
    logits, aux = cm(x)
    (F.cross_entropy(logits, y) + F.cross_entropy(aux, y)).backward()
    assert logits.shape == (2, 7)
