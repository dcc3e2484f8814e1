"""The GPU check in one command: the `#| gpu` notebook cells, EmoSynthNet training throughput, a short training run.

    python benchmarks/gpu.py                 # on a CUDA machine: everything, within --budget (480 s) on one GPU
    python benchmarks/gpu.py --tiny          # on CPU: tiny model, few steps, same code path (tests run this)
    python benchmarks/gpu.py --skip-notebooks --out /tmp/gpu

Three parts, in this order (the bounded ones first, so the notebooks get whatever time is left):
1. **throughput** — images/s of one training step (forward, CE, backward, fused AdamW) of the full-size
   `emosynthnet` at 32×32×3 and 48×48×1 (batch 256), for fp32 vs bf16 autocast × channels-last off/on, eager,
   plus `torch.compile` of the bf16 + channels-last and fp32 + channels-last steps (`--full-grid`: compile every
   combination). Timed with `_harness.py` (wall time between `torch.cuda.synchronize()`, configurations
   interleaved round by round, ratios paired against fp32 / contiguous / eager at the same input, with a bootstrap
   95 % interval). Compile time is measured separately and excluded.
2. **training** — a short full-size run of `emosynth_nb.train.fit` on SynthFER (synthetic faces, 48×48 gray):
   `emosynthnet`, CE, bf16 autocast, channels-last; prints train and validation accuracy beside its speed.
3. **notebooks** — `nbdev_test --flags gpu --path <nb>` for every notebook in `nbs/` with a `#| gpu` cell, each
   with a timeout from the time left (`--notebook-timeout` caps it).
Writes one JSON (`benchmarks/results/gpu.json`; `gpu_tiny.json` with `--tiny`) with command, commit, date,
device and every part's status ('ok', 'failed', 'skipped', 'timeout') with the reason when not 'ok'.

`--tiny` runs parts 1–2 on the CPU (or CUDA when present) with `emosynthnet_tiny`, batch 8 and a handful of
steps, bf16 autocast where the CPU supports it, `torch.compile` with the 'eager' backend (dynamo traces the step;
no C++ code generation, which would take minutes), and records part 3 as skipped ("needs CUDA") after listing
the notebooks it would run. Well under a minute on one core.
"""
import os, sys
for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"): os.environ.setdefault(_v, "1")
import argparse, json, re, shutil, subprocess, time, traceback
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as H
import torch
import torch.nn as nn
import torch.nn.functional as F

INPUTS = [(32, 3), (48, 1)]   # (side, channels): CIFAR-like RGB and FER-like gray


class MainPath(nn.Module):
    "The model's main path as one module, for timing and compiling: logits = forward_head(forward_features(x))."
    def __init__(self, model):
        super().__init__(); self.model = model
    def forward(self, x):
        f = self.model.forward_features(x)
        if isinstance(f, tuple): f = f[0]   # an older API returning (feats, aux)
        return self.model.forward_head(f)


def gpu_notebooks(nbs=H.ROOT / "nbs"):
    "Notebooks (paths relative to the repository root) with at least one cell whose first directive is `#| gpu`."
    pat = re.compile(r"^\s*#\|\s*gpu\b", re.M)
    out = []
    for p in sorted(Path(nbs).glob("*.ipynb")):
        try: cells = json.loads(p.read_text())["cells"]
        except (OSError, ValueError, KeyError): continue
        if any(c.get("cell_type") == "code" and pat.search("".join(c.get("source", ""))) for c in cells):
            out.append(str(p.relative_to(H.ROOT)))
    return out


def bf16_ok(device):
    "Whether bf16 autocast works for a conv + matmul on `device` (recorded as the reason when it does not)."
    try:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            x = torch.randn(2, 3, 8, 8, device=device)
            F.conv2d(x, torch.randn(4, 3, 3, 3, device=device)).sum().item()
        return True, ""
    except Exception as e:
        return False, f"bf16 autocast unavailable on {device.type}: {type(e).__name__}: {e}"


def make_step(build, side, chans, n_classes, batch, device, bf16, channels_last, compiled, backend=None):
    "(step closure, compile seconds or None): one training step of a fresh model on a fixed random batch."
    torch.manual_seed(0)
    model = build(n_classes, chans).to(device).train()
    x = torch.randn(batch, chans, side, side, device=device); y = torch.randint(0, n_classes, (batch,), device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last); x = x.contiguous(memory_format=torch.channels_last)
    path = MainPath(model)
    fwd = torch.compile(path, backend=backend) if compiled else path
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=device.type == "cuda")
    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = fwd(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    comp = None
    if compiled:   # first call compiles: timed apart from the throughput
        clock = "cuda" if device.type == "cuda" else "wall"
        _, comp, _ = H.time_once(step, clock); step()
    return step, comp


def throughput(a, device, deadline, log):
    "Part 1: rows of images/s and paired ratios per configuration; skipped configurations with their reasons."
    from emosynth_nb.models import emosynthnet, emosynthnet_tiny
    build = emosynthnet_tiny if a.tiny else emosynthnet
    cuda = device.type == "cuda"
    batch = a.batch or (8 if a.tiny else 256)
    backend = "eager" if a.tiny and not cuda else None   # CPU inductor would compile C++ for minutes
    bf16, why_bf16 = bf16_ok(device)
    rows, skipped = [], []
    inputs = [(16, 3), (16, 1)] if a.tiny else INPUTS
    for side, chans in inputs:
        if time.perf_counter() > deadline:
            skipped.append({"input": f"{side}x{side}x{chans}", "reason": "budget spent"}); continue
        configs = [(d, cl, False) for d in (False, True) for cl in (False, True)]
        configs += ([(d, cl, True) for d in (False, True) for cl in (False, True)] if a.full_grid else
                    [(False, True, True), (True, True, True)])
        steps, meta = {}, {}
        for bf, cl, comp in configs:
            key = f"{'bf16' if bf else 'fp32'}|{'channels_last' if cl else 'contiguous'}|{'compiled' if comp else 'eager'}"
            if bf and not bf16:
                skipped.append({"input": f"{side}x{side}x{chans}", "config": key, "reason": why_bf16}); continue
            if comp and (not a.compile or time.perf_counter() > deadline - 60):
                skipped.append({"input": f"{side}x{side}x{chans}", "config": key,
                                "reason": "--no-compile" if not a.compile else "under 60 s of budget left"}); continue
            try:
                steps[key], c = make_step(build, side, chans, 10, batch, device, bf, cl, comp, backend)
                meta[key] = dict(dtype="bf16" if bf else "fp32", channels_last=cl, compiled=comp, compile_s=c,
                                 compile_backend=(backend or "inductor") if comp else None)
            except Exception as e:
                skipped.append({"input": f"{side}x{side}x{chans}", "config": key,
                                "reason": f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"})
        ref = "fp32|contiguous|eager"
        if ref not in steps or len(steps) < 2:
            skipped.append({"input": f"{side}x{side}x{chans}", "reason": "reference or every candidate failed"}); continue
        log(f"  throughput {side}x{side}x{chans}: {len(steps)} configurations")
        left = max(deadline - time.perf_counter(), 5.0)
        res = H.compare(steps, ref, rounds=a.rounds or (3 if a.tiny else 20), warmup=1 if a.tiny else 3, min_rounds=2,
                        max_time=min(left / 2, 20 if a.tiny else 90), clock="cuda" if cuda else "cpu",
                        min_time=0.0 if a.tiny else 0.05)
        ref_t = next(iter(res.values())).ref_time
        rows.append({"input": f"{side}x{side}x{chans}", "batch": batch, **dict(dtype="fp32", channels_last=False, compiled=False,
                     compile_s=None, compile_backend=None), "images_per_s": batch / ref_t, "ms_per_step": ref_t * 1e3,
                     "speedup": 1.0, "speedup_lo": 1.0, "speedup_hi": 1.0, "rounds": next(iter(res.values())).rounds})
        for k, r in res.items():
            s = H.summarise_ratios([1 / q for q in r.ratios])   # speed-up = reference time ÷ this time, per round
            rows.append({"input": f"{side}x{side}x{chans}", "batch": batch, **meta[k], "images_per_s": batch / r.time,
                         "ms_per_step": r.time * 1e3, "speedup": s["median"], "speedup_lo": s["lo"],
                         "speedup_hi": s["hi"], "rounds": r.rounds})
        del steps
        if cuda: torch.cuda.empty_cache()
    return rows, skipped


def training(a, device, log):
    "Part 2: a short `fit` of the full-size model on SynthFER (synthetic), with train and validation accuracy."
    from emosynth_nb.data import SynthFER
    from emosynth_nb.losses import make_loss
    from emosynth_nb.models import emosynthnet, emosynthnet_tiny
    from emosynth_nb.train import fit
    cuda = device.type == "cuda"
    n_train, n_val = (64, 32) if a.tiny else (a.train_n, a.train_n // 5)
    epochs = 1 if a.tiny else a.epochs
    batch = 16 if a.tiny else 256
    amp = ("bf16" if bf16_ok(device)[0] else "off") if (cuda or a.tiny) else "off"
    torch.manual_seed(0)
    model = (emosynthnet_tiny if a.tiny else emosynthnet)(n_classes=7, in_chans=1)
    loss = make_loss(a.loss_name, model.embed_dim, 7)
    t0 = time.perf_counter()
    train, val = SynthFER(n_train, seed=0), SynthFER(n_val, seed=1, identity_seed=1)
    t_data = time.perf_counter() - t0
    log(f"  training: {'emosynthnet_tiny' if a.tiny else 'emosynthnet'}, SynthFER {n_train}/{n_val}, {epochs} epoch(s), amp={amp}")
    t0 = time.perf_counter()
    r = fit(model, loss, train, val, epochs=epochs, batch_size=batch, lr=2e-3, device=str(device), amp=amp,
            channels_last=True, compile=False, progress=False)
    wall = time.perf_counter() - t0
    last = r.history[-1] if r.history else {}
    out = {"model": "emosynthnet_tiny" if a.tiny else "emosynthnet", "loss_name": a.loss_name,
           "data": f"SynthFER (synthetic) 48x48 gray, {n_train} train / {n_val} validation (other identities)",
           "epochs": epochs, "batch_size": batch, "amp": amp, "channels_last": True, "compile": False,
           "data_s": t_data, "fit_s": wall, "train_acc": last.get("train_acc"), "val_acc": last.get("val_acc"),
           "chance": 1 / 7, "images_per_s_last_epoch": last.get("images_per_s"),
           "history": [{k: v for k, v in h.items() if isinstance(v, (int, float))} for h in r.history]}
    rep = getattr(r, "report", None)   # the train helper's ConvergenceReport, when this checkout has it
    if rep is not None:
        out["report"] = {k: getattr(rep, k) for k in ("train_acc", "test_acc", "chance", "collapsed", "near_chance", "warnings")
                         if hasattr(rep, k)}
    return out


def notebooks(a, deadline, log):
    "Part 3: `nbdev_test --flags gpu --path nb` per notebook with `#| gpu` cells, each within the time left."
    found = gpu_notebooks()
    res = []
    exe = shutil.which("nbdev_test") or str(Path(sys.executable).parent / "nbdev_test")
    for i, nb in enumerate(found):
        left = deadline - time.perf_counter()
        if left < 20:
            res.append({"notebook": nb, "status": "skipped", "reason": "budget spent"}); continue
        timeout = min(left / (len(found) - i), a.notebook_timeout)   # share what is left fairly
        log(f"  nbdev_test --flags gpu --path {nb} (timeout {timeout:.0f} s)")
        t0 = time.perf_counter()
        try:
            p = subprocess.run([exe, "--flags", "gpu", "--path", nb], cwd=H.ROOT, capture_output=True, text=True,
                               timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
            res.append({"notebook": nb, "status": "ok" if p.returncode == 0 else "failed", "rc": p.returncode,
                        "seconds": time.perf_counter() - t0, "output_tail": (p.stdout + p.stderr)[-3000:]})
        except subprocess.TimeoutExpired as e:
            tail = ((e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or ""))[-3000:]
            res.append({"notebook": nb, "status": "timeout", "seconds": time.perf_counter() - t0,
                        "reason": f"over {timeout:.0f} s", "output_tail": tail})
        except OSError as e:
            res.append({"notebook": nb, "status": "failed", "reason": f"could not run nbdev_test: {e}"})
    return found, res


def device_info(device):
    d = {"type": device.type}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        d.update(name=p.name, capability=f"{p.major}.{p.minor}", memory_gib=round(p.total_memory / 2**30, 1),
                 cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(), count=torch.cuda.device_count())
    else:
        d.update(name=H.cpu_model(), threads=torch.get_num_threads())
    return d


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="CPU-sized: tiny model, few steps; notebooks skipped without CUDA")
    ap.add_argument("--device", default=None, help="'cuda' or 'cpu' (default: cuda when available)")
    ap.add_argument("--budget", type=float, default=480., help="wall seconds for the whole check (default 480 = 8 min)")
    ap.add_argument("--batch", type=int, default=None, help="throughput batch (default 256; 8 with --tiny)")
    ap.add_argument("--rounds", type=int, default=None, help="throughput rounds (default 20; 3 with --tiny)")
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True, help="include compiled steps")
    ap.add_argument("--full-grid", action="store_true", help="compile every dtype × memory-format combination")
    ap.add_argument("--train-n", type=int, default=10_000, help="SynthFER training images of the short run")
    ap.add_argument("--epochs", type=int, default=6, help="epochs of the short run")
    ap.add_argument("--loss-name", default="ce", help="loss of the short run (a name of LOSS_NAMES)")
    ap.add_argument("--skip-notebooks", action="store_true")
    ap.add_argument("--notebook-timeout", type=float, default=300., help="max seconds per notebook")
    ap.add_argument("--out", default=None, help="folder for gpu.json (default benchmarks/results)")
    a = ap.parse_args(argv)
    from emosynth_nb.core import check_choice
    from emosynth_nb.losses import LOSS_NAMES
    check_choice("--loss-name", a.loss_name, LOSS_NAMES)
    if a.device is not None: check_choice("--device", a.device, ("cuda", "cpu"))
    if a.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda was asked for but CUDA is not available here; use --tiny (CPU) or --device cpu")
    device = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cpu" and not a.tiny:
        sys.exit("the full GPU check needs CUDA (none here); run `python benchmarks/gpu.py --tiny` on a CPU")
    if device.type == "cpu": H.pin_threads(1)
    else:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True; torch.backends.cudnn.allow_tf32 = True
    import logging, warnings
    warnings.filterwarnings("ignore", message=".*TF32.*")
    logging.getLogger("torch._dynamo").setLevel(logging.ERROR)
    log = lambda s: print(s, flush=True)
    t_start = time.perf_counter(); deadline = t_start + a.budget
    parts = {}

    def run_part(name, fn):
        t0 = time.perf_counter()
        try:
            parts[name] = {"status": "ok", **fn()}
        except Exception as e:
            parts[name] = {"status": "failed", "reason": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-3000:]}
        parts[name]["seconds"] = time.perf_counter() - t0

    log(f"benchmarks/gpu.py on {device} ({'tiny' if a.tiny else 'full'}), budget {a.budget:.0f} s")
    run_part("throughput", lambda: dict(zip(("rows", "skipped"), throughput(a, device, t_start + 0.5 * a.budget, log))))
    run_part("training", lambda: training(a, device, log))
    if a.skip_notebooks:
        parts["notebooks"] = {"status": "skipped", "reason": "--skip-notebooks", "found": gpu_notebooks()}
    elif device.type != "cuda":
        parts["notebooks"] = {"status": "skipped", "reason": "needs CUDA (the #| gpu cells ask for device='cuda')",
                              "found": gpu_notebooks()}
    else:
        def nb_part():
            found, res = notebooks(a, deadline, log)
            bad = [r for r in res if r["status"] != "ok"]
            return {"found": found, "results": res, **({"status": "failed", "reason": f"{len(bad)} of {len(res)} not ok"} if bad else {})}
        run_part("notebooks", nb_part)
    total = time.perf_counter() - t_start
    info = H.meta(argv=None if argv is None else [sys.argv[0], *argv], mode="tiny" if a.tiny else "full",
                  device=device_info(device), budget_s=a.budget, total_wall_s=total, within_budget=bool(total <= a.budget),
                  timing=("wall time between cuda synchronize" if device.type == "cuda" else "process CPU time, 1 thread") +
                         "; configurations interleaved per round; speed-up = median of paired ratios vs fp32/contiguous/eager, bootstrap 95% CI",
                  parts=parts)
    d = Path(a.out) if a.out else H.RESULTS
    d.mkdir(parents=True, exist_ok=True)
    path = d / ("gpu_tiny.json" if a.tiny else "gpu.json")
    path.write_text(json.dumps(info, indent=1, default=H._jsonable) + "\n")

    tp = parts["throughput"]
    if tp.get("rows"):
        print("\n### Training-step throughput (" + ("tiny model" if a.tiny else "emosynthnet") + ")\n")
        print(H.markdown(tp["rows"], [("input", "input"), ("batch", "batch"), ("dtype", "dtype"),
                                      ("channels-last", lambda r: "on" if r["channels_last"] else "off"),
                                      ("compiled", lambda r: f"yes ({r['compile_backend']} backend)" if r["compiled"] else "no"),
                                      ("images/s", lambda r: f"{r['images_per_s']:,.0f}"),
                                      ("speed-up [95% CI]", lambda r: H.fmt_ratio(r["speedup"], r["speedup_lo"], r["speedup_hi"])),
                                      ("compile s", lambda r: "" if r["compile_s"] is None else f"{r['compile_s']:.1f}")]))
    for s in tp.get("skipped", []): print(f"skipped {s.get('input')} {s.get('config', '')}: {s['reason']}")
    tr = parts["training"]
    if tr["status"] == "ok":
        print(f"\n### Short training run: {tr['model']}, {tr['loss_name']}, {tr['data']}, {tr['epochs']} epoch(s), amp={tr['amp']}")
        print(f"train acc {tr['train_acc']:.3f}, validation acc {tr['val_acc']:.3f} (chance {tr['chance']:.3f}), "
              f"fit {tr['fit_s']:.1f} s, last epoch {tr['images_per_s_last_epoch'] or 0:,.0f} images/s"
              + (" — tiny mode: a smoke test of the code path, its accuracy means nothing" if a.tiny else ""))
    for k, p in parts.items():
        if p["status"] != "ok": print(f"{k}: {p['status']} — {p.get('reason', '')}")
    print(f"\nwrote {path} ({total:.1f} s wall of a {a.budget:.0f} s budget)")
    return 0 if all(p["status"] in ("ok", "skipped") for p in parts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
