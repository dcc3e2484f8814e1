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

def test_runs_frame_reads_the_test_loss_and_the_loss_name():
    "runs_frame's loss_value column is the run's test loss (it read a key nothing produced, so it was always None)."
    from emosynth_nb.train import CompareResult
    runs = [dict(loss_name='ce', seed=0, metrics=dict(accuracy=.5, loss=1.25, ce=1.25), history=[dict(epoch=1, train_acc=.4, val_acc=.45)]),
            dict(loss='arcface', seed=1, metrics=dict(accuracy=.6, loss=3.5, ce=1.1), history=[dict(epoch=1, train_acc=.7, val_acc=.55)])]
    df = R.runs_frame(CompareResult(runs, None), regime='clean')
    assert df.loss_value.tolist() == [1.25, 3.5] and df.loss_value.notna().all()
    assert df.loss_name.tolist() == ['ce', 'arcface'] and df.train_acc.tolist() == [.4, .7] and 'loss' not in df
    h = R.history_frame(CompareResult(runs, None))
    assert h.val_acc.tolist() == [.45, .55] and list(h.columns[:3]) == ['loss_name', 'seed', 'epoch']

def test_runs_frame_loss_value_from_a_real_run():
    "End to end through compare: the loss_value column is filled for every run."
    df = R.digits_evaluation(('ce', 'am_softmax'), (0,), epochs=1)
    assert df.loss_value.notna().all() and (df.loss_value > 0).all()
    assert df.loss_name.tolist() == ['ce', 'am_softmax']

def test_oversample_then_split_leaks_and_audit_sees_it():
    df = R.leakage_experiment(seeds=(0,), n=140, n_fresh=70, similarities=(0.995,), classifier='1nn')
    d = df.set_index('protocol')
    assert d.loc['clean', 'test_leaked'] == 0 and d.loc['clean', 'audit_0.995'] == 0
    assert d.loc['oversample, then split', 'audit_0.995'] == pytest.approx(d.loc['oversample, then split', 'test_leaked'])
    assert d.loc['oversample, then split', 'test_accuracy'] > d.loc['clean', 'test_accuracy']
    assert (d.train_accuracy == 1).all()   # a 1-NN recognises every training image

def test_hog_svm_learns_above_chance():
    "The leakage experiments' default classifier learns: on new synthetic people it scores well above chance (1/7)."
    from emosynth_nb.data import SynthFER
    (xa, ya), (xb, yb) = SynthFER(700, seed=1, size=32).tensors(), SynthFER(300, seed=2, size=32).tensors()
    tr, te = R.pixel_accuracy(xa, ya, [(xb, yb)])
    assert tr > 0.9 and te > 2 / 7, (tr, te)
    assert R.hog_features(xa[:3]).shape == (3, 9 * 8 * 8)
    with pytest.raises(ValueError, match="classifier must be one of"): R.pixel_classifier('forest')

def test_moved_names_are_gone_from_results():
    "Adapters, data helpers and statistics have one home each (models, data, train.stats)."
    for name in ('MLPProbe', 'BaselineAdapter', 'zoo_model', 'oversample_indices', 'near_duplicates', 'balance', 'latent_features',
                 'summarize_runs', 'noise_report', 'binomial_se', 'mcnemar_max_discordant', 'accuracy_lower_bound'):
        assert name not in R.__all__, name
    from emosynth_nb.models import THESIS_MODEL_TABLE
    t = R.thesis_table('model').set_index('key')
    assert t.loc['vgg19', 'params_M'] == THESIS_MODEL_TABLE['vgg19']['params_M'] and t.loc['densenet121', 'method'] == 'DensNet121'

def test_benchmark_script_help_and_bad_argument(capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location('bench_results', ROOT / 'benchmarks' / 'results.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    with pytest.raises(SystemExit) as e: mod.main(['--help'])
    assert e.value.code == 0 and 'loss_evaluation' in capsys.readouterr().out
    with pytest.raises(SystemExit) as e: mod.main(['nonsense'])
    assert e.value.code == 2 and 'invalid choice' in capsys.readouterr().err
