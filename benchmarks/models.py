"""Training-step speed of EmoSynthNet as a ratio to torchvision's ResNet-18 timed in the same run.

    nice -n 10 python benchmarks/models.py       # CPU, 1 thread: batch 64, 48×48 gray, channels-last, float32
    python benchmarks/models.py --quick          # tiny EmoSynthNet only, batch 16, 3 rounds (a smoke test)
    python benchmarks/models.py --device cuda    # GPU: 32×32 RGB, batch 256, bf16 autocast, wall time + synchronize

One training step = forward + backward + AdamW step (EmoSynthNet: main CE + 0.3 × auxiliary CE, as in training).
Its multiply-accumulates are counted once by `torch.utils.flop_counter` over forward AND backward (MACs = FLOPs
/ 2; the optimiser's element-wise update is not counted). Timing uses `_harness.py`: one thread, process CPU
time, every model interleaved with the reference (ResNet-18 with an `--in-chans` stem) in one loop, ratios
paired per round. Reported per model: step-time ratio (model ÷ ResNet-18) and MAC/s ratio (model's achieved
MAC/s ÷ ResNet-18's) as medians of paired ratios with a bootstrap 95 % interval. Target: the full EmoSynthNet's
MAC/s ≥ 0.8 × ResNet-18's. Writes `benchmarks/results/models.json` and `.csv`.
"""
import os, sys
for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"): os.environ.setdefault(_v, "1")
import argparse, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as H
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode
from emosynth_nb.models import emosynthnet, emosynthnet_tiny, create_baseline, count_params

TARGET = 0.8  # EmoSynthNet MAC/s ÷ ResNet-18 MAC/s
REF = "resnet18"


def loss_of(out, y):
    "CE of the main logits (+ 0.3 × CE of the auxiliary logits when the model returns them)."
    if isinstance(out, tuple):
        return F.cross_entropy(out[0].float(), y) + (0.3 * F.cross_entropy(out[1].float(), y) if out[1] is not None else 0)
    return F.cross_entropy(out.float(), y)


def make_step(model, x, y, device, amp, compile_):
    "A closure running one training step (channels-last model on `device`, AdamW, bf16 autocast when `amp`)."
    model = model.to(device).to(memory_format=torch.channels_last).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=device.type == "cuda")
    fwd = torch.compile(model) if compile_ else model
    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out = fwd(x)
        loss = loss_of(out, y)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    return step


def train_macs(model, x, y):
    "MACs of one forward + backward pass (FlopCounterMode, FLOPs / 2), eager, float32, on CPU."
    model.train()
    with FlopCounterMode(display=False) as fc: loss_of(model(x), y).backward()
    model.zero_grad(set_to_none=True)
    return fc.get_total_flops() / 2


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--batch", type=int, default=None, help="batch size (default 64 on CPU, 16 with --quick, 256 on CUDA)")
    p.add_argument("--size", type=int, default=None, help="image side (default 48 on CPU, 32 on CUDA)")
    p.add_argument("--in-chans", type=int, default=None, help="input channels (default 1 on CPU, 3 on CUDA)")
    p.add_argument("--classes", type=int, default=None, help="classes (default 7 on CPU, 10 on CUDA)")
    p.add_argument("--rounds", type=int, default=None, help="timed rounds (default 12; 3 with --quick; 30 on CUDA)")
    p.add_argument("--max-time", type=float, default=None, help="wall seconds after which rounds stop (default 300)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the models (default: on for CUDA, off for CPU)")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast (default: on for CUDA, off for CPU)")
    p.add_argument("--quick", action="store_true", help="tiny EmoSynthNet only, small batch, 3 rounds")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (1: one core, steady on a loaded machine)")
    p.add_argument("--out", default=None, help="folder for models.json / models.csv (default benchmarks/results)")
    a = p.parse_args(argv)
    cuda = a.device == "cuda"
    if cuda and not torch.cuda.is_available():
        sys.exit("--device cuda was asked for but CUDA is not available here; use --device cpu")
    device = torch.device(a.device)
    H.pin_threads(a.threads)
    batch = a.batch or (256 if cuda else (16 if a.quick else 64)); size = a.size or (32 if cuda else 48)
    chans = a.in_chans or (3 if cuda else 1); classes = a.classes or (10 if cuda else 7)
    rounds = a.rounds or (30 if cuda else (3 if a.quick else 12))
    max_time = a.max_time if a.max_time is not None else (30. if a.quick else 300.)
    compile_ = cuda if a.compile is None else a.compile; amp = cuda if a.amp is None else a.amp
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True; torch.backends.cudnn.allow_tf32 = True

    torch.manual_seed(0)
    builders = {REF: lambda: create_baseline("resnet18", classes, chans),
                "emosynthnet_tiny": lambda: emosynthnet_tiny(classes, chans)}
    if not a.quick: builders["emosynthnet"] = lambda: emosynthnet(classes, chans)
    x_cpu = torch.randn(batch, chans, size, size); y_cpu = torch.randint(0, classes, (batch,))
    macs, steps, params = {}, {}, {}
    x = x_cpu.to(device).contiguous(memory_format=torch.channels_last); y = y_cpu.to(device)
    for name, build in builders.items():
        m = build()
        params[name] = count_params(m)
        macs[name] = train_macs(m, x_cpu[:2], y_cpu[:2]) * batch / 2  # counted on 2 images, scaled to the batch
        steps[name] = make_step(m, x, y, device, amp, compile_)
    t0c, t0w = time.process_time(), time.perf_counter()
    res = H.compare(steps, REF, rounds=rounds, warmup=2 if compile_ else 1, min_rounds=3, max_time=max_time,
                    clock="cuda" if cuda else "cpu", min_time=0.0 if not cuda else 0.05)
    rows = [{"model": REF, "params_M": params[REF] / 1e6, "gmac_per_step": macs[REF] / 1e9,
             "ms_per_step": res[next(iter(res))].ref_time * 1e3, "images_per_s": batch / res[next(iter(res))].ref_time,
             "gmac_per_s": macs[REF] / res[next(iter(res))].ref_time / 1e9,
             "time_ratio": 1.0, "time_lo": 1.0, "time_hi": 1.0, "macs_ratio": 1.0, "macs_lo": 1.0, "macs_hi": 1.0,
             "rounds": res[next(iter(res))].rounds, "target": None, "meets_target": None}]
    for name, r in res.items():
        k = macs[name] / macs[REF]
        s = H.summarise_ratios([k / q for q in r.ratios])  # per-round MAC/s ratio = MAC ratio ÷ time ratio
        tgt = TARGET if name == "emosynthnet" else None
        rows.append({"model": name, "params_M": params[name] / 1e6, "gmac_per_step": macs[name] / 1e9,
                     "ms_per_step": r.time * 1e3, "images_per_s": batch / r.time, "gmac_per_s": macs[name] / r.time / 1e9,
                     "time_ratio": r.ratio, "time_lo": r.lo, "time_hi": r.hi,
                     "macs_ratio": s["median"], "macs_lo": s["lo"], "macs_hi": s["hi"], "rounds": r.rounds,
                     "target": tgt, "meets_target": None if tgt is None else bool(s["median"] >= tgt)})
    setting = (f"batch {batch}, {size}×{size}×{chans}, {classes} classes, channels-last, "
               f"{'bf16 autocast' if amp else 'float32'}, torch.compile {'on' if compile_ else 'off'}, AdamW")
    info = H.meta(argv=None if argv is None else [sys.argv[0], *argv], device=a.device, setting=setting,
                  timing=("wall time between cuda synchronize" if cuda else "process CPU time") +
                         "; models interleaved with ResNet-18 each round; medians of paired ratios, bootstrap 95% CI",
                  total_cpu_s=round(time.process_time() - t0c, 1), total_wall_s=round(time.perf_counter() - t0w, 1))
    path = H.write_results("models", rows, info, a.out)
    m = info["machine"]
    print(f"## benchmarks/models.py — {info['date']}, {a.device} ({m.get('gpu', m['cpu'])}), {m['threads']} thread(s), "
          f"torch {m['torch']}, commit {info['commit'][:12]}, load avg {m.get('load_avg_1min')}")
    print(setting + f"; {rows[0]['rounds']} interleaved rounds\n")
    print(H.markdown(rows, [("model", "model"), ("params", lambda r: f"{r['params_M']:.3f} M"),
                            ("GMAC/step (fwd+bwd)", lambda r: f"{r['gmac_per_step']:.2f}"),
                            ("ms/step", lambda r: f"{r['ms_per_step']:.1f}"), ("images/s", lambda r: f"{r['images_per_s']:.0f}"),
                            ("GMAC/s", lambda r: f"{r['gmac_per_s']:.1f}"),
                            ("step time ÷ ref [95% CI]", lambda r: H.fmt_ratio(r["time_ratio"], r["time_lo"], r["time_hi"])),
                            ("MAC/s ÷ ref [95% CI]", lambda r: H.fmt_ratio(r["macs_ratio"], r["macs_lo"], r["macs_hi"])),
                            (f"ok (MAC/s ≥ {TARGET}× ref)", lambda r: "—" if r["meets_target"] is None else ("yes" if r["meets_target"] else "NO"))]))
    print("\nThe MAC/s target applies to the full EmoSynthNet; the tiny variant is memory-bound by design (few channels).")
    print(f"wrote {path} and {path.with_suffix('.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
