"""The benchmark harness's maths on synthetic timings, and smoke runs of `benchmarks/losses.py --quick` and
`benchmarks/gpu.py --tiny` (they must run and write valid results; no speed is asserted)."""
import json, os, statistics, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import _harness as H


# ---------------------------------------------------------------- statistics
def test_quantile_matches_numpy():
    np = pytest.importorskip("numpy")
    xs = [3.0, 1.0, 4.0, 1.5, 9.0, 2.6]
    for q in (0, 0.1, 0.25, 0.5, 0.75, 1):
        assert H.quantile(xs, q) == pytest.approx(float(np.quantile(xs, q)))
    with pytest.raises(ValueError): H.quantile([], 0.5)


def test_paired_ratios_use_the_neighbouring_references():
    # candidate 2, 4, 6 s; reference before 1, 2, 2 and after 1, 2, 4 -> ratios 2/1, 4/2, 6/3
    assert H.paired_ratios([2, 4, 6], [1, 2, 2], [1, 2, 4]) == [2.0, 2.0, 2.0]
    assert H.paired_ratios([3, 3], [1, 3]) == [3.0, 1.0]          # one reference per round
    with pytest.raises(ValueError, match="equal lengths"): H.paired_ratios([1, 2], [1])


def test_paired_ratio_cancels_a_load_change_that_a_ratio_of_medians_does_not():
    # the machine is 3x slower in the second half of the run; the candidate is always 1.5x the reference
    load = [1.0] * 10 + [3.0] * 10
    ref = [0.010 * f for f in load]
    cand = [0.015 * f for f in load]
    r = H.summarise_ratios(H.paired_ratios(cand, ref, ref))
    assert r["median"] == pytest.approx(1.5) and r["lo"] == pytest.approx(1.5) and r["hi"] == pytest.approx(1.5)
    # unpaired, with the candidate measured mostly in the slow half, the ratio would be far off
    assert statistics.median(cand[5:]) / statistics.median(ref[:15]) > 2


def test_summary_spread_brackets_the_median_and_shrinks_with_more_rounds():
    import random
    rng = random.Random(1)
    few = [1.3 * (1 + rng.gauss(0, 0.1)) for _ in range(8)]
    many = [1.3 * (1 + rng.gauss(0, 0.1)) for _ in range(200)]
    s8, s200 = H.summarise_ratios(few), H.summarise_ratios(many)
    for s in (s8, s200):
        assert s["lo"] <= s["median"] <= s["hi"] and s["q25"] <= s["median"] <= s["q75"]
    assert s200["hi"] - s200["lo"] < s8["hi"] - s8["lo"]
    assert s200["lo"] < 1.3 < s200["hi"]                          # the true ratio is inside the 95% interval
    assert H.bootstrap_median_ci([2.0]) == (2.0, 2.0)
    assert H.bootstrap_median_ci(many, seed=3) == H.bootstrap_median_ci(many, seed=3)   # deterministic


def test_agreement():
    assert H.agreement(1.0, 1.0) == 0
    assert H.agreement(1.0, 1.1) == pytest.approx(0.1 / 1.05)


# ---------------------------------------------------------------- the interleaved loop, with a fake clock
def test_compare_gives_exact_ratios_under_a_drifting_load():
    now = [0.0]; calls = [0]
    def clock(): return now[0]
    def work(cost):
        def f():
            calls[0] += 1
            now[0] += cost * (1 + calls[0] / 50)   # the machine gets steadily slower
        return f
    res = H.compare({"ref": work(1.0), "a": work(2.0), "b": work(0.5)}, "ref", rounds=12, warmup=1, clock=clock, number=1)
    assert set(res) == {"a", "b"}
    # the drift within one R C R triple is linear, so averaging both neighbours leaves only a tiny bias
    assert res["a"].ratio == pytest.approx(2.0, rel=0.02) and res["b"].ratio == pytest.approx(0.5, rel=0.02)
    assert res["a"].rounds == 12 and len(res["a"].ratios) == 12
    assert res["a"].lo <= res["a"].ratio <= res["a"].hi


def test_compare_calibrates_and_stops_at_max_time():
    now = [0.0]
    res = H.compare({"ref": lambda: now.__setitem__(0, now[0] + 1e-4), "a": lambda: now.__setitem__(0, now[0] + 3e-4)},
                    "ref", rounds=10_000, min_rounds=3, max_time=0.0, clock=lambda: now[0], min_time=0.01)
    assert res["a"].rounds == 3                                    # max_time 0: stops right after min_rounds
    assert res["a"].ratio == pytest.approx(3.0)
    assert H.calibrate(lambda: now.__setitem__(0, now[0] + 1e-4), lambda: now[0], 0.01) >= 100


def test_compare_errors_name_what_is_allowed():
    with pytest.raises(ValueError, match="reference must be one of"): H.compare({"a": lambda: 0}, "ref")
    with pytest.raises(ValueError, match="clock must be one of"): H.make_clock("gpu")
    with pytest.raises(ValueError, match="at least one candidate"): H.compare({"ref": lambda: 0}, "ref")


def test_write_results_json_and_csv(tmp_path):
    info = H.meta(argv=["benchmarks/x.py", "--quick"], extra=1)
    assert {"command", "commit", "date", "machine"} <= set(info) and info["command"].endswith("--quick")
    assert {"cpu", "cores", "torch", "threads"} <= set(info["machine"])
    p = H.write_results("x", [{"loss": "ce", "ratio_median": 1.5, "pml_ratio": None}], info, tmp_path)
    d = json.loads(p.read_text())
    assert d["rows"][0]["ratio_median"] == 1.5 and d["extra"] == 1
    lines = (tmp_path / "x.csv").read_text().splitlines()
    assert lines[0].startswith("# command:") and "loss,ratio_median,pml_ratio" in lines and "ce,1.5," in lines


# ---------------------------------------------------------------- the scripts, as a user runs them
def run_script(*args, timeout=240):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p.stdout


def test_losses_quick_writes_its_results(tmp_path):
    from emosynth_nb.losses import LOSS_NAMES
    out = run_script("benchmarks/losses.py", "--quick", "--out", str(tmp_path))
    d = json.loads((tmp_path / "losses.json").read_text())
    assert {"command", "commit", "date", "machine", "rows"} <= set(d) and "--quick" in d["command"]
    assert {r["loss"] for r in d["rows"]} == {"linear+ce", *LOSS_NAMES}
    for r in d["rows"]:
        assert {"N", "d", "C", "ratio_median", "ratio_lo", "ratio_hi", "compiled_ratio", "pml_ratio"} <= set(r)
        assert r["ratio_lo"] <= r["ratio_median"] <= r["ratio_hi"] and r["ratio_median"] > 0
    assert (tmp_path / "losses.csv").read_text().startswith("# command:")
    assert "| arcface |" in out


def test_gpu_tiny_runs_on_cpu_and_writes_json(tmp_path):
    out = run_script("benchmarks/gpu.py", "--tiny", "--out", str(tmp_path))
    d = json.loads((tmp_path / "gpu_tiny.json").read_text())
    assert d["mode"] == "tiny" and {"command", "commit", "date", "device", "machine", "parts", "total_wall_s"} <= set(d)
    tp, tr, nb = d["parts"]["throughput"], d["parts"]["training"], d["parts"]["notebooks"]
    assert tp["status"] == "ok" and tr["status"] == "ok", (tp.get("reason"), tr.get("reason"))
    configs = {(r["input"], r["dtype"], r["channels_last"], r["compiled"]) for r in tp["rows"]}
    assert ("16x16x3", "fp32", False, False) in configs and ("16x16x1", "fp32", True, False) in configs
    assert any(r["compiled"] for r in tp["rows"]) or any("compile" in s.get("config", "") for s in tp["skipped"])
    for r in tp["rows"]: assert r["images_per_s"] > 0 and r["speedup_lo"] <= r["speedup"] <= r["speedup_hi"]
    assert 0 <= tr["train_acc"] <= 1 and 0 <= tr["val_acc"] <= 1 and tr["history"]
    if d["device"]["type"] == "cpu":
        assert nb["status"] == "skipped" and "CUDA" in nb["reason"]
    assert any(f.endswith(".ipynb") for f in nb["found"])                # it found the notebooks with #| gpu cells
    assert "Short training run" in out


def test_agree_matches_rows_and_flags_disagreement():
    import agree
    a = [{"loss": "arcface", "N": 256, "d": 128, "C": 7, "ratio_median": 1.00, "pml_ratio": 2.0},
         {"loss": "cosface", "N": 256, "d": 128, "C": 7, "ratio_median": 1.30, "pml_ratio": None}]
    b = [{"loss": "cosface", "N": 256, "d": 128, "C": 7, "ratio_median": 1.50},
         {"loss": "arcface", "N": 256, "d": 128, "C": 7, "ratio_median": 1.05, "pml_ratio": 2.1}]
    res = {(dict(k)["loss"], c): (d, ok) for k, c, _, _, d, ok in agree.agree(a, b, tol=0.10)}
    assert set(res) == {("arcface", "ratio_median"), ("arcface", "pml_ratio"), ("cosface", "ratio_median")}
    assert res["arcface", "ratio_median"][1] and not res["cosface", "ratio_median"][1]
    assert res["cosface", "ratio_median"][0] == pytest.approx(0.2 / 1.4)
