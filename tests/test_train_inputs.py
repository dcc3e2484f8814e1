"Bad input to the trainer and the command-line tools (issue 15): each case fed as a user would, asserting the message, before any training."
import contextlib, io, os, pickle
from pathlib import Path
import pytest, torch
from emosynth_nb.train import cli
from emosynth_nb.train.cli import compare_main, train_main

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = ['--n', '60', '--size', '16', '--epochs', '1', '--batch-size', '16', '--no-progress']


def _run(main, argv):
    "(exit status, stderr, stdout) of a command run in-process; status 0 when it returns."
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try: main(argv); code = 0
        except SystemExit as e: code = e.code
    return code, err.getvalue(), out.getvalue()


@pytest.mark.parametrize('argv, message', [
    (['--amp', 'fp16', '--device', 'cpu'], "amp='fp16' needs a CUDA device"),
    (['--lr', 'inf'], "argument --lr: lr must be a finite number, got inf"),
    (['--weight-decay', '-1'], "argument --weight-decay: weight_decay must be in [0, inf), got -1.0"),
    (['--weight-decay', 'nan'], "argument --weight-decay: weight_decay must be a finite number, got nan"),
    (['--aux-weight', 'nan'], "argument --aux-weight: aux_weight must be a finite number"),
    (['--momentum', '2'], "argument --momentum: momentum must be in [0, 1), got 2.0"),
    (['--warmup-epochs', 'nan'], "argument --warmup-epochs: warmup_epochs must be a finite number"),
    (['--warmup-epochs', '-1'], "argument --warmup-epochs: warmup_epochs must be in [0, inf)"),
    (['--seed', str(2**64)], "argument --seed: seed must be in [0, 4294967295]"),
    (['--device', 'meta'], "argument --device: device type must be one of 'cpu', 'cuda', 'mps'; got 'meta'"),
    (['--size', '0'], "size must be in [16, 512], got 0"),
    (['--n', str(10**9)], "GiB of memory"),
    (['--val-frac', '0.2'], "argument --val-frac: only with --recipe"),
    (['--root', '/tmp'], "--root: SynthFER is generated, it reads no files"),
    (['--loss-arg', 'm=0.2', '--loss-arg', 'm=0.3', '--loss', 'arcface'], "--loss-arg: m is given twice"),
])
def test_train_refuses(argv, message, tmp_path):
    code, err, _ = _run(train_main, argv + ['--ckpt-dir', str(tmp_path / 'ck')])
    last = err.strip().splitlines()[-1]
    assert code == 2 and last.startswith('emosynth_train: error:') and message in last, err
    assert not (tmp_path / 'ck' / 'last.pt').exists()


@pytest.mark.parametrize('argv, message', [
    (['--seeds', str(2**64)], "argument --seeds: seed must be in [0, 4294967295]"),
    (['--workers', '0'], "argument --workers: must be at least 1"),
    (['--momentum', '2'], "argument --momentum: momentum must be in [0, 1)"),
    (['--device', 'meta'], "device type must be one of"),
])
def test_compare_refuses(argv, message, tmp_path):
    code, err, _ = _run(compare_main, argv + ['--out', str(tmp_path)])
    assert code == 2 and message in err.strip().splitlines()[-1], err


def test_repeated_seeds_and_losses_are_merged_with_a_note(tmp_path):
    code, err, out = _run(compare_main, TINY + ['--seeds', '0', '0', '--losses', 'ce', 'CE', '--workers', '1', '--out', str(tmp_path)])
    assert code == 0, err
    assert "note: --seeds 0 0 repeats a value; each runs once: 0" in err and "note: --losses ce CE repeats a value; each runs once: ce" in err
    res = cli.load_runs(tmp_path / 'synthfer-emosynthnet_tiny') if hasattr(cli, 'load_runs') else None
    from emosynth_nb.train import load_runs
    assert [(r['loss_name'], r['seed']) for r in load_runs(tmp_path / 'synthfer-emosynthnet_tiny').runs] == [('ce', 0)]
    assert "seeds [0]" in out


def _trained(tmp_path, *extra):
    ck = tmp_path / 'ck'
    code, err, _ = _run(train_main, TINY + ['--loss', 'ce', '--epochs', '2', '--ckpt-dir', str(ck), *extra])
    assert code == 0, err
    return ck


@pytest.mark.parametrize('change, message', [
    (['--epochs', '4'], "epochs: 2 → 4"), (['--lr', '0.01'], "lr: 0.003 → 0.01"),
    (['--schedule', 'step'], "schedule: 'cosine' → 'step'"), (['--loss', 'focal'], "loss_name: 'ce' → 'focal'"),
])
def test_resume_refuses_a_changed_result_setting(tmp_path, change, message):
    "A finished 2-epoch run resumed with --epochs 4 would train at lr 0; every result-changing setting is refused, naming it."
    ck = _trained(tmp_path)
    argv = TINY + ['--loss', 'ce', '--epochs', '2'] + change + ['--ckpt-dir', str(ck), '--resume']
    code, err, _ = _run(train_main, argv)
    last = err.strip().splitlines()[-1]
    assert code == 2 and message in last and 'start fresh' in last, err


def test_resume_same_settings_and_device_change_is_fine(tmp_path):
    ck = _trained(tmp_path)
    code, err, _ = _run(train_main, TINY + ['--loss', 'ce', '--epochs', '2', '--ckpt-dir', str(ck), '--resume', '--device', 'cpu', '--num-workers', '0'])
    assert code == 0, err


def test_corrupt_checkpoint_names_the_file(tmp_path):
    ck = tmp_path / 'ck'; ck.mkdir()
    (ck / 'last.pt').write_bytes(os.urandom(256))
    code, err, _ = _run(train_main, TINY + ['--loss', 'ce', '--ckpt-dir', str(ck), '--resume'])
    last = err.strip().splitlines()[-1]
    assert code == 2 and str(ck / 'last.pt') in last and 'corrupt' in last and 'weights_only=False' not in err, err


def test_stale_tmp_files_are_cleaned_at_start(tmp_path):
    ck = tmp_path / 'ck'; ck.mkdir(); (ck / 'last.ptx1y2.tmp').write_bytes(b'half a save')
    _trained(tmp_path)
    assert not list(ck.glob('*.tmp')) and (ck / 'last.pt').is_file()


def test_ctrl_c_prints_resume_command(monkeypatch, tmp_path):
    def interrupted(*a, **k): raise KeyboardInterrupt
    monkeypatch.setattr(cli, 'fit', interrupted)
    code, err, _ = _run(train_main, TINY + ['--loss', 'ce', '--ckpt-dir', str(tmp_path)])
    assert code == 130 and 'Traceback' not in err
    assert "emosynth_train: interrupted;" in err and "resume with: emosynth_train" in err and err.strip().endswith('--resume'), err
    monkeypatch.setattr(cli, 'compare', interrupted)
    code, err, _ = _run(compare_main, TINY + ['--out', str(tmp_path / 'cmp')])
    assert code == 130 and "emosynth_compare: interrupted; finished runs are saved in" in err, err


@pytest.mark.parametrize('which', ['--out', '--ckpt-dir'])
def test_output_path_that_is_a_file(tmp_path, which):
    f = tmp_path / 'afile'; f.write_text('x')
    main = compare_main if which == '--out' else train_main
    code, err, _ = _run(main, TINY + [which, str(f)])
    # compare writes into <out>/<dataset>-<model>: a file named by --out cannot hold it either
    assert code == 2 and ('is an existing file, not a folder' in err or 'cannot be created' in err), err


def test_output_folder_that_cannot_be_created_or_written(tmp_path, monkeypatch):
    code, err, _ = _run(train_main, TINY + ['--ckpt-dir', '/proc/emosynth-no-such-dir/ck'])
    assert code == 2 and "--ckpt-dir '/proc/emosynth-no-such-dir/ck' cannot be created" in err, err
    import tempfile
    def read_only(*a, **k): raise PermissionError(13, 'Permission denied')
    monkeypatch.setattr(tempfile, 'NamedTemporaryFile', read_only)
    code, err, _ = _run(train_main, TINY + ['--ckpt-dir', str(tmp_path / 'ro')])
    assert code == 2 and "is not writable: Permission denied" in err, err


def test_full_disk_is_refused_before_training(tmp_path, monkeypatch):
    import shutil
    monkeypatch.setattr(shutil, 'disk_usage', lambda p: shutil._ntuple_diskusage(10**12, 10**12, 1000))
    code, err, _ = _run(train_main, TINY + ['--ckpt-dir', str(tmp_path / 'ck')])
    assert code == 2 and "free some space" in err and not (tmp_path / 'ck' / 'last.pt').exists(), err


class _Evil:
    def __reduce__(self): return (os.system, ('echo pwned',))


def test_malicious_cifar_pickle_is_refused(tmp_path):
    from emosynth_nb.data import fixtures
    fixtures.write_cifar10(tmp_path, n=4)
    batch = next((tmp_path / 'cifar-10-batches-py').glob('data_batch_1'))
    batch.write_bytes(pickle.dumps({'data': _Evil()}))
    code, err, _ = _run(train_main, ['--dataset', 'cifar10', '--root', str(tmp_path), '--epochs', '1', '--ckpt-dir', str(tmp_path / 'ck'), '--no-progress'])
    last = err.strip().splitlines()[-1]
    assert code == 2 and 'error:' in last and 'refusing to load global' in last and 'Traceback' not in err, err


def test_unreadable_fer_csv_is_an_error_line(tmp_path):
    from emosynth_nb.data import fixtures
    fixtures.write_fer2013(tmp_path)
    csv = tmp_path / 'fer2013' / 'fer2013.csv'
    csv.write_bytes(csv.read_bytes()[:200] + b'\xff\xfe\xfa' + csv.read_bytes()[200:])
    code, err, _ = _run(train_main, ['--dataset', 'fer2013', '--root', str(tmp_path), '--epochs', '1', '--ckpt-dir', str(tmp_path / 'ck'), '--no-progress'])
    assert code == 2 and 'error:' in err.strip().splitlines()[-1] and 'Traceback' not in err, err
