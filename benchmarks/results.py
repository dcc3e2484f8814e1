"""Regenerate the Results page's long experiments (all numbers synthetic: SynthFER), one documented command each.

    # the loss evaluation on images -> results/loss_evaluation.csv (+ _curves.csv), loaded by nbs/90_results.ipynb:
    # tiny EmoSynthNet, 32x32 SynthFER, 5 paired seeds
    python benchmarks/results.py losses --regimes clean --losses ce,mam+sce,am_softmax --seeds 5 --n-train 3000 --n-test 1000 --epochs 12 --size 32
    # the labelled extra -> results/loss_evaluation_latents.csv: an MLP on SynthFER's latent parameters, 3 regimes, 10 seeds
    python benchmarks/results.py losses --inputs latents --seeds 10 --epochs 10 --batch-size 256 --n-train 1400 --n-test 700
    # leakage and subject-independent k-fold with the HOG + RBF-SVM pixel classifier (it learns: well above chance), ten seeds
    python benchmarks/results.py leakage kfold --seeds 10
    python benchmarks/results.py leakage kfold --cnn --epochs 12   # ... with the tiny EmoSynthNet trained instead
    python benchmarks/results.py zoo                     # the CIFAR-10 table's models on SynthFER 32x32 RGB
    python benchmarks/results.py all --quick             # everything at smoke-test size (a minute or two)
    python benchmarks/results.py losses --device cuda    # on a GPU (bf16 autocast, channels-last)

Each experiment writes `<out>/<name>.csv` (one row per run) and `<out>/<name>.json` (machine, date, commit, command,
sizes), default out = benchmarks/results/; `losses` also writes `<name>_curves.csv` (one row per run and epoch) and
saves after every seed, so a stopped run leaves paired results (`--runs-dir` keeps every run; a rerun reuses them).
It prints, for every experiment, each setting against the reference measured in the same run (CE; the clean
split; subject-independent folds): mean, 95% CI and the paired difference over seeds. Run it single-threaded
and niced on a shared machine (`nice -n 10`, the default `--threads 1`) and read the differences, not the times.
"""
import argparse, json, sys, time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import torch
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as H

from emosynth_nb import results as R
from emosynth_nb.train.stats import summarise_runs, noise_report

EXPERIMENTS = ('losses', 'zoo', 'leakage', 'kfold')


def save(out: Path, name: str, df: pd.DataFrame, sizes: dict):
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / f'{name}.csv', index=False)
    meta = dict(machine=H.machine_line(), date=datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC'), commit=H.git_commit(),
                command='python ' + ' '.join(sys.argv), sizes=sizes, synthetic=True)
    (out / f'{name}.json').write_text(json.dumps(meta, indent=1))
    print(f"wrote {out / f'{name}.csv'} ({len(df)} runs)")


def run_losses(a, fit):
    losses = tuple(a.losses.split(',')) if a.losses else R.LOSS_EVAL_LOSSES
    regimes = {k: R.REGIMES[k] for k in a.regimes.split(',')} if a.regimes else None
    sizes = dict(inputs=a.inputs, n_train=a.n_train, n_test=a.n_test, seeds=a.seeds, epochs=a.epochs,
                 batch_size=a.batch_size, lr=a.lr, size=a.size, losses=list(losses), regimes=list(regimes or R.REGIMES))
    name = a.name or ('loss_evaluation' if a.inputs == 'images' else 'loss_evaluation_latents')
    parts = []
    for seed in range(a.seeds):   # seed by seed, saving after each: a stopped run still leaves paired results
        parts.append(R.loss_evaluation(losses, regimes, seeds=(seed,), inputs=a.inputs, n_train=a.n_train,
                                       n_test=a.n_test, size=a.size, epochs=a.epochs, batch_size=a.batch_size, lr=a.lr,
                                       progress=a.progress, out_dir=a.runs_dir, curves=True, **fit))
        df, curves = (pd.concat([p[i] for p in parts], ignore_index=True) for i in (0, 1))
        save(a.out, name, df, dict(sizes, seeds_done=seed + 1))
        save(a.out, f'{name}_curves', curves, dict(sizes, seeds_done=seed + 1))
    print(R.loss_eval_summary(df).to_string())
    for reg, g in df.groupby('regime', sort=False):
        print(f"\n{reg}: " + noise_report(summarise_runs(g, 'accuracy', 'loss_name', 'ce')).replace('`', ''))


def run_zoo(a, fit):
    names = ('emosynthnet_tiny', 'mobilenet_v2', 'efficientnet_b0') if a.quick else \
            R.ZOO if fit.get('device') == 'cuda' else ('emosynthnet_tiny',) + R.ZOO[:-1]
    sizes = dict(models=list(names), n_train=a.n_train, n_test=a.n_test, epochs=a.epochs, size=32, seeds=a.seeds)
    rows = []
    for seed in range(a.seeds):
        z, _ = R.model_zoo_experiment(names, n_train=a.n_train, n_test=a.n_test, epochs=a.epochs, batch_size=64,
                                      lr=1e-3, seed=seed, progress=a.progress, **fit)
        rows.append(z.reset_index().assign(seed=seed))
    df = pd.concat(rows, ignore_index=True)
    save(a.out, a.name or 'model_zoo', df, sizes)
    print(summarise_runs(df, 'accuracy', 'model', names[0]).round(3).to_string())


def _cnn(a, fit):
    "model_fn and fit arguments for --cnn (the tiny EmoSynthNet), or (None, {}) for the 1-NN."
    if not a.cnn: return None, {}
    from emosynth_nb.models import create_model
    return (lambda: create_model('emosynthnet_tiny', 0, 1, aux_classes=7)), dict(epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, **fit)


def run_leakage(a, fit):
    model_fn, kw = _cnn(a, fit)
    n = a.n_train if a.n_train_given else 1200
    df = R.leakage_experiment(tuple(range(a.seeds)), n=n, similarities=(0.995, 0.98, 0.95), classifier=a.classifier,
                              model_fn=model_fn, **kw)
    save(a.out, a.name or ('leakage_cnn' if a.cnn else f'leakage_{a.classifier}'), df,
         dict(seeds=a.seeds, n=n, model='emosynthnet_tiny' if a.cnn else a.classifier, **{k: v for k, v in kw.items() if k != 'device'}))
    print(summarise_runs(df, 'test_accuracy', 'protocol', 'clean').round(3).to_string())


def run_kfold(a, fit):
    model_fn, kw = _cnn(a, fit)
    n = a.n_train // 3 if a.n_train_given else 300
    df = R.subject_kfold_experiment(tuple(range(a.seeds)), n=n, classifier=a.classifier, model_fn=model_fn, **kw)
    save(a.out, a.name or ('subject_kfold_cnn' if a.cnn else f'subject_kfold_{a.classifier}'), df,
         dict(seeds=a.seeds, n=n, model='emosynthnet_tiny' if a.cnn else a.classifier, **{k: v for k, v in kw.items() if k != 'device'}))
    print(summarise_runs(df, 'accuracy', 'protocol', 'subject-independent').round(3).to_string())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split('\n', 1)[1])
    p.add_argument('experiments', nargs='+', choices=EXPERIMENTS + ('all',))
    p.add_argument('--quick', action='store_true', help='smoke-test sizes (for checking the script)')
    p.add_argument('--inputs', choices=('images', 'latents'), default='images', help='losses: train on images or on latents')
    p.add_argument('--losses', default=None, help='losses: comma-separated loss names (default: all of LOSS_EVAL_LOSSES)')
    p.add_argument('--regimes', default=None, help='losses: comma-separated regimes among clean,imbalanced,noisy (default: all)')
    p.add_argument('--seeds', type=int, default=None, help='number of seeds (default 3; 2 with --quick)')
    p.add_argument('--n-train', type=int, default=None)
    p.add_argument('--n-test', type=int, default=None)
    p.add_argument('--epochs', type=int, default=None)
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--lr', type=float, default=3e-3)
    p.add_argument('--size', type=int, default=32, help='losses: image size')
    p.add_argument('--device', default=None, help="e.g. 'cuda' (bf16 autocast and channels-last are switched on)")
    p.add_argument('--threads', type=int, default=1, help='torch CPU threads (1 is fastest for the tiny models)')
    p.add_argument('--out', type=Path, default=Path(__file__).resolve().parent / 'results')
    p.add_argument('--runs-dir', type=Path, default=None, help='losses: also keep every run (JSON) here; reruns reuse them')
    p.add_argument('--name', default=None, help='output file name (without extension)')
    p.add_argument('--progress', action='store_true')
    p.add_argument('--cnn', action='store_true', help='leakage, kfold: train the tiny EmoSynthNet instead of a pixel classifier')
    p.add_argument('--classifier', default='hog_svm', choices=R.PIXEL_CLASSIFIERS, help='leakage, kfold: the pixel classifier (default: hog_svm)')
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    q = a.quick
    a.seeds = a.seeds or (2 if q else 3)
    a.n_train_given = a.n_train is not None
    a.n_train = a.n_train or (256 if q else 2000)
    a.n_test = a.n_test or (256 if q else 700)
    a.epochs = a.epochs or (1 if q else 15)
    fit = {} if a.device is None else dict(device=a.device)
    if a.device == 'cuda': fit.update(amp=True, channels_last=True)
    todo = EXPERIMENTS if 'all' in a.experiments else a.experiments
    for e in todo:
        t0 = time.perf_counter()
        print(f"\n=== {e} (synthetic) ===")
        dict(losses=run_losses, zoo=run_zoo, leakage=run_leakage, kfold=run_kfold)[e](a, fit)
        print(f"[{e}: {time.perf_counter() - t0:.0f} s]")


if __name__ == '__main__':
    main()
