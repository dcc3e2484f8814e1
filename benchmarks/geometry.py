"""Benchmark for `emosynth_nb.analysis`: UMAP of 5,000 points and a 25×25 loss landscape of the tiny model.

    flock /tmp/bench.lock python benchmarks/geometry.py [--quick]

Targets (issue 8, on 2 CPU cores): UMAP of 5,000 points ≤ 30 s, 25×25 landscape of the tiny model ≤ 60 s
(here: the tiny EmoSynthNet with a 3-D embedding and MAM+SCE, 128 SynthFER images at 48×48, synthetic).
Wall and CPU time of this process are both printed: on a machine shared with other jobs the wall time grows
with the load, the single-threaded CPU time much less (`--threads 1`).
Each task is printed with a reference measured in the same run, so the ratios stay meaningful on a loaded or
shared machine (the absolute times do not):
- UMAP: reference = the exact 15-nearest-neighbour graph of the same points (scikit-learn), the step every
  neighbour-graph method must do; the first UMAP call in a process also compiles numba code, shown separately.
- landscape: reference = (number of grid points) × (one evaluation of the loss at the trained weights), i.e. the
  pure cost of the forward passes; the ratio is the overhead of moving the weights and of the grid.
"""
import argparse, os, platform, sys, time, warnings
from pathlib import Path
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from emosynth_nb.analysis import project, loss_plane, LossMetric
from emosynth_nb.analysis.landscape import _batches
from emosynth_nb.losses import make_loss


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


def tiny_model_and_data(n, size):
    "The tiny EmoSynthNet (3-D embedding) and `n` SynthFER test images (synthetic); falls back to a stand-in model."
    from emosynth_nb.data import SynthFER
    X, y = SynthFER(n, seed=1, size=size).tensors()
    try:
        from emosynth_nb.models import emosynthnet_tiny
        torch.manual_seed(0); model, name = emosynthnet_tiny(n_classes=7, in_chans=1, embed_dim=3), 'emosynthnet_tiny'
    except ImportError:
        from torch import nn
        class Stand(nn.Module):
            def __init__(self): super().__init__(); self.f, self.h = nn.Sequential(nn.Flatten(), nn.Linear(size * size, 64), nn.ReLU()), nn.Linear(64, 3)
            def forward_features(self, x): return self.f(x)
            def forward_head(self, x, pre_logits=False): return self.h(x)
        torch.manual_seed(0); model, name = Stand(), 'stand-in MLP (models not importable)'
    return model.eval(), make_loss('mam+sce', 3, 7), (X, y), name


def main(quick=False, threads=None):
    if threads: torch.set_num_threads(threads)
    n_pts, steps, n_eval = (1000, 9, 64) if quick else (5000, 25, 128)
    print(f"# emosynth_nb analysis benchmark — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"load average {os.getloadavg()[0]:.1f} at start")
    if os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
        print("# NOTE: other jobs are sharing this machine (load above half the CPU count): wall times are inflated;"
              " read the ratios and the CPU times, not the absolute wall times.")
    rows = []

    # the landscape first: after UMAP, numba's worker threads would share the process's CPU time
    model, loss, data, name = tiny_model_and_data(n_eval, 48)
    metric = LossMetric(model, loss.eval(), _batches(data, n_eval, 256, 'cpu'))
    metric()                                                                   # warm-up
    t_one, _, _ = timed(lambda: [metric() for _ in range(3)]); t_one /= 3
    t_plane, c_plane, ls = timed(lambda: loss_plane(model, loss, data, steps=steps, span=1.0, n_max=n_eval, progress=False))
    assert ls.loss.shape == (steps, steps) and np.isfinite(ls.loss).all()
    rows.append((f"loss plane {steps}×{steps}, {name} (mam+sce), {n_eval} SynthFER imgs 48×48", t_plane, c_plane, 60.0,
                 f"{steps * steps} × one evaluation", steps * steps * t_one))

    X, y = clusters(n_pts)
    from sklearn.neighbors import NearestNeighbors
    t_knn, c_knn, _ = timed(lambda: NearestNeighbors(n_neighbors=15).fit(X).kneighbors(X))
    t_cold, c_cold, _ = timed(lambda: project(X[:300], 'umap', 2))             # numba compilation
    t_umap, c_umap, emb = timed(lambda: project(X, 'umap', 2))
    assert emb.shape == (n_pts, 2) and np.isfinite(emb).all()
    rows.append((f"UMAP 2-D, {n_pts} pts × 16-D (warm)", t_umap, c_umap, 30.0, "exact 15-NN graph", t_knn))
    rows.append(("UMAP first call in a process (numba compile, 300 pts)", t_cold, c_cold, None, "exact 15-NN graph", t_knn))

    print(f"\n| task | wall (s) | CPU (s) | target (s) | wall / target | reference | reference wall (s) | wall / reference |")
    print("|---|---|---|---|---|---|---|---|")
    for task, t, c, target, ref, tr in rows:
        tt = f"{target:.0f}" if target else "–"; ratio = f"{t / target:.2f}" if target else "–"
        print(f"| {task} | {t:.1f} | {c:.1f} | {tt} | {ratio} | {ref} | {tr:.2f} | {t / tr:.2f} |")
    print(f"\n# load average {os.getloadavg()[0]:.1f} at end")


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true', help='small sizes (a smoke test, not the benchmark)')
    ap.add_argument('--threads', type=int, default=None, help="torch threads (default: torch's own choice)")
    a = ap.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        main(a.quick, a.threads)
