"Recipes that converge (issue 12.1): if a shipped recipe stops converging, this fails. Digits, three losses, a few CPU-seconds each."
import pytest, torch
from emosynth_nb.train.recipes import recipe, task_data, train_task, scale_for, lam_schedule

pytestmark = pytest.mark.usefixtures("one_torch_thread")

@pytest.fixture(scope="module")
def digits(): return task_data('digits')

@pytest.mark.parametrize('loss_name', ['ce', 'am_softmax', 'arcface'])
def test_digits_recipe_converges(digits, loss_name):
    rep = train_task('digits', loss_name, data=digits, progress=False).report
    assert rep.train_acc >= 0.99 and rep.test_acc >= 0.9, rep
    assert not rep.collapsed and not rep.near_chance and rep.min_centre_angle_deg > 20, rep

def test_l_softmax_leaves_the_ce_regime_in_a_short_run():
    "The λ schedule is a fraction of the run: half-way through a 10-epoch digits run λ is at its floor, not ~1000."
    cfg, kw = recipe('digits', 'l_softmax', epochs=10)
    from emosynth_nb.losses import LambdaSchedule
    s = LambdaSchedule(kw['lam_base'], kw['lam_gamma'], kw['lam_power'], kw['lam_min'])
    steps = 10 * 22
    assert s(steps // 2) == pytest.approx(kw['lam_min']) and s(steps // 4) < 3

def test_recipe_refuses_unknowns():
    with pytest.raises(ValueError, match="task must be one of"): recipe('mnist', 'ce')
    with pytest.raises(TypeError, match="not training settings"): recipe('digits', 'ce', learning_rate=1.)
    with pytest.raises(ValueError, match="frac must be in"): lam_schedule(100, frac=0)
    assert scale_for(7, 32) == 8. and scale_for(10, 3) == 12.
