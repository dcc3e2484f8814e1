"""Do two runs of a benchmark agree? Per row, the relative difference of their median ratios.

    python benchmarks/agree.py /tmp/run1/losses.json benchmarks/results/losses.json [--tol 0.10]

Rows are matched on their identifying columns (every non-numeric column, plus N/d/C); each numeric ratio
column present in both (`ratio_median`, `compiled_ratio`, `pml_ratio`, `macs_ratio`, `time_ratio`, `speedup`)
is compared as |a − b| / mean(a, b). Exit status 1 when any compared value differs by more than `--tol`.
"""
import argparse, json, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as H

RATIOS = ("ratio_median", "compiled_ratio", "pml_ratio", "time_ratio", "macs_ratio", "speedup")
KEYS = ("loss", "model", "measurement", "group", "input", "dtype", "channels_last", "compiled", "N", "d", "C")


def key(r):
    return tuple((k, r[k]) for k in KEYS if k in r)


def agree(rows_a, rows_b, tol=0.10):
    "[(row key, column, a, b, relative difference, ok)] for every ratio present in both runs."
    b = {key(r): r for r in rows_b}
    out = []
    for ra in rows_a:
        rb = b.get(key(ra))
        if rb is None: continue
        for c in RATIOS:
            va, vb = ra.get(c), rb.get(c)
            if isinstance(va, (int, float)) and isinstance(vb, (int, float)) and va > 0 and vb > 0:
                d = H.agreement(va, vb); out.append((key(ra), c, va, vb, d, d <= tol))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a"); ap.add_argument("b")
    ap.add_argument("--tol", type=float, default=0.10, help="allowed relative difference (0.10 = ±10 %)")
    a = ap.parse_args(argv)
    ja, jb = (json.loads(Path(p).read_text()) for p in (a.a, a.b))
    res = agree(ja["rows"], jb["rows"], a.tol)
    print(f"run A: {ja.get('date')} {ja.get('command')}\nrun B: {jb.get('date')} {jb.get('command')}\n")
    print("| row | column | run A | run B | difference | within ±%d%% |" % round(a.tol * 100))
    print("|---|---|---|---|---|---|")
    for k, c, va, vb, d, ok in res:
        print(f"| {', '.join(str(v) for _, v in k)} | {c} | {va:.3f} | {vb:.3f} | {d * 100:.1f} % | {'yes' if ok else 'NO'} |")
    n_ok = sum(ok for *_, ok in res)
    print(f"\n{n_ok} of {len(res)} values agree within ±{a.tol * 100:.0f} %")
    return 0 if n_ok == len(res) else 1


if __name__ == "__main__":
    sys.exit(main())
