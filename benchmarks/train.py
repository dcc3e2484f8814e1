"""Trainer overhead and input-pipeline headroom, as ratios to references timed in the same run.

    nice -n 10 python benchmarks/train.py               # emosynthnet_tiny, SynthFER n=512, 2 epochs per run
    python benchmarks/train.py --quick                  # n=128, 1 epoch, 3 rounds (a smoke test)

Timing uses `_harness.py`: one thread, process CPU time (+ the CPU time of finished DataLoader workers), the
candidates interleaved with the reference in one loop, medians of paired ratios with a bootstrap 95 % interval.
1. `fit` (progress bars off, and on) against a bare PyTorch loop doing the same work: same model
   (emosynthnet_tiny), same data (SynthFER, synthetic, rendered once beforehand), same batch size, same step
   (embedding + auxiliary logits, loss + 0.3 aux CE, backward, AdamW) but no metrics, scheduler, NaN check or
   progress. One call = one whole short run. Ratio = throughput ÷ the bare loop's; target ≥ 0.90 (overhead ≤ 10 %).
2. The SynthFER input pipeline (a DataLoader with fit's default number of workers over uncached samples)
   against what one training step consumes (a fixed batch, forward + backward + AdamW). Ratio = images per CPU
   second ÷ the step's; target ≥ 3.
Writes `benchmarks/results/train.json` and `.csv`.
"""
import os, sys
for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"): os.environ.setdefault(_v, "1")
import argparse, dataclasses, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as H
import torch, torch.nn.functional as F
from torch.utils.data import DataLoader
from emosynth_nb.core import set_seed
from emosynth_nb.data import SynthFER
from emosynth_nb.losses import make_loss
from emosynth_nb.models import emosynthnet_tiny
from emosynth_nb.train import fit, TrainConfig

AUX = 0.3


def embed_aux(model, x):
    "(embedding, auxiliary logits or None) in one pass: the training path of the model contract."
    return model.embed_with_aux(x)


def fit_default(name, fallback=None):
    "The default of one of `TrainConfig`'s settings."
    for f in dataclasses.fields(TrainConfig):
        if f.name == name: return f.default
    return fallback


def build(seed=0):
    set_seed(seed)
    model = emosynthnet_tiny(n_classes=7, in_chans=1)
    return model, make_loss("ce", model.embed_dim, 7)


def train_step(model, loss, opt, x, y):
    emb, aux = embed_aux(model, x)
    total = loss(emb, y) + (AUX * F.cross_entropy(aux, y) if aux is not None else 0)
    opt.zero_grad(set_to_none=True); total.backward(); opt.step()


def bare_loop(data, epochs, batch_size, lr=1e-3):
    "The reference: the same step as the trainer, nothing else."
    model, loss = build()
    opt = torch.optim.AdamW(list(model.parameters()) + list(loss.parameters()), lr=lr, weight_decay=0.05)
    dl = DataLoader(data, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(0))
    model.train(); loss.train()
    for _ in range(epochs):
        for x, y in dl: train_step(model, loss, opt, x, y)


def trainer(data, epochs, batch_size, progress):
    model, loss = build()
    fit(model, loss, data, epochs=epochs, batch_size=batch_size, lr=1e-3, aux_weight=AUX, device="cpu",
        progress=progress, num_workers=0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=None, help="epochs per run (default 2; 1 with --quick)")
    ap.add_argument("--n", type=int, default=None, help="SynthFER images (default 512; 128 with --quick)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=None, help="timed rounds (default 7; 3 with --quick)")
    ap.add_argument("--max-time", type=float, default=None, help="wall seconds per group (default 240)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=None, help="folder for train.json / train.csv (default benchmarks/results)")
    a = ap.parse_args(argv)
    H.pin_threads(1)
    epochs = a.epochs or (1 if a.quick else 2); n = a.n or (128 if a.quick else 512)
    rounds = a.rounds or (3 if a.quick else 7)
    max_time = a.max_time if a.max_time is not None else (30. if a.quick else 240.)
    t0c, t0w = time.process_time(), time.perf_counter()
    data = SynthFER(n, seed=0)
    _ = [data[i] for i in range(len(data))]   # render once: part 1 measures the loop, not the renderer
    res1 = H.compare({"bare loop": lambda: bare_loop(data, epochs, a.batch_size),
                      "fit (progress off)": lambda: trainer(data, epochs, a.batch_size, False),
                      "fit (progress on)": lambda: trainer(data, epochs, a.batch_size, True)},
                     "bare loop", rounds=rounds, warmup=1, max_time=max_time, min_time=0.0)
    rows = [{"group": "trainer", "measurement": "bare loop (reference)", "images_per_cpu_s": n * epochs / next(iter(res1.values())).ref_time,
             "ratio_median": 1.0, "ratio_lo": 1.0, "ratio_hi": 1.0, "rounds": next(iter(res1.values())).rounds,
             "target": None, "meets_target": None}]
    for k, r in res1.items():
        s = H.summarise_ratios([1 / q for q in r.ratios])   # throughput ratio = reference time ÷ candidate time
        rows.append({"group": "trainer", "measurement": k, "images_per_cpu_s": n * epochs / r.time,
                     "ratio_median": s["median"], "ratio_lo": s["lo"], "ratio_hi": s["hi"], "rounds": r.rounds,
                     "target": 0.90, "meets_target": bool(s["median"] >= 0.90)})

    workers = fit_default("num_workers", 0)
    model, loss = build()
    opt = torch.optim.AdamW(list(model.parameters()) + list(loss.parameters()), lr=1e-3)
    x, y = torch.rand(a.batch_size, 1, 48, 48), torch.randint(0, 7, (a.batch_size,))
    seeds = iter(range(10_000, 10**9))
    def pipeline():
        dl = DataLoader(SynthFER(n, seed=next(seeds)), batch_size=a.batch_size, shuffle=True, num_workers=workers,
                        generator=torch.Generator().manual_seed(0))
        for _ in dl: pass
    res2 = H.compare({"step": lambda: train_step(model, loss, opt, x, y), "pipeline": pipeline}, "step",
                     rounds=rounds, warmup=1, max_time=max_time, min_time=0.05, clock="cpu+children")
    clock_note = "process CPU time + finished DataLoader workers' CPU time"
    r = res2["pipeline"]; per = n / a.batch_size
    s = H.summarise_ratios([per / q for q in r.ratios])
    rows += [{"group": "pipeline", "measurement": "training step alone (fixed batch, reference)",
              "images_per_cpu_s": a.batch_size / r.ref_time, "ratio_median": 1.0, "ratio_lo": 1.0, "ratio_hi": 1.0,
              "rounds": r.rounds, "target": None, "meets_target": None},
             {"group": "pipeline", "measurement": f"SynthFER DataLoader (num_workers={workers}, uncached)",
              "images_per_cpu_s": n / r.time, "ratio_median": s["median"], "ratio_lo": s["lo"], "ratio_hi": s["hi"],
              "rounds": r.rounds, "target": 3.0, "meets_target": bool(s["median"] >= 3.0)}]
    info = H.meta(argv=None if argv is None else [sys.argv[0], *argv],
                  setting=f"emosynthnet_tiny, SynthFER n={n} (synthetic, 48x48 gray), batch {a.batch_size}, {epochs} epoch(s) per run",
                  timing=f"{clock_note}; interleaved with the reference; medians of paired ratios, bootstrap 95% CI",
                  total_cpu_s=round(time.process_time() - t0c, 1), total_wall_s=round(time.perf_counter() - t0w, 1))
    path = H.write_results("train", rows, info, a.out)
    m = info["machine"]
    print(f"## benchmarks/train.py — {info['date']}, {m['cpu']}, 1 thread, torch {m['torch']}, commit {info['commit'][:12]}, "
          f"load avg {m.get('load_avg_1min')}\n{info['setting']}\n")
    print(H.markdown(rows, [("group", "group"), ("measurement", "measurement"),
                            ("images per CPU s", lambda r: f"{r['images_per_cpu_s']:,.0f}"),
                            ("throughput ratio [95% CI]", lambda r: H.fmt_ratio(r["ratio_median"], r["ratio_lo"], r["ratio_hi"])),
                            ("target", lambda r: "reference" if r["target"] is None else f"≥ {r['target']:.2f}"),
                            ("ok", lambda r: "" if r["meets_target"] is None else ("yes" if r["meets_target"] else "NO"))]))
    print(f"\nwrote {path} and {path.with_suffix('.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
