"""Feature-geometry runs too long for the docs build, saved for `nbs/65_feature_geometry.ipynb` to load and label.

    flock /tmp/bench.lock nice python benchmarks/geometry.py synthfer [--seeds 3] [--losses ce,am_softmax,...]
    flock /tmp/bench.lock nice python benchmarks/geometry.py digits   [--seeds 10]
    flock /tmp/bench.lock python benchmarks/geometry.py timing [--quick]

- `synthfer`: the six losses of the geometry page on SynthFER (**synthetic** faces, 32×32, test faces of people not
  seen in training) with the tiny EmoSynthNet and a 3-D embedding, trained with `recipe('synthfer', loss_name)`.
  Writes `benchmarks/results/geometry_synthfer.csv` (one row per run: train and test accuracy, convergence flags,
  intra-class angle, smallest angle between class centres, separation ratio, CPU seconds) and `.json` (command,
  commit, date, machine, sizes, and the test embeddings of the first seed of each loss for the page's spheres).
- `digits`: the same six losses on scikit-learn's digits with the digits recipe as it is (no budget overrides),
  more seeds than the page runs. Writes `geometry_digits.csv` / `.json`.
- `timing` (issue 8): UMAP of 5,000 points (target ≤ 30 s on 2 cores) and a 25×25 loss landscape of the tiny
  model (≤ 60 s), each next to a reference measured in the same run (the exact 15-NN graph; the grid's forward
  passes), so the ratios stay meaningful on a shared machine. Prints a table, saves nothing.
"""
import argparse, json, os, sys, time, warnings
from datetime import datetime, timezone
from pathlib import Path
import numpy as np
import pandas as pd
import torch
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as H

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
LOSSES = ('ce', 'am_softmax', 'arcface', 'dams', 'mam', 'mam+sce')


def one_run(task, loss_name, seed, data, keep_emb=False, **overrides):
    "Train `loss_name` on `task` with its recipe (3-D embedding); the run's record and (optionally) its test embeddings."
    from emosynth_nb.core import set_seed
    from emosynth_nb.losses import make_loss
    from emosynth_nb.train import fit
    from emosynth_nb.train.recipes import recipe, task_model, TASKS
    from emosynth_nb.analysis import extract_embeddings, sphere_measures
    train, test = data
    c = time.process_time()
    set_seed(seed); model = task_model(task, 3)
    cfg, kw = recipe(task, loss_name, embed_dim=3, n_train=len(train), seed=seed, progress=False, **overrides)
    loss = make_loss(loss_name, 3, TASKS[task]['n_classes'], **kw)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        res = fit(model, loss, train, test, cfg)
    emb, y = extract_embeddings(res.model, test, progress=False)
    m, rep = sphere_measures(emb, y), res.report
    rec = dict(task=task, loss_name=loss_name, seed=seed, train_acc=rep.train_acc, test_acc=rep.test_acc, chance=rep.chance,
               collapsed=rep.collapsed, near_chance=rep.near_chance, loss_still_falling=rep.loss_still_falling,
               intra_mean_deg=m['intra_mean_deg'], inter_min_deg=m['inter_min_deg'], sep_ratio=m['sep_ratio'],
               epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, loss_kwargs=json.dumps(kw),
               warnings=' | '.join(str(x.message) for x in w if issubclass(x.category, RuntimeWarning)),
               cpu_s=time.process_time() - c)
    print(f"{task} {loss_name:10s} seed {seed}: train {rec['train_acc']:.3f} test {rec['test_acc']:.3f} "
          f"intra {rec['intra_mean_deg']:.1f}° min centre {rec['inter_min_deg']:.1f}° ({rec['cpu_s']:.0f} s CPU)", flush=True)
    if not keep_emb: return rec, None
    keep = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))[:300]   # a light figure
    return rec, dict(train_acc=rec['train_acc'], test_acc=rec['test_acc'],
                     emb=np.round(emb[keep].numpy(), 4).tolist(), y=y[keep].tolist())


def run_grid(task, a, sizes, note):
    "Every loss × seed of `task`; writes `geometry_<task>.csv` and `.json` under `--out`."
    from emosynth_nb.train.recipes import task_data
    torch.set_num_threads(a.threads)
    losses = tuple(a.losses.split(',')) if a.losses else LOSSES
    recs, embs, classes = [], {}, None
    for seed in range(a.seeds):
        data = task_data(task, seed, **({'n': a.n, 'size': a.size} if task == 'synthfer' else {}))
        classes = list(getattr(data[1], 'classes', [str(i) for i in range(10)]))
        for n in losses:
            r, e = one_run(task, n, seed, data, keep_emb=seed == 0, **({'epochs': a.epochs} if a.epochs else {}))
            recs.append(r)
            if e is not None: embs[n] = e
            save(a.out, f'geometry_{task}', pd.DataFrame(recs), sizes | dict(seeds_done=seed + (n == losses[-1])), note, embs, classes)
    df = pd.DataFrame(recs)
    print(df.groupby('loss_name', sort=False)[['train_acc', 'test_acc', 'intra_mean_deg', 'inter_min_deg', 'sep_ratio', 'cpu_s']].mean().round(3).to_string())


def save(out, name, df, sizes, note, embs, classes):
    "CSV of the runs and JSON of how they were made (rewritten after every run, so a stopped job keeps its runs)."
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / f'{name}.csv', index=False)
    meta = dict(command='python ' + ' '.join(sys.argv), commit=H.git_commit(), machine=H.machine_line(),
                date=datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC'), sizes=sizes, note=note,
                synthetic=name.endswith('synthfer'), classes=classes, embeddings=embs)
    (out / f'{name}.json').write_text(json.dumps(meta))


# ---------------------------------------------------------------------------------------------------- timing (issue 8)
def clusters(n=5000, d=16, k=7, seed=0):
    "`n` points in `d` dimensions around `k` random unit directions (synthetic)."
    g = np.random.default_rng(seed)
    c = g.normal(size=(k, d)); c /= np.linalg.norm(c, axis=1, keepdims=True)
    y = np.arange(n) % k
    return (c[y] + 0.35 * g.normal(size=(n, d)) / np.sqrt(d)).astype(np.float32), y


def timed(fn):
    "(wall seconds, CPU seconds of this process, result) of `fn()`."
    t, c = time.perf_counter(), time.process_time(); out = fn()
    return time.perf_counter() - t, time.process_time() - c, out


def timing(quick=False, threads=None):
    from emosynth_nb.analysis import loss_plane, LossMetric
    from emosynth_nb.analysis.landscape import _batches
    from emosynth_nb.viz.numbers import project
    from emosynth_nb.losses import make_loss
    from emosynth_nb.models import create_model
    from emosynth_nb.data import SynthFER
    if threads: torch.set_num_threads(threads)
    n_pts, steps, n_eval = (1000, 9, 64) if quick else (5000, 25, 128)
    print(f"# emosynth_nb analysis benchmark — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {H.machine_line()}, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    X, y = SynthFER(n_eval, seed=1, size=48).tensors()
    torch.manual_seed(0); model = create_model('emosynthnet_tiny', 0, 1, aux_classes=7, embed_dim=3).eval()
    loss, data, rows = make_loss('mam+sce', 3, 7), (X, y), []
    metric = LossMetric(model, loss.eval(), _batches(data, n_eval, 256, 'cpu')); metric()
    t_one, _, _ = timed(lambda: [metric() for _ in range(3)]); t_one /= 3
    t_plane, c_plane, ls = timed(lambda: loss_plane(model, loss, data, steps=steps, span=1.0, n_max=n_eval, progress=False))
    assert ls.loss.shape == (steps, steps) and np.isfinite(ls.loss).all()
    rows.append((f"loss plane {steps}×{steps}, emosynthnet_tiny (mam+sce), {n_eval} SynthFER imgs 48×48", t_plane, c_plane, 60.0,
                 f"{steps * steps} × one evaluation", steps * steps * t_one))
    P, _ = clusters(n_pts)
    from sklearn.neighbors import NearestNeighbors
    t_knn, _, _ = timed(lambda: NearestNeighbors(n_neighbors=15).fit(P).kneighbors(P))
    t_cold, c_cold, _ = timed(lambda: project(P[:300], 'umap', 2))
    t_umap, c_umap, emb = timed(lambda: project(P, 'umap', 2))
    assert emb.shape == (n_pts, 2) and np.isfinite(emb).all()
    rows.append((f"UMAP 2-D, {n_pts} pts × 16-D (warm)", t_umap, c_umap, 30.0, "exact 15-NN graph", t_knn))
    rows.append(("UMAP first call in a process (numba compile, 300 pts)", t_cold, c_cold, None, "exact 15-NN graph", t_knn))
    print("\n| task | wall (s) | CPU (s) | target (s) | reference | reference wall (s) | wall / reference |\n|---|---|---|---|---|---|---|")
    for task, t, c, target, ref, tr in rows:
        print(f"| {task} | {t:.1f} | {c:.1f} | {f'{target:.0f}' if target else '–'} | {ref} | {tr:.2f} | {t / tr:.2f} |")


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument('what', choices=('synthfer', 'digits', 'timing'), help='which experiment')
    ap.add_argument('--seeds', type=int, default=None, help='seeds 0..N-1 (default: synthfer 3, digits 10)')
    ap.add_argument('--losses', default=None, help=f"comma-separated loss names (default: {','.join(LOSSES)})")
    ap.add_argument('--epochs', type=int, default=None, help="override the recipe's epochs (default: the recipe's)")
    ap.add_argument('--n', type=int, default=4000, help='synthfer: faces generated')
    ap.add_argument('--size', type=int, default=32, help='synthfer: image side in pixels (≥ 32)')
    ap.add_argument('--threads', type=int, default=1, help='torch threads (1: run two jobs side by side on two cores)')
    ap.add_argument('--out', type=Path, default=ROOT / 'benchmarks' / 'results', help='folder for the CSV and JSON')
    ap.add_argument('--quick', action='store_true', help='timing: small sizes (a smoke test)')
    a = ap.parse_args()
    if a.what == 'timing':
        with warnings.catch_warnings():
            warnings.simplefilter('ignore'); timing(a.quick, a.threads)
    elif a.what == 'synthfer':
        if a.size < 32: ap.error(f"--size must be at least 32 (the page's faces are ≥ 32 px), got {a.size}")
        a.seeds = a.seeds or 3
        run_grid('synthfer', a, dict(n=a.n, size=a.size, seeds=a.seeds, model='emosynthnet_tiny', embed_dim=3),
                 "SynthFER is synthetic; the test faces are of people not seen in training; chance is 1/7.")
    else:
        a.seeds = a.seeds or 10
        run_grid('digits', a, dict(seeds=a.seeds, model='mlp 64-128-3'), "scikit-learn digits with the digits recipe as it is.")
