"""Forward+backward time of every `make_loss` module, as ratios against plain references measured in the same run.

    python benchmarks/losses.py            # both sizes, 1 torch thread (a few minutes on a loaded 2-core machine)
    python benchmarks/losses.py --quick    # fewer repeats

References (same process, interleaved with the losses): `linear` = nn.Linear (no bias) + F.cross_entropy;
`normalised` = F.linear(normalize(x), normalize(W)) · s + F.cross_entropy. Raw-logit losses are compared with
`linear`, cosine-head losses (and A-Softmax, whose W is normalised) with `normalised`. The peer is
pytorch-metric-learning (benchmark-only extra `bench`) where it has the same loss. float32 CPU.
"""
import argparse, math, platform, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
import torch
import torch.nn.functional as F
from emosynth_nb.losses import make_loss, LOSS_NAMES

SIZES = [(4096, 128, 1000), (256, 64, 7)]
COSINE = {"norm_softmax", "am_softmax", "cosface", "arcface", "dam_softmax", "dams", "a_softmax"}
TARGET = {"ce": 1.3, "focal": 1.3, "soft_margin": 1.3, "am_softmax": 1.3, "cosface": 1.3, "arcface": 1.3,
          "dam_softmax": 1.3, "dams": 1.3, "norm_softmax": 1.3, "sce": 1.5, "mam": 1.5, "symmetric_ce": 1.5,
          "l_softmax": 2.0, "a_softmax": 2.0}
PEER = {"am_softmax": "CosFaceLoss", "cosface": "CosFaceLoss", "arcface": "ArcFaceLoss",
        "l_softmax": "LargeMarginSoftmaxLoss", "a_softmax": "SphereFaceLoss"}

def peers(D, C):
    "The peer's modules (pytorch-metric-learning), or {} when it is not installed."
    try: from pytorch_metric_learning import losses as pml
    except ImportError: return {}
    return {"CosFaceLoss": pml.CosFaceLoss(C, D, margin=0.35, scale=30),
            "ArcFaceLoss": pml.ArcFaceLoss(C, D, margin=math.degrees(0.5), scale=64),
            "LargeMarginSoftmaxLoss": pml.LargeMarginSoftmaxLoss(C, D, margin=4, scale=1),
            "SphereFaceLoss": pml.SphereFaceLoss(C, D, margin=4, scale=1)}

def bench(N, D, C, reps, warmup=3):
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(N, D, generator=g).requires_grad_(True)
    y = torch.randint(0, C, (N,), generator=g)
    W = (torch.randn(C, D, generator=g) * 0.05).requires_grad_(True)
    cands = {"ref:linear": lambda: F.cross_entropy(F.linear(emb, W), y),
             "ref:normalised": lambda: F.cross_entropy(30 * F.linear(F.normalize(emb), F.normalize(W)), y)}
    mods = {n: make_loss(n, D, C) for n in LOSS_NAMES}
    for n, m in mods.items(): cands[n] = (lambda m=m: m(emb, y))
    pm = peers(D, C)
    for n, m in pm.items(): cands["peer:" + n] = (lambda m=m: m(emb, y))
    params = [emb, W] + [p for m in list(mods.values()) + list(pm.values()) for p in m.parameters()]
    times = {k: [] for k in cands}
    for r in range(warmup + reps):
        for k, f in cands.items():
            for p in params: p.grad = None
            t = time.perf_counter(); f().backward(); dt = time.perf_counter() - t
            if r >= warmup: times[k].append(dt)
    return {k: min(v) for k, v in times.items()}  # min of interleaved repeats: the least load-disturbed run

def table(N, D, C, t):
    rl, rn = t["ref:linear"], t["ref:normalised"]
    rows = [f"### N={N}, emb={D}, C={C} (float32, CPU; forward+backward, min of interleaved repeats)", "",
            "| loss | ms | reference | ratio | target | peer (pytorch-metric-learning) ratio | ours faster than peer | ok |",
            "|---|---|---|---|---|---|---|---|",
            f"| ref: linear + CE | {rl*1e3:.2f} | — | 1.00 | | | | |",
            f"| ref: normalised linear + CE | {rn*1e3:.2f} | — | 1.00 | | | | |"]
    for n in LOSS_NAMES:
        ref, rname = (rn, "normalised") if n in COSINE else (rl, "linear")
        ratio = t[n] / ref
        pk = "peer:" + PEER.get(n, "")
        peer = f"{t[pk] / ref:.2f} ({PEER[n]})" if pk in t else "—"
        faster = ("yes" if t[n] < t[pk] else "NO") if pk in t else "—"
        ok = ratio <= TARGET[n] and faster != "NO"
        rows.append(f"| {n} | {t[n]*1e3:.2f} | {rname} | {ratio:.2f} | ≤ {TARGET[n]} | {peer} | {faster} | {'yes' if ok else 'NO'} |")
    return "\n".join(rows)

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is the most stable on a shared machine)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}, python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    for N, D, C in SIZES:
        reps = (5 if a.quick else 25) if N > 1000 else (30 if a.quick else 200)
        print(table(N, D, C, bench(N, D, C, reps)) + "\n", flush=True)
