"Run statistics (`emosynth_nb.train.stats`): the one run summary and the significance checks, beyond the notebook's own tests."
import math
import pandas as pd, pytest
from emosynth_nb.train.stats import summarise_runs, noise_report, mean_ci, paired_diff, accuracy_lower_bound

def test_summarise_runs_pairs_by_seed_whatever_the_order():
    runs = pd.DataFrame(dict(loss_name=['ce'] * 3 + ['x'] * 3, seed=[2, 0, 1, 0, 1, 2], accuracy=[.5, .3, .4, .35, .46, .55]))
    s = summarise_runs(runs, 'accuracy', ref='ce')
    assert s.loc['x', 'diff'] == pytest.approx(0.16 / 3) and s.loc['x', 'diff_lo'] > 0.03
    assert bool(s.loc['x', 'beyond_noise']) and s.loc['x', 'wins'] == 3

def test_summarise_runs_mean_and_spread_several_columns():
    recs = [dict(loss='ce', seed=s, a=float(s)) for s in range(3)] + [dict(loss='mam', seed=0, a=1.0)]
    s = summarise_runs(recs, None, by='loss')
    assert s.loc['ce', ('a', 'mean')] == 1.0 and s.loc['ce', ('a', 'std')] == pytest.approx(1.0)
    assert s.loc['ce', ('a', 'n')] == 3 and math.isnan(s.loc['mam', ('a', 'std')])

def test_two_pairs_are_never_beyond_noise():
    runs = pd.DataFrame(dict(loss_name=['ce', 'ce', 'x', 'x'], seed=[0, 1, 0, 1], accuracy=[.1, .2, .5, .6]))
    assert not summarise_runs(runs, ref='ce').loc['x', 'beyond_noise']
    assert 'Not distinguishable' in noise_report(summarise_runs(runs, ref='ce'))

@pytest.mark.parametrize("call,msg", [
    (lambda: summarise_runs([dict(loss_name='ce', seed=0, accuracy=1.)], by='loss'), "no column 'loss'"),
    (lambda: summarise_runs([dict(loss_name='ce', accuracy=1.)], ref='ce'), "no column 'seed' to pair"),
    (lambda: paired_diff([1, 2, 3], [1, 2]), "same seeds"),
    (lambda: accuracy_lower_bound(3, 0), "n must be in (0, inf)"),
    (lambda: mean_ci([1, 2], level=1.0), "level must be in (0, 1)"),
])
def test_bad_input(call, msg):
    with pytest.raises(ValueError, match=pytest.importorskip('re').escape(msg)): call()
