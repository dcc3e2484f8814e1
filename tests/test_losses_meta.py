"Margin metadata (issue 14.2): each margin class carries its label and settings; one margin factory; `make_loss` routing."
import inspect
import pytest
import torch
from emosynth_nb.losses import *
from emosynth_nb.losses.margins import make_margin, margin_settings, Setting

@pytest.mark.parametrize("name", list(MARGINS))
def test_settings_match_the_constructor(name):
    cls = MARGINS[name]
    assert isinstance(cls.label, str) and cls.label
    sig = inspect.signature(cls.__init__).parameters
    for st in cls.settings:
        assert isinstance(st, Setting) and st.name in sig
        if sig[st.name].default is not None: assert st.default == sig[st.name].default, st.name
        if st.choices: assert st.default in st.choices
        elif st.lo is not None and st.default is not None: assert st.lo <= st.default <= st.hi, st.name
    if "m" in sig: assert cls.settings[0].name == "m"
    assert isinstance(make_margin(name, **{st.name: st.default for st in cls.settings}), cls)

def test_margin_settings_by_name():
    assert margin_settings("cosface")["m"].unit == "cos" and margin_settings("arcface")["m"].unit == "rad"
    assert margin_settings("soft_margin")["m"].unit == "logit" and margin_settings("a_softmax")["m"].unit == "int"
    with pytest.raises(ValueError, match="margin must be one of"): margin_settings("nope")

def test_dam_softmax_lam_is_its_own_setting():  # was: TypeError, every lam taken for the L-/A-Softmax schedule
    assert make_margin("dam_softmax", lam=3.).lam == 3.
    assert make_margin("l_softmax", lam=0.).lam == 0. and make_margin("a_softmax", lam=2.).lam == 2.
    with pytest.raises(TypeError, match=r"margin 'cosface' does not take \['lam'\]"): make_margin("cosface", lam=1.)
    with pytest.raises(ValueError, match="lam fixes λ"): make_margin("l_softmax", lam=1., lam_base=10.)

def test_fixed_lam_does_not_anneal():
    mg = make_margin("l_softmax", lam=2.); mg.train()
    z, xn, wn = torch.randn(4, 3), torch.ones(4, 1), torch.ones(3)
    for _ in range(3): mg((z, xn, wn), torch.tensor([0, 1, 2, 0]))
    assert int(mg.step) == 3 and mg.lam == 2.

def test_make_loss_explicit_margin_and_criterion_settings():
    l = make_loss("mam+sce", 8, 5, margin_kw=dict(detach=False), criterion_kw=dict(log_base=2.))
    assert (l.margin.detach, l.margin.log_base, l.criterion.detach, l.criterion.log_base) == (False, 10., False, 2.)
    l = make_loss("mam+sce", 8, 5, criterion_kw=dict(detach=True, log_base=2.), margin_kw=dict(log_base=3.))
    assert (l.margin.detach, l.margin.log_base, l.criterion.detach, l.criterion.log_base) == (True, 3., True, 2.)

@pytest.mark.parametrize("key,value", [("detach", False), ("log_base", 2)])
def test_make_loss_ambiguous_flat_setting_is_an_error(key, value):
    with pytest.raises(TypeError) as e: make_loss("mam+sce", 8, 5, **{key: value})
    msg = str(e.value)
    assert "both the margin 'mam' and the criterion 'sce'" in msg and f"margin_kw={{'{key}': {value!r}}}" in msg and "criterion_kw=" in msg

def test_make_loss_kw_errors():
    with pytest.raises(TypeError, match=r"the margin 'mam' does not take \['gamma'\]"): make_loss("mam+sce", 8, 5, margin_kw=dict(gamma=1.))
    with pytest.raises(TypeError, match="criterion_kw must be a dict"): make_loss("mam+sce", 8, 5, criterion_kw=3)
    with pytest.raises(TypeError, match="given twice"): make_loss("mam+sce", 8, 5, eps=0.3, margin_kw=dict(eps=0.4))
    assert make_loss("mam+sce", 8, 5, eps=0.5, a=2.).criterion.a == 2.  # single-owner settings stay flat
