"""Data benchmarks: SynthFER generation speed and FER2013 CSV parsing, as ratios to references in the same run.

    nice -n 10 python benchmarks/data.py          # 4,096 SynthFER faces; a full-size (35,887-row) FER2013 CSV
    python benchmarks/data.py --quick             # 512 faces, 3,589 rows, 3 rounds (a smoke test)

Timing uses `_harness.py`: one thread, process CPU time (time on one core), candidates interleaved with the
reference in one loop, medians of paired ratios with a bootstrap 95 % interval. Two groups:
- SynthFER (synthetic faces, 48×48 gray unless said) against decoding the same faces from PNG with PIL:
  `images()` in one call, per-item access `ds[i]`, 100×100 RGB. Ratio = images/s ÷ the reference's images/s
  (> 1: faster than PNG decoding). Target: `images()` ≥ 2,000 images/s on one core.
- FER2013 CSV (random pixels, real layout, written to a temp dir) parsed by `read_fer_csv` and by
  `FER2013(root, split)` (train + test) against torchvision's FER2013 reading a 10 % slice of the same file.
  Ratio = rows/s ÷ the reference's rows/s. Target: `read_fer_csv` of 35,887 rows ≤ 5 CPU s.
Writes `benchmarks/results/data.json` and `.csv`.
"""
import os, sys
for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"): os.environ.setdefault(_v, "1")
import argparse, io, tempfile, time
from pathlib import Path
from unittest import mock
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as H
import numpy as np
import torch
from PIL import Image
from emosynth_nb.data.synth import SynthFER
from emosynth_nb.data.fer import read_fer_csv, FER2013


def synth_group(n, rounds, max_time):
    "Rows for SynthFER vs PIL PNG decoding of the same faces (per-image throughput ratios)."
    imgs = SynthFER(n, seed=1, cache=False).images()
    pngs = []
    for im in imgs:
        b = io.BytesIO(); Image.fromarray(im[0], "L").save(b, "PNG"); pngs.append(b.getvalue())
    n_rgb = max(n // 4, 1)
    work = {"ref": n, "images": n, "items": n, "rgb": n_rgb}   # images per call
    cands = {"ref": lambda: [np.asarray(Image.open(io.BytesIO(p)).convert("L")) for p in pngs],
             "images": lambda: SynthFER(n, seed=1, cache=False).images(),
             "items": lambda: (lambda ds: [ds[i] for i in range(n)])(SynthFER(n, seed=2)),
             "rgb": lambda: SynthFER(n_rgb, seed=3, size=100, rgb=True, cache=False).images()}
    res = H.compare(cands, "ref", rounds=rounds, warmup=1, max_time=max_time, min_time=0.0)
    labels = {"images": "SynthFER 48x48 gray, images()", "items": "SynthFER 48x48 gray, ds[i] -> tensor",
              "rgb": "SynthFER 100x100 RGB, images()"}
    rows = []
    ref_rate = n / next(iter(res.values())).ref_time
    for k, r in res.items():
        per = work[k] / work["ref"]                      # throughput ratio per round = (n_k / t_k) / (n_ref / t_ref)
        s = H.summarise_ratios([per / q for q in r.ratios])
        rate = work[k] / r.time
        rows.append({"measurement": labels[k], "unit": "images/s", "value": rate, "ratio_median": s["median"],
                     "ratio_lo": s["lo"], "ratio_hi": s["hi"], "rounds": r.rounds,
                     "target": ">= 2,000 images/s" if k == "images" else "",
                     "meets_target": bool(rate >= 2000) if k == "images" else None})
    rows.append({"measurement": "reference: PIL decode of the same 48x48 PNGs", "unit": "images/s", "value": ref_rate,
                 "ratio_median": 1.0, "ratio_lo": 1.0, "ratio_hi": 1.0, "rounds": rows[0]["rounds"], "target": "",
                 "meets_target": None})
    return rows


def write_csv(path, rows):
    rng = np.random.default_rng(0)
    usage = ["Training"] * 28709 + ["PublicTest"] * 3589 + ["PrivateTest"] * 3589
    with open(path, "w", newline="") as f:
        f.write("emotion,pixels,Usage\n")
        for k in range(rows):
            px = " ".join(map(str, rng.integers(0, 256, 2304)))
            f.write(f"{k % 7},{px},{usage[k * len(usage) // rows]}\n")


def csv_group(n_rows, rounds, max_time):
    "Rows for parsing a FER2013 CSV vs torchvision's FER2013 on a 10 % slice (per-row throughput ratios)."
    from torchvision.datasets import FER2013 as TV
    with tempfile.TemporaryDirectory() as t:
        d = Path(t) / "fer2013"; d.mkdir()
        write_csv(d / "fer2013.csv", n_rows)
        mb = (d / "fer2013.csv").stat().st_size / 2**20
        small = Path(t) / "small"; (small / "fer2013").mkdir(parents=True)
        n_small = n_rows // 10
        with open(d / "fer2013.csv") as src, open(small / "fer2013" / "fer2013.csv", "w") as dst:
            for k, line in enumerate(src):
                if k > n_small: break
                dst.write(line)
        out = read_fer_csv(d / "fer2013.csv")
        assert out["images"].shape == (n_rows, 48, 48), out["images"].shape
        patch = mock.patch("torchvision.datasets.fer2013.check_integrity", return_value=True)
        patch.start()
        try:
            cands = {"ref": lambda: (TV(str(small), "train"), TV(str(small), "test")),
                     "read": lambda: read_fer_csv(d / "fer2013.csv"),
                     "ds": lambda: [FER2013(Path(t), s) for s in ("train", "test")]}
            res = H.compare(cands, "ref", rounds=rounds, warmup=0, min_rounds=2, max_time=max_time, min_time=0.0)
        finally:
            patch.stop()
    rows = []
    for k, label in (("read", f"read_fer_csv, {n_rows:,} rows / {mb:.0f} MB"), ("ds", "FER2013(root, split) train + test")):
        r = res[k]; per = n_rows / n_small
        s = H.summarise_ratios([per / q for q in r.ratios])
        rows.append({"measurement": label, "unit": "rows/s", "value": n_rows / r.time, "ratio_median": s["median"],
                     "ratio_lo": s["lo"], "ratio_hi": s["hi"], "rounds": r.rounds,
                     "target": f"<= 5 CPU s (took {r.time:.2f} s)" if k == "read" else "",
                     "meets_target": bool(r.time <= 5) if k == "read" else None})
    rows.append({"measurement": f"reference: torchvision FER2013, {n_small:,}-row slice", "unit": "rows/s",
                 "value": n_small / res["read"].ref_time, "ratio_median": 1.0, "ratio_lo": 1.0, "ratio_hi": 1.0,
                 "rounds": res["read"].rounds, "target": "", "meets_target": None})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="512 faces, 3,589 CSV rows, 3 rounds")
    ap.add_argument("--rounds", type=int, default=None, help="timed rounds per group (default 7; 3 with --quick)")
    ap.add_argument("--max-time", type=float, default=None, help="wall seconds per group (default 180)")
    ap.add_argument("--out", default=None, help="folder for data.json / data.csv (default benchmarks/results)")
    a = ap.parse_args(argv)
    H.pin_threads(1)
    rounds = a.rounds or (3 if a.quick else 7)
    max_time = a.max_time if a.max_time is not None else (20. if a.quick else 180.)
    t0c, t0w = time.process_time(), time.perf_counter()
    rows = synth_group(512 if a.quick else 4096, rounds, max_time) + csv_group(3589 if a.quick else 35887, rounds, max_time)
    info = H.meta(argv=None if argv is None else [sys.argv[0], *argv], numpy=np.__version__,
                  timing="process CPU time, one thread; interleaved with the reference; medians of paired ratios, bootstrap 95% CI",
                  total_cpu_s=round(time.process_time() - t0c, 1), total_wall_s=round(time.perf_counter() - t0w, 1))
    path = H.write_results("data", rows, info, a.out)
    m = info["machine"]
    print(f"## benchmarks/data.py — {info['date']}, {m['cpu']}, 1 thread, CPU time, torch {m['torch']}, "
          f"numpy {np.__version__}, commit {info['commit'][:12]}, load avg {m.get('load_avg_1min')}\n")
    print(H.markdown(rows, [("measurement", "measurement"), ("value", lambda r: f"{r['value']:,.0f} {r['unit']}"),
                            ("ratio to reference [95% CI]", lambda r: H.fmt_ratio(r["ratio_median"], r["ratio_lo"], r["ratio_hi"])),
                            ("target", "target"),
                            ("ok", lambda r: "" if r["meets_target"] is None else ("yes" if r["meets_target"] else "NO"))]))
    print(f"\nwrote {path} and {path.with_suffix('.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
