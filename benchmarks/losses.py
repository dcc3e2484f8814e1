"""Forward+backward time of every loss in `LOSS_NAMES` as a ratio to normalised-linear + CE measured in the same run.

    nice -n 10 python benchmarks/losses.py              # both sizes, eager + compiled + pytorch-metric-learning
    python benchmarks/losses.py --quick                 # a few rounds, no compile: a smoke test (tests use it)
    python benchmarks/losses.py --no-compile --out /tmp/r

Reference: `F.cross_entropy(s · F.linear(F.normalize(x), F.normalize(W)), y)` with s = 30, float32, CPU, one
thread. Every candidate (our losses; `torch.compile` of each; pytorch-metric-learning's counterpart when the
`bench` extra is installed; plain linear + CE for scale) is a closure "zero grads, loss(x, y).backward()" timed
in process CPU time, interleaved with the reference in one loop (see `_harness.py`). A ratio of 1.30 means
"30 % slower than normalised linear + CE"; `[lo–hi]` is a bootstrap 95 % interval of the median ratio.

The compiled column is `torch.compile(loss)` timed in the same loop, as a ratio to the same (eager) reference;
its compile time (first call) is measured separately, excluded from the ratio, and reported. Compilation stops
once `--compile-budget` wall seconds are spent (CPU inductor compiles C++; slow on a loaded machine); the rows
left say so. Results: `benchmarks/results/losses.json` and `.csv` (command, commit, date, machine, rows).
"""
import os, sys
for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"): os.environ.setdefault(_v, "1")
import argparse, logging, math, time, warnings
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as H
import torch
import torch.nn.functional as F
from emosynth_nb.losses import make_loss, LOSS_NAMES

SIZES = [(256, 128, 7), (4096, 128, 1000)]   # (N, d, C): the FER case, then a large face-recognition-like head
S = 30.0
# Targets of issue 16 at N=256, d=128, C=7 (ratio to the reference); at the large size every loss ≤ 1.1.
TARGET_SMALL = {"l_softmax": 1.6, "a_softmax": 1.6, **{n: 1.3 for n in
                ("am_softmax", "cosface", "arcface", "dam_softmax", "dams", "mam", "norm_softmax", "soft_margin")}}
TARGET_LARGE = 1.1
# our loss → pytorch-metric-learning class and its settings matching our defaults
PML = {"cosface": ("CosFaceLoss", dict(margin=0.35, scale=30)),
       "am_softmax": ("CosFaceLoss", dict(margin=0.35, scale=30)),
       "arcface": ("ArcFaceLoss", dict(margin=math.degrees(0.5), scale=64)),
       "l_softmax": ("LargeMarginSoftmaxLoss", dict(margin=4, scale=1)),
       "a_softmax": ("SphereFaceLoss", dict(margin=4, scale=1)),
       "norm_softmax": ("NormalizedSoftmaxLoss", dict(temperature=1 / S))}


def pml_losses(d, C):
    "{our loss name: pytorch-metric-learning module} for the counterparts, or {} when it is not installed."
    try: from pytorch_metric_learning import losses as pml
    except ImportError: return {}
    out = {}
    for ours, (cls, kw) in PML.items():
        torch.manual_seed(0); out[ours] = getattr(pml, cls)(num_classes=C, embedding_size=d, **kw)
    return out


def closure(fn, params):
    "A zero-argument call: clear the gradients of `params`, compute fn(), backward. What every candidate times."
    def run():
        for p in params: p.grad = None
        fn().backward()
    return run


def quiet_compile():
    "Silence dynamo's graph-break chatter (the losses helper tests graph breaks; here we only time)."
    warnings.filterwarnings("ignore")
    for name in ("torch._dynamo", "torch._inductor", "torch.utils.cpp_extension"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import torch._inductor.config as ic
        ic.compile_threads = 1   # no pool of compile workers on a shared machine
    except Exception: pass


def bench_size(N, d, C, names, rounds, max_time, compile_, compile_budget, use_pml, seed=0, log=print):
    "Rows (one per loss) for one size; `compile_budget` is a one-element list of wall seconds left for compiling."
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, d, generator=g).requires_grad_(True)
    y = torch.randint(0, C, (N,), generator=g)
    W = (torch.randn(C, d, generator=g) * 0.05).requires_grad_(True)
    cands = {"ref": closure(lambda: F.cross_entropy(S * F.linear(F.normalize(x), F.normalize(W)), y), [x, W]),
             "linear+ce": closure(lambda: F.cross_entropy(F.linear(x, W), y), [x, W])}
    notes, compile_s = {}, {}
    mods = {}
    for n in names:
        torch.manual_seed(0); mods[n] = make_loss(n, d, C)
        cands[n] = closure(lambda m=mods[n]: m(x, y), [x, *mods[n].parameters()])
    if compile_:
        quiet_compile()
        for n in ["ref"] + list(names):
            if compile_budget[0] <= 0:
                notes[n] = "not compiled: --compile-budget spent"; continue
            try:
                if n == "ref":
                    f = torch.compile(lambda: F.cross_entropy(S * F.linear(F.normalize(x), F.normalize(W)), y))
                    c = closure(f, [x, W])
                else:
                    cm = torch.compile(mods[n]); c = closure(lambda cm=cm: cm(x, y), [x, *mods[n].parameters()])
                cpu, wall, _ = H.time_once(c)
                c(); c()   # a recompile on the second call (grad set / None) happens here, not in the timing
                compile_budget[0] -= wall; compile_s[n] = (cpu, wall)
                cands[f"compiled:{n}"] = c
            except Exception as e:  # no compiler, unsupported op...: the row says why
                notes[n] = f"compile failed: {type(e).__name__}: {str(e).splitlines()[0][:120]}"
    peers = pml_losses(d, C) if use_pml else {}
    for n, m in peers.items():
        if n in names: cands[f"pml:{n}"] = closure(lambda m=m: m(x, y), [x, *m.parameters()])
    log(f"  N={N} d={d} C={C}: {len(cands)} callables, up to {rounds} rounds / {max_time:.0f} s ...")
    res = H.compare(cands, "ref", rounds=rounds, max_time=max_time, warmup=2, min_time=0.02, seed=seed)
    rows = []
    small = (N, d, C) == SIZES[0]
    for n in ["linear+ce"] + list(names):
        r = res[n]
        row = {"loss": n, "N": N, "d": d, "C": C, "ratio_median": r.ratio, "ratio_lo": r.lo, "ratio_hi": r.hi,
               "ratio_q25": r.q25, "ratio_q75": r.q75, "rounds": r.rounds, "ms": r.time * 1e3, "ref_ms": r.ref_time * 1e3}
        c = res.get(f"compiled:{n}")
        row.update(compiled_ratio=c.ratio if c else None, compiled_lo=c.lo if c else None,
                   compiled_hi=c.hi if c else None,
                   compile_s_cpu=compile_s.get(n, (None, None))[0], compile_s_wall=compile_s.get(n, (None, None))[1])
        p = res.get(f"pml:{n}")
        row.update(pml_class=PML[n][0] if p else None, pml_ratio=p.ratio if p else None,
                   pml_lo=p.lo if p else None, pml_hi=p.hi if p else None)
        tgt = TARGET_SMALL.get(n) if small else (TARGET_LARGE if n != "linear+ce" else None)
        row["target"] = tgt
        row["meets_target"] = None if tgt is None else bool(r.ratio <= tgt)
        row["note"] = notes.get(n, "")
        rows.append(row)
    cref = res.get("compiled:ref")
    rows.append({"loss": "ref (compiled)", "N": N, "d": d, "C": C, "ratio_median": cref.ratio if cref else None,
                 "ratio_lo": cref.lo if cref else None, "ratio_hi": cref.hi if cref else None,
                 "rounds": cref.rounds if cref else None, "ms": cref.time * 1e3 if cref else None,
                 "compile_s_cpu": compile_s.get("ref", (None, None))[0],
                 "compile_s_wall": compile_s.get("ref", (None, None))[1], "note": notes.get("ref", "")}
                if compile_ else None)
    return [r for r in rows if r is not None]


def table(rows):
    f = lambda a, b, c: (lambda r: H.fmt_ratio(r.get(a), r.get(b), r.get(c)))
    ok = lambda r: "" if r.get("meets_target") is None else ("yes" if r["meets_target"] else "NO")
    return H.markdown(rows, [("loss", "loss"), ("N, d, C", lambda r: f"{r['N']}, {r['d']}, {r['C']}"),
                             ("ms", lambda r: "—" if r.get("ms") is None else f"{r['ms']:.3f}"),
                             ("ratio [95% CI]", f("ratio_median", "ratio_lo", "ratio_hi")),
                             ("target", lambda r: "" if r.get("target") is None else f"≤ {r['target']}"), ("ok", ok),
                             ("compiled ratio", f("compiled_ratio", "compiled_lo", "compiled_hi")),
                             ("compile s (wall)", lambda r: "" if r.get("compile_s_wall") is None else f"{r['compile_s_wall']:.1f}"),
                             ("pytorch-metric-learning ratio", lambda r: "—" if r.get("pml_ratio") is None else
                              f"{H.fmt_ratio(r['pml_ratio'], r['pml_lo'], r['pml_hi'])} ({r['pml_class']})"),
                             ("note", lambda r: r.get("note") or "")])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 rounds, small size only unless --sizes, no compile: a smoke test")
    ap.add_argument("--out", default=None, help="folder for losses.json / losses.csv (default benchmarks/results)")
    ap.add_argument("--rounds", type=int, default=None, help="timed rounds per size (default 30; 3 with --quick)")
    ap.add_argument("--max-time", type=float, default=None, help="wall seconds per size after which rounds stop (default 240)")
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                    help="add the torch.compile column (default on; off with --quick)")
    ap.add_argument("--compile-budget", type=float, default=900., help="wall seconds for all compilations together")
    ap.add_argument("--pml", action=argparse.BooleanOptionalAction, default=True,
                    help="include pytorch-metric-learning when installed")
    ap.add_argument("--losses", nargs="*", default=None, help=f"subset of {list(LOSS_NAMES)}")
    ap.add_argument("--sizes", nargs="*", default=None, help="sizes as N,d,C (default 256,128,7 4096,128,1000)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: one core; the results say how many)")
    a = ap.parse_args(argv)
    H.pin_threads(a.threads)
    names = list(a.losses) if a.losses else list(LOSS_NAMES)
    for n in names: H_check(n)
    sizes = [tuple(int(v) for v in s.split(",")) for s in a.sizes] if a.sizes else (SIZES[:1] if a.quick else SIZES)
    rounds = a.rounds or (3 if a.quick else 30)
    max_time = a.max_time if a.max_time is not None else (20. if a.quick else 240.)
    compile_ = (not a.quick) if a.compile is None else a.compile
    budget = [a.compile_budget]
    t0c, t0w = time.process_time(), time.perf_counter()
    rows = []
    for N, d, C in sizes:
        rows += bench_size(N, d, C, names, rounds, max_time, compile_, budget, a.pml)
    info = H.meta(argv=None if argv is None else [sys.argv[0], *argv],
                  reference=f"F.cross_entropy({S:g} * F.linear(F.normalize(x), F.normalize(W)), y), float32",
                  timing="process CPU time; R C R C ... interleaved rounds; ratio = median of paired ratios, "
                         "lo/hi = bootstrap 95% interval of the median",
                  compiled=compile_, pml_installed=bool(pml_losses(2, 2)),
                  total_cpu_s=round(time.process_time() - t0c, 1), total_wall_s=round(time.perf_counter() - t0w, 1))
    path = H.write_results("losses", rows, info, a.out)
    print(f"\n## benchmarks/losses.py — {info['date']}, {info['machine']['cpu']}, {info['machine']['threads']} thread(s), "
          f"torch {info['machine']['torch']}, commit {info['commit'][:12]}, load avg {info['machine'].get('load_avg_1min')}")
    print("forward+backward, ratio to normalised linear + CE (same run, CPU time, median of paired ratios [bootstrap 95% CI])\n")
    print(table(rows))
    print(f"\nwrote {path} and {path.with_suffix('.csv')} ({info['total_cpu_s']} CPU s, {info['total_wall_s']} wall s)")
    return 0


def H_check(n):
    from emosynth_nb.core import check_choice
    check_choice("loss", n, LOSS_NAMES)


if __name__ == "__main__":
    sys.exit(main())
