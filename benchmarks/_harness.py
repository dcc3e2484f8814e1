"""The one timing harness of the benchmarks: pinned threads, CPU time, interleaved candidates, paired ratios.

Why: on a shared machine the wall clock of one run says more about the neighbours than about the code. So every
benchmark here

1. pins the thread count (`pin_threads`: the `*_NUM_THREADS` variables, set by the scripts before torch is
   imported, and `torch.set_num_threads(1)`), so one process = one core and the count is the same in every run;
2. measures process CPU time (`time.process_time`, i.e. the time this process spent on a core; other processes
   on the machine barely change it) — on CUDA, wall time between `torch.cuda.synchronize()` calls instead;
3. interleaves every candidate with the reference in one loop (R A R B R C … R, the order shuffled each round),
   so slow drifts (frequency, cache pressure, a neighbour's burst) hit candidate and reference alike;
4. reports, per candidate, the *median of paired ratios* (candidate time ÷ the mean of the two reference
   timings either side of it, one ratio per round) with its spread: the interquartile range of the ratios and
   a bootstrap 95% interval of the median (`ratio_lo`, `ratio_hi`);
5. runs untimed warm-up rounds first and stops at a cap on total wall time (`max_time`), after `min_rounds`.

Absolute times are printed too, but only the ratios are meant to agree between runs and machines.

Use from a script (the thread variables must be set before torch is imported):

    import _harness as H            # sets OMP/MKL/OPENBLAS_NUM_THREADS=1 on import if unset
    import torch; H.pin_threads(1)
    res = H.compare({'ref': f, 'a': g}, reference='ref', rounds=20)
"""
import os
for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"): os.environ.setdefault(_v, "1")
import csv, datetime, json, math, platform, random, statistics, subprocess, sys, time
from dataclasses import dataclass, field, asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))  # run from a checkout without installing


# ---------------------------------------------------------------- threads, clocks
def pin_threads(n=1):
    "Use `n` torch threads (intra-op; inter-op too when still allowed). Returns the count in force."
    import torch
    for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"): os.environ[v] = str(n)
    torch.set_num_threads(n)
    try: torch.set_num_interop_threads(n)
    except RuntimeError: pass  # only settable before the first parallel work; harmless when it was already
    return torch.get_num_threads()


def make_clock(kind="cpu"):
    """A function returning seconds: 'cpu' = this process's CPU time (all its threads), 'cpu+children' = that plus
    the CPU time of finished (joined) child processes such as DataLoader workers, 'wall' = perf_counter,
    'cuda' = perf_counter after `torch.cuda.synchronize()` (so a timed call includes its queued kernels); a callable
    is used as the clock itself."""
    if callable(kind): return kind   # e.g. a fake clock in tests
    if kind == "cpu": return time.process_time
    if kind == "cpu+children":
        import resource
        def clock():
            c = resource.getrusage(resource.RUSAGE_CHILDREN)
            return time.process_time() + c.ru_utime + c.ru_stime
        return clock
    if kind == "wall": return time.perf_counter
    if kind == "cuda":
        import torch
        def clock():
            torch.cuda.synchronize(); return time.perf_counter()
        return clock
    from emosynth_nb.core import check_choice
    check_choice("clock", kind, ("cpu", "cpu+children", "wall", "cuda"))


# ---------------------------------------------------------------- statistics
def quantile(xs, q):
    "Linear-interpolated quantile `q` in [0, 1] of a non-empty sequence (numpy's default method)."
    s = sorted(xs)
    if not s: raise ValueError("quantile of an empty sequence")
    pos = q * (len(s) - 1); lo = math.floor(pos); hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def paired_ratios(cand, before, after=None):
    """One ratio per round: candidate time ÷ reference time of the same round. With `after`, the reference is the
    mean of the timings just before and just after the candidate (cancels a linear drift within the round)."""
    if after is None: after = before
    if not (len(cand) == len(before) == len(after)):
        raise ValueError(f"paired timings must have equal lengths; got {len(cand)}, {len(before)}, {len(after)}")
    return [c / ((b + a) / 2) for c, b, a in zip(cand, before, after)]


def bootstrap_median_ci(xs, level=0.95, n_boot=2000, seed=0):
    "Percentile-bootstrap interval of the median of `xs` (deterministic for a given seed). One value: (x, x)."
    xs = list(xs)
    if len(xs) < 2: return (xs[0], xs[0]) if xs else (float("nan"), float("nan"))
    rng = random.Random(seed); n = len(xs)
    meds = sorted(statistics.median(rng.choices(xs, k=n)) for _ in range(n_boot))
    a = (1 - level) / 2
    return quantile(meds, a), quantile(meds, 1 - a)


def summarise_ratios(ratios, level=0.95, seed=0):
    "Median of paired ratios with its spread: {'median', 'lo', 'hi' (bootstrap CI), 'q25', 'q75', 'n'}."
    lo, hi = bootstrap_median_ci(ratios, level, seed=seed)
    return {"median": statistics.median(ratios), "lo": lo, "hi": hi,
            "q25": quantile(ratios, 0.25), "q75": quantile(ratios, 0.75), "n": len(ratios)}


def agreement(a, b):
    "Relative difference of two runs' medians: |a - b| / mean(a, b) (0.1 = they differ by 10%)."
    return abs(a - b) / ((a + b) / 2)


# ---------------------------------------------------------------- the interleaved loop
@dataclass
class Result:
    "Timing of one candidate against the reference (times in seconds per call)."
    name: str
    ratio: float
    lo: float
    hi: float
    q25: float
    q75: float
    rounds: int
    time: float                      # median seconds per call of the candidate
    ref_time: float                  # median seconds per call of the reference
    ratios: list = field(default_factory=list, repr=False)


def calibrate(fn, clock, min_time):
    "Calls per timed sample so that one sample takes at least `min_time` s of the clock (1 when a call already does)."
    t = clock(); fn(); dt = clock() - t
    number = 1
    while dt * number < min_time and number < 10_000:
        number *= 2
    return number


def _timed(fn, number, clock):
    t = clock()
    for _ in range(number): fn()
    return (clock() - t) / number


def compare(candidates, reference, rounds=20, warmup=2, min_rounds=3, max_time=None, clock="cpu",
            min_time=0.02, number=None, seed=0, setup=None):
    """Time every callable of `candidates` (a dict name → zero-argument callable) against `candidates[reference]`.

    Each round runs R C₁ R C₂ … R Cₖ R (candidate order shuffled per round with `seed`), each entry `number`
    calls (calibrated per callable so one sample ≥ `min_time` s unless given). `warmup` untimed rounds first; then
    up to `rounds` timed rounds, stopping early once `max_time` wall seconds have passed and at least `min_rounds`
    rounds are done. `setup`, if given, is called before every timed sample (e.g. to zero gradients), untimed.
    Returns {name: Result} for every candidate but the reference, in the order given."""
    from emosynth_nb.core import check_choice
    check_choice("reference", reference, candidates)
    clk = make_clock(clock)
    others = [k for k in candidates if k != reference]
    if not others: raise ValueError("compare needs at least one candidate besides the reference")
    setup = setup or (lambda: None)

    def run(k, n):
        setup()
        return _timed(candidates[k], n, clk)

    for _ in range(max(warmup, 0)):
        for k in [reference] + others: setup(); candidates[k]()
    if number is None:
        numbers = {}
        for k in [reference] + others:
            setup(); numbers[k] = calibrate(candidates[k], clk, min_time)
    else:
        numbers = {k: number for k in candidates}
    rng = random.Random(seed)
    t_cand = {k: [] for k in others}; t_before = {k: [] for k in others}; t_after = {k: [] for k in others}
    t_ref = []
    start = time.perf_counter(); done = 0
    while done < rounds:
        order = others[:]; rng.shuffle(order)
        prev = run(reference, numbers[reference]); t_ref.append(prev)
        for k in order:
            t_cand[k].append(run(k, numbers[k]))
            nxt = run(reference, numbers[reference]); t_ref.append(nxt)
            t_before[k].append(prev); t_after[k].append(nxt); prev = nxt
        done += 1
        if max_time is not None and done >= min_rounds and time.perf_counter() - start > max_time: break
    ref_med = statistics.median(t_ref)
    out = {}
    for k in others:
        r = paired_ratios(t_cand[k], t_before[k], t_after[k]); s = summarise_ratios(r, seed=seed)
        out[k] = Result(k, s["median"], s["lo"], s["hi"], s["q25"], s["q75"], done,
                        statistics.median(t_cand[k]), ref_med, r)
    return out


def time_once(fn, clock="cpu"):
    "(CPU-or-clock seconds, wall seconds, result) of one call — for one-off costs such as compilation."
    clk = make_clock(clock); c, w = clk(), time.perf_counter()
    out = fn()
    return clk() - c, time.perf_counter() - w, out


# ---------------------------------------------------------------- provenance and output
def git_commit():
    "The checkout's commit (+ '-dirty' when tracked files are modified), or 'unknown' outside git."
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return (sha + ("-dirty" if dirty else "")) if sha else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def cpu_model():
    "The CPU's model name (from /proc/cpuinfo on Linux), else platform's best guess."
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"): return line.split(":", 1)[1].strip()
    except OSError: pass
    return platform.processor() or platform.machine()


def machine_info():
    "CPU model, cores, torch/python versions, threads, load average, and the GPU when there is one."
    import torch
    info = {"cpu": cpu_model(), "cores": os.cpu_count(),
            "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
            "platform": platform.platform()}
    try: info["load_avg_1min"] = round(os.getloadavg()[0], 2)
    except OSError: pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(); info["cuda"] = torch.version.cuda
    return info


def machine_line():
    "`machine_info` as one line, for tables and page captions."
    m = machine_info()
    gpu = f", {m['gpu']}" if 'gpu' in m else ''
    return f"{m['cpu']}, {m['cores']} CPU cores{gpu}, torch {m['torch']}, {m['threads']} torch thread(s)"


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(argv=None, **extra):
    "The provenance block every result file starts with: command, commit, date (UTC), machine, extras."
    argv = sys.argv if argv is None else argv
    cmd = "python " + " ".join([os.path.relpath(argv[0], ROOT) if argv and os.path.exists(argv[0]) else (argv[0] if argv else "")] + list(argv[1:]))
    return {"command": cmd.strip(), "commit": git_commit(), "date": utc_now(), "machine": machine_info(), **extra}


def write_results(stem, rows, info, out=None):
    """Write `info` + `rows` (a list of flat dicts) to `<out or results/>/<stem>.json` and the rows to `.csv`
    (commented provenance lines first). Returns the JSON path."""
    d = Path(out) if out else RESULTS
    d.mkdir(parents=True, exist_ok=True)
    pj, pc = d / f"{stem}.json", d / f"{stem}.csv"
    pj.write_text(json.dumps({**info, "rows": rows}, indent=1, default=_jsonable) + "\n")
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(pc, "w", newline="") as f:
        for k in ("command", "commit", "date"): f.write(f"# {k}: {info.get(k, '')}\n")
        f.write(f"# machine: {json.dumps(info.get('machine', {}))}\n")
        w = csv.DictWriter(f, keys); w.writeheader()
        for r in rows: w.writerow({k: _csv(r.get(k)) for k in keys})
    return pj


def _jsonable(x):
    if isinstance(x, float) and not math.isfinite(x): return None
    if hasattr(x, "item"): return x.item()
    return str(x)


def _csv(v):
    if v is None: return ""
    if isinstance(v, float): return f"{v:.6g}"
    return v


def fmt_ratio(r, lo=None, hi=None):
    "'1.23 [1.20–1.27]' (— for None)."
    if r is None or (isinstance(r, float) and math.isnan(r)): return "—"
    return f"{r:.2f}" + (f" [{lo:.2f}–{hi:.2f}]" if lo is not None and hi is not None else "")


def markdown(rows, cols):
    "A markdown table of `rows` (dicts) with `cols` = [(header, key or function of the row)]."
    head = "| " + " | ".join(h for h, _ in cols) + " |\n|" + "---|" * len(cols)
    body = ["| " + " | ".join(str(k(r) if callable(k) else r.get(k, "")) for _, k in cols) + " |" for r in rows]
    return "\n".join([head] + body)
