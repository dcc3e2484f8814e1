"Small checks of `emosynth_nb.results` and `benchmarks/results.py` beyond the notebook's own tests (fast: a few seconds)."
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
from emosynth_nb import results as R

ROOT = Path(__file__).resolve().parents[1]

def test_thesis_tables_transcribed():
    cif = R.thesis_table('cifar10').set_index('key')
    assert cif.loc['emosynthnet', ['accuracy', 'error', 'precision', 'recall', 'f1']].tolist() == [86.32, 0.67, 87.03, 85.99, 0.86]
    assert cif.loc['mobilenet_v2', 'accuracy'] == 77.23
    assert R.thesis_table('ckplus').accuracy.tolist()[:2] == [100.0, 100.0]
    assert R.thesis_table('rafdb').method.tolist()[-1] == 'EfficientFace'
    with pytest.raises(ValueError, match="choose one of"): R.thesis_table('affectnet')

def test_keras_recall_never_exceeds_accuracy():
    rng = np.random.default_rng(1)
    for _ in range(20):
        p = rng.dirichlet(np.ones(5) * rng.uniform(0.1, 3), size=50); y = rng.integers(0, 5, 50)
        _, rec = R.thresholded_precision_recall(p, y)
        assert rec <= (p.argmax(1) == y).mean() + 1e-12

def test_summarize_runs_pairs_by_seed():
    runs = pd.DataFrame(dict(loss=['ce'] * 3 + ['x'] * 3, seed=[2, 0, 1, 0, 1, 2], accuracy=[.5, .3, .4, .35, .46, .55]))
    s = R.summarize_runs(runs)   # pairs (.35,.3), (.46,.4), (.55,.5) by seed, whatever the row order
    assert s.loc['x', 'diff'] == pytest.approx(0.16 / 3) and s.loc['x', 'diff_lo'] > 0.03
    assert bool(s.loc['x', 'beyond_noise'])

def test_oversample_then_split_leaks_and_audit_sees_it():
    df = R.leakage_experiment(seeds=(0,), n=140, n_fresh=70, similarities=(0.995,))
    d = df.set_index('protocol')
    assert d.loc['clean', 'test_leaked'] == 0 and d.loc['clean', 'audit_0.995'] == 0
    assert d.loc['oversample, then split', 'audit_0.995'] == pytest.approx(d.loc['oversample, then split', 'test_leaked'])
    assert d.loc['oversample, then split', 'test_accuracy'] > d.loc['clean', 'test_accuracy']

def test_baseline_adapter_trains_with_any_loss():
    from emosynth_nb.losses import make_loss
    m = R.BaselineAdapter(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3)))
    assert m.embed_dim == 6
    loss = make_loss('arcface', m.embed_dim, 3)
    out = loss(m.forward_head(m.forward_features(torch.rand(4, 3, 2, 2)), pre_logits=True), torch.tensor([0, 1, 2, 0]))
    out.backward()
    assert torch.isfinite(out)

def test_benchmark_script_help_and_bad_argument(capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location('bench_results', ROOT / 'benchmarks' / 'results.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    with pytest.raises(SystemExit) as e: mod.main(['--help'])
    assert e.value.code == 0 and 'loss_evaluation' in capsys.readouterr().out
    with pytest.raises(SystemExit) as e: mod.main(['nonsense'])
    assert e.value.code == 2 and 'invalid choice' in capsys.readouterr().err
