"""Trainer overhead and input-pipeline headroom, measured against references in the same run.

    flock /tmp/bench.lock python benchmarks/train.py [--epochs 4] [--n 1024] [--batch-size 64] [--device cpu] [--threads 1]

1. `fit` (progress bars off and on) against a bare PyTorch loop doing the same work: same model
   (emosynthnet_tiny), same data (SynthFER, rendered once beforehand), same batch size, same step (features, aux
   head, embedding, loss + 0.3 aux CE, backward, AdamW step) but no metrics, scheduler, NaN check or progress.
   Images/s of each training epoch after the first, median over epochs, runs interleaved A/B/A/B.
   Target: trainer overhead <= 10 % (ratio >= 0.90).
2. The SynthFER input pipeline (a DataLoader with fit's default number of workers, rendering uncached samples)
   against what one training step consumes (images/s of forward+backward+step on a fixed batch).
   Target: pipeline >= 3x the step's consumption.
Absolute numbers depend on the machine and its load; the ratios are the result.
"""
import argparse, platform, statistics, time, datetime, inspect
import torch, torch.nn.functional as F
from torch.utils.data import DataLoader
from emosynth_nb.core import set_seed, default_device
from emosynth_nb.data import SynthFER
from emosynth_nb.losses import make_loss
from emosynth_nb.models import emosynthnet_tiny
from emosynth_nb.train import fit

AUX = 0.3


def build(seed=0):
    set_seed(seed)
    model = emosynthnet_tiny(n_classes=7, in_chans=1)
    return model, make_loss('ce', model.embed_dim, 7)


def bare_loop(data, epochs, batch_size, device, lr=1e-3):
    "The reference: the same step as the trainer, nothing else. Returns images/s per epoch."
    model, loss = build(); model.to(device); loss.to(device)
    opt = torch.optim.AdamW(list(model.parameters()) + list(loss.parameters()), lr=lr, weight_decay=0.05)
    g = torch.Generator().manual_seed(0)
    dl = DataLoader(data, batch_size=batch_size, shuffle=True, generator=g)
    model.train(); loss.train(); rates = []
    for _ in range(epochs):
        t0, n = time.perf_counter(), 0
        for x, y in dl:
            x, y = x.to(device), y.to(device)
            feats, aux = model.forward_features(x, return_aux=True)
            emb = model.forward_head(feats, pre_logits=True)
            total = loss(emb, y) + AUX * F.cross_entropy(aux, y)
            opt.zero_grad(set_to_none=True); total.backward(); opt.step(); n += len(y)
        if device.type == 'cuda': torch.cuda.synchronize()
        rates.append(n / (time.perf_counter() - t0))
    return rates


def trainer(data, epochs, batch_size, device, progress):
    model, loss = build()
    r = fit(model, loss, data, epochs=epochs, batch_size=batch_size, lr=1e-3, aux_weight=AUX, device=device, progress=progress)
    return [h['images_per_s'] for h in r.history]


def step_rate(batch_size, device, steps=15):
    "Images/s consumed by the training step alone (one fixed batch, no loading)."
    model, loss = build(); model.to(device); loss.to(device)
    opt = torch.optim.AdamW(list(model.parameters()) + list(loss.parameters()), lr=1e-3)
    x, y = torch.rand(batch_size, 1, 48, 48, device=device), torch.randint(0, 7, (batch_size,), device=device)
    def step():
        feats, aux = model.forward_features(x, return_aux=True)
        total = loss(model.forward_head(feats, pre_logits=True), y) + AUX * F.cross_entropy(aux, y)
        opt.zero_grad(set_to_none=True); total.backward(); opt.step()
    for _ in range(3): step()
    t0 = time.perf_counter()
    for _ in range(steps): step()
    if device.type == 'cuda': torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - t0)


def pipeline_rate(n, batch_size, num_workers, seed):
    "Images/s delivered by a DataLoader over freshly generated (uncached) SynthFER samples."
    data = SynthFER(n, seed=seed)
    dl = DataLoader(data, batch_size=batch_size, shuffle=True, num_workers=num_workers, generator=torch.Generator().manual_seed(0))
    t0, m = time.perf_counter(), 0
    for x, y in dl: m += len(y)
    return m / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--epochs', type=int, default=4)
    ap.add_argument('--n', type=int, default=1024)
    ap.add_argument('--batch-size', type=int, default=64)
    ap.add_argument('--device', default=None)
    ap.add_argument('--repeats', type=int, default=2)
    ap.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s own); 1 is steadier on a shared machine')
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    dev = default_device(a.device)
    data = SynthFER(a.n, seed=0)
    _ = [data[i] for i in range(len(data))]  # render once: part 1 measures the loop, not the renderer
    rows = {'bare loop': [], 'fit (progress off)': [], 'fit (progress on)': []}
    for _ in range(a.repeats):
        rows['bare loop'] += bare_loop(data, a.epochs, a.batch_size, dev)[1:]
        rows['fit (progress off)'] += trainer(data, a.epochs, a.batch_size, dev, False)[1:]
        rows['fit (progress on)'] += trainer(data, a.epochs, a.batch_size, dev, True)[1:]
    ref = statistics.median(rows['bare loop'])
    workers = inspect.signature(fit).parameters['num_workers'].default
    step = step_rate(a.batch_size, dev)
    pipe = pipeline_rate(a.n, a.batch_size, workers, seed=12345)

    print(f"\n## benchmarks/train.py: {platform.node()} ({platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads), device {dev}, torch {torch.__version__}, "
          f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"emosynthnet_tiny, SynthFER n={a.n} (synthetic, 48x48 gray), batch {a.batch_size}, "
          f"{a.epochs} epochs x {a.repeats} repeats (first epoch of each run discarded)\n")
    print("| loop | images/s (median) | ratio vs bare loop | target |")
    print("|---|---:|---:|---|")
    for k, v in rows.items():
        med = statistics.median(v)
        print(f"| {k} | {med:,.0f} | {med / ref:.3f} | {'reference' if k == 'bare loop' else '>= 0.90'} |")
    print(f"\n| input pipeline (num_workers={workers}, uncached SynthFER) | images/s | ratio vs training step | target |")
    print("|---|---:|---:|---|")
    print(f"| training step alone (fixed batch) | {step:,.0f} | 1.00 | reference |")
    print(f"| SynthFER DataLoader | {pipe:,.0f} | {pipe / step:.2f} | >= 3 |")
    ok = all(statistics.median(v) / ref >= 0.90 for k, v in rows.items() if k != 'bare loop') and pipe / step >= 3
    print(f"\ntargets {'met' if ok else 'NOT met'}")


if __name__ == '__main__':
    main()
