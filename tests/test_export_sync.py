"The exported library must be exactly what `nbdev_export` makes from the notebooks (modules are never edited by hand)."
import filecmp, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def _tree(d: Path):
    return {p.relative_to(d): p for p in d.rglob('*.py') if '__pycache__' not in p.parts}

def test_modules_match_notebooks(tmp_path):
    for name in ('settings.ini', 'setup.py'): shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / 'nbs', tmp_path / 'nbs')
    # keep the hand-written package skeleton (if any) so only exported files can differ
    shutil.copytree(ROOT / 'emosynth_nb', tmp_path / 'emosynth_nb', ignore=shutil.ignore_patterns('*.py', '__pycache__'))
    subprocess.run([sys.executable, '-c', 'from nbdev.doclinks import nbdev_export; nbdev_export()'],
                   cwd=tmp_path, check=True)
    ours, fresh = _tree(ROOT / 'emosynth_nb'), _tree(tmp_path / 'emosynth_nb')
    assert sorted(ours) == sorted(fresh), f"modules without a notebook or notebooks not exported: {sorted(set(ours) ^ set(fresh))}"
    stale = [str(k) for k in ours if not filecmp.cmp(ours[k], fresh[k], shallow=False)]
    assert not stale, f"these modules differ from what nbdev_export makes from nbs/ (run nbdev_export): {stale}"
