"""Data benchmarks: SynthFER generation speed on one CPU core, and parsing a full-size FER2013 CSV.

    flock /tmp/bench.lock python benchmarks/data.py [--quick]

Times are CPU seconds of this single-threaded process (time.process_time), i.e. time on one core, so a busy
machine slows the wall clock but barely these numbers. Prints a table with ratios against references measured
in the same run:
- SynthFER 48x48 gray images/s (target >= 2,000/s on one core) vs decoding the same images from PNG with PIL;
- FER2013 CSV with 35,887 rows (written to a temp dir) parsed by `read_fer_csv` (target <= 5 s) vs
  torchvision.datasets.FER2013 on a 10% slice of the same file (rows/s).
"""
import os, sys
for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"): os.environ[v] = "1"
import io, platform, tempfile, time
from datetime import datetime, timezone
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from unittest import mock
import numpy as np
import torch
from PIL import Image

torch.set_num_threads(1)
from emosynth_nb.data.synth import SynthFER
from emosynth_nb.data.fer import read_fer_csv, FER2013


def best(fn, reps=3):
    "Best CPU time of `reps` runs (s; this process, single-threaded, so = time on one core) and the last result."
    ts = []
    for _ in range(reps):
        t = time.process_time(); out = fn(); ts.append(time.process_time() - t)
    return min(ts), out


def bench_synth(n):
    t_synth, imgs = best(lambda: SynthFER(n, seed=1, cache=False).images())
    t_item, _ = best(lambda: (lambda ds: [ds[i] for i in range(n)])(SynthFER(n, seed=2)))   # per-item access (chunked cache)
    t_rgb, _ = best(lambda: SynthFER(n // 4, seed=3, size=100, rgb=True, cache=False).images(), reps=1)
    pngs = []
    for im in imgs:
        b = io.BytesIO(); Image.fromarray(im[0], "L").save(b, "PNG"); pngs.append(b.getvalue())
    t_png, _ = best(lambda: [np.asarray(Image.open(io.BytesIO(p)).convert("L")) for p in pngs])
    return [("SynthFER 48x48 gray, images() (img/s)", n / t_synth, n / t_png, ">= 2,000"),
            ("SynthFER 48x48 gray, ds[i] -> tensor (img/s)", n / t_item, n / t_png, ""),
            ("SynthFER 100x100 RGB, images() (img/s)", (n // 4) / t_rgb, n / t_png, ""),
            ("reference: PIL decode of the same 48x48 PNGs (img/s)", n / t_png, n / t_png, "")]


def write_csv(path, rows):
    rng = np.random.default_rng(0)
    usage = ["Training"] * 28709 + ["PublicTest"] * 3589 + ["PrivateTest"] * 3589
    with open(path, "w", newline="") as f:
        f.write("emotion,pixels,Usage\n")
        for k in range(rows):
            px = " ".join(map(str, rng.integers(0, 256, 2304)))
            f.write(f"{k % 7},{px},{usage[k * len(usage) // rows]}\n")


def bench_csv(rows):
    with tempfile.TemporaryDirectory() as t:
        d = Path(t) / "fer2013"; d.mkdir()
        write_csv(d / "fer2013.csv", rows)
        mb = (d / "fer2013.csv").stat().st_size / 2**20
        t_ours, out = best(lambda: read_fer_csv(d / "fer2013.csv"), reps=2)
        assert out["images"].shape == (rows, 48, 48)
        small = Path(t) / "small"; (small / "fer2013").mkdir(parents=True)
        with open(d / "fer2013.csv") as src, open(small / "fer2013" / "fer2013.csv", "w") as dst:
            for k, line in enumerate(src):
                if k > rows // 10: break
                dst.write(line)
        from torchvision.datasets import FER2013 as TV
        with mock.patch("torchvision.datasets.fer2013.check_integrity", return_value=True):
            t_tv, _ = best(lambda: (TV(str(small), "train"), TV(str(small), "test")), reps=1)
        t_ds, _ = best(lambda: [FER2013(Path(t), s) for s in ("train", "test")], reps=1)
    ref = (rows // 10) / t_tv
    return [(f"read_fer_csv, {rows:,} rows / {mb:.0f} MB (rows/s)", rows / t_ours, ref, f"<= 5 s (took {t_ours:.2f} s)"),
            (f"FER2013(root, split) train + test (rows/s)", rows / t_ds, ref, ""),
            (f"reference: torchvision FER2013, {rows // 10:,}-row slice (rows/s)", ref, ref, "")]


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    rows = bench_synth(1024 if quick else 4096) + bench_csv(3589 if quick else 35887)
    print(f"# benchmarks/data.py — {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()}, "
          f"1 thread, CPU time, torch {torch.__version__}, numpy {np.__version__}, load avg {os.getloadavg()[0]:.1f}")
    print(f"| measurement | value | ratio to reference | target |\n|---|---:|---:|---|")
    for name, v, ref, target in rows:
        print(f"| {name} | {v:,.0f} | {v / ref:.2f}x | {target} |")
