"Trainer tests: exact resume, NaN stop, precision/layout options, and the command-line tools' bad-argument errors."
import contextlib, io, os, shutil, subprocess, sys
from pathlib import Path
import pytest, torch, torch.nn as nn, torch.nn.functional as F
from emosynth_nb.core import set_seed
from emosynth_nb.data import SynthFER
from emosynth_nb.losses import make_loss
from emosynth_nb.models import EmbeddingModel, check_model
from emosynth_nb.train import fit, load_checkpoint, compare_main, train_main, make_model, TrainConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

class TinyNet(EmbeddingModel):
    "A very small headless model following the contract: BN, dropout and an auxiliary head exercise every random state."
    def __init__(self, n_classes=7, embed_dim=8):
        super().__init__()
        self.embed_dim, self.aux_classes = embed_dim, n_classes
        self.conv = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AvgPool2d(4))
        self.aux = nn.Sequential(nn.Flatten(), nn.Linear(4 * 4 * 4, n_classes))
        self.emb = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(4 * 4 * 4, embed_dim))
    def forward_features(self, x): return self.conv(x)
    def forward_head(self, f, pre_logits=False): return self.emb(f)
    def embed_with_aux(self, x):
        f = self.conv(x)
        return self.emb(f), self.aux(f)


def _flip(x):  # a random augmentation drawn from the global torch RNG
    return x.flip(-1) if torch.rand(()) < 0.5 else x


def _run(loss_name, ckpt_dir=None, resume=False, on_epoch_end=None, init_seed=0, epochs=3):
    set_seed(init_seed)
    model = TinyNet()
    loss = make_loss(loss_name, model.embed_dim, 7)
    train, val = SynthFER(80, seed=0, size=16, transform=_flip), SynthFER(24, seed=1, size=16)
    return fit(model, loss, train, val, epochs=epochs, batch_size=16, lr=3e-3, seed=0, progress=False,
               ckpt_dir=ckpt_dir, resume=resume, on_epoch_end=on_epoch_end)


class _Interrupt(Exception): pass


@pytest.mark.parametrize('loss_name', ['l_softmax', 'mam+sce'])
def test_resume_equals_uninterrupted(tmp_path, loss_name):
    full = _run(loss_name)
    def stop(epoch, row):
        if epoch == 1: raise _Interrupt
    with pytest.raises(_Interrupt): _run(loss_name, tmp_path, on_epoch_end=stop)
    assert load_checkpoint(tmp_path / 'last.pt')['epoch'] == 1
    resumed = _run(loss_name, tmp_path, resume=True, init_seed=123)  # a differently initialised model: the checkpoint must win
    for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    for a, b in zip(full.loss.state_dict().values(), resumed.loss.state_dict().values()): assert torch.equal(a, b)
    strip = lambda h: [{k: v for k, v in r.items() if k not in ('time', 'images_per_s')} for r in h]
    assert strip(full.history) == strip(resumed.history)
    assert full.metrics['accuracy'] == resumed.metrics['accuracy'] and full.metrics['loss'] == resumed.metrics['loss']
    assert (full.metrics['confusion'] == resumed.metrics['confusion']).all()
    if loss_name == 'l_softmax': assert resumed.history[-1]['lam'] < resumed.history[0]['lam']


def test_resume_refuses_other_config(tmp_path):
    _run('ce', tmp_path, epochs=1)
    set_seed(0); model = TinyNet(); loss = make_loss('ce', 8, 7)
    with pytest.raises(ValueError, match="batch_size: 16 → 8"):
        fit(model, loss, SynthFER(80, seed=0, size=16), epochs=2, batch_size=8, ckpt_dir=tmp_path, resume=True, progress=False)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        fit(model, loss, SynthFER(80, seed=0, size=16), epochs=1, ckpt_dir=tmp_path / 'empty', resume=True, progress=False)


class _NaNAt(nn.Module):
    "Cross-entropy that turns into NaN at training step `k`."
    name = 'nan_at_3'
    def __init__(self, k=3):
        super().__init__(); self.k, self.i = k, 0; self.weight = nn.Parameter(torch.randn(7, 8) * 0.1)
    def logits(self, emb): return emb @ self.weight.t()
    def forward(self, emb, y):
        self.i += self.training
        l = F.cross_entropy(self.logits(emb), y)
        return l * float('nan') if self.training and self.i == self.k else l


def test_nan_stops_with_step_and_loss():
    set_seed(0)
    with pytest.raises(FloatingPointError, match=r"training stopped at epoch 1, step 3.*loss 'nan_at_3'"):
        fit(TinyNet(), _NaNAt(3), SynthFER(64, seed=0, size=16), epochs=1, batch_size=16, progress=False)


def test_options_run_on_cpu():
    "bf16 autocast, channels-last, SGD + one-cycle, gradient clipping and a step schedule all train without error."
    set_seed(0); model = TinyNet(); loss = make_loss('arcface', 8, 7)
    r = fit(model, loss, SynthFER(48, seed=0, size=16), epochs=1, batch_size=16, optimizer='sgd', nesterov=True,
            schedule='onecycle', amp='bf16', channels_last=True, clip_grad=1.0, progress=False)
    assert r.history[0]['train_loss'] == r.history[0]['train_loss']  # finite
    r = fit(model, loss, SynthFER(48, seed=0, size=16), epochs=2, batch_size=16, schedule='step', step_size=1, progress=False)
    assert r.history[1]['lr'] == pytest.approx(r.history[0]['lr'] * 0.1)
    with pytest.raises(ValueError, match="schedule must be one of"): fit(model, loss, SynthFER(16, size=16), schedule='linear', progress=False)
    with pytest.raises(ValueError, match="epochs must be in"): fit(model, loss, SynthFER(16, size=16), epochs=0, progress=False)
    with pytest.raises(TypeError, match="not training settings"): fit(model, loss, SynthFER(16, size=16), learning_rate=0.1, progress=False)
    with pytest.raises(ValueError, match="pass val_data"): fit(model, loss, SynthFER(16, size=16), schedule='plateau', progress=False)


# ---- command-line tools: every bad argument is a one-line error and a non-zero exit, before any training


def _exit(main, argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        with pytest.raises(SystemExit) as e: main(argv)
    return e.value.code, err.getvalue().strip().splitlines()[-1]


@pytest.mark.parametrize('argv, message', [
    (['--losses', 'ce', 'not_a_loss'], "unknown or invalid loss 'not_a_loss'"),
    (['--dataset', 'fer2013'], "pass --root"),
    (['--dataset', 'rafdb', '--root', '/no/such/folder'], "does not exist"),
    (['--dataset', 'imagenet'], "invalid choice: 'imagenet'"),
    (['--model', 'resnet9000'], "invalid choice: 'resnet9000'"),
    (['--embed-dim', '0'], "model 'emosynthnet_tiny' cannot be built"),
    (['--epochs', '0'], "argument --epochs: epochs must be in [1, inf)"),
    (['--seeds', '-1'], "argument --seeds: seed must be in [0, 4294967295]"),
    (['--lr', '-0.1'], "argument --lr: lr must be in (0, inf)"),
    (['--batch-size', 'x'], "invalid int value: 'x'"),
])
def test_compare_bad_arguments(argv, message, tmp_path):
    code, msg = _exit(compare_main, argv + ['--out', str(tmp_path)])  # never write ./runs, even if a case slipped through
    assert code == 2 and message in msg, msg


@pytest.mark.parametrize('argv, message', [
    (['--loss', 'arcface', '--loss-arg', 'm'], "KEY=VALUE"),
    (['--loss', 'arcface', '--loss-arg', 'nonsense=1'], "--loss-arg"),
    (['--loss', 'arcface', '--loss-arg', 'm=0.2', '--loss-arg', 'm=0.3'], "m is given twice"),
    (['--loss', 'nope'], "unknown or invalid loss 'nope'"),
    (['--resume', '--ckpt-dir', '/no/such/ckpt'], "no checkpoint at"),
    (['--clip-grad', '0'], "argument --clip-grad: clip_grad must be in (0, inf)"),
])
def test_train_bad_arguments(argv, message, tmp_path):
    argv = argv if '--ckpt-dir' in argv else argv + ['--ckpt-dir', str(tmp_path)]
    code, msg = _exit(train_main, argv)
    assert code == 2 and message in msg, msg


def test_console_script_exit_status():
    "The real process: a bad argument exits non-zero with the message on stderr."
    script = shutil.which('emosynth_compare')  # installed by `pip install -e .` (settings.ini console_scripts)
    code = "import sys; from emosynth_nb.train.cli import emosynth_compare; sys.argv[0] = 'emosynth_compare'; emosynth_compare()"
    cmd = [script] if script else [sys.executable, '-c', code]
    root = str(Path(__file__).resolve().parents[1])
    env = os.environ | {'PYTHONPATH': os.pathsep.join(filter(None, [root, os.environ.get('PYTHONPATH')]))}
    p = subprocess.run(cmd + ['--losses', 'bogus'], capture_output=True, text=True, env=env)
    assert p.returncode == 2 and "unknown or invalid loss 'bogus'" in p.stderr, p.stderr


def test_model_that_does_not_fit_the_input():
    "The commands try each model on two samples first, so a too-small input is a sentence, not a stack trace."
    tiny_images = torch.utils.data.TensorDataset(torch.rand(4, 1, 2, 2), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"does not fit inputs of shape \(1, 2, 2\)"):
        check_model(make_model('emosynthnet_tiny', 1, 7), sample=tiny_images)


def test_commands_on_real_format_fixtures(tmp_path):
    "Both commands read real datasets from local files (tiny fixtures in the exact on-disk formats), never downloading."
    from emosynth_nb.data import fixtures
    fixtures.write_fer2013(tmp_path / 'data'); fixtures.write_cifar10(tmp_path / 'data', n=6)
    with contextlib.redirect_stdout(io.StringIO()):
        res = compare_main(['--dataset', 'fer2013', '--root', str(tmp_path / 'data'), '--losses', 'ce', 'arcface', '--seeds', '0',
                            '--epochs', '1', '--batch-size', '8', '--out', str(tmp_path / 'runs'), '--no-progress'])
        r = train_main(['--recipe', '--dataset', 'cifar10', '--root', str(tmp_path / 'data'), '--model', 'emosynthnet_tiny', '--loss', 'ce',
                        '--epochs', '1', '--batch-size', '8', '--val-frac', '0.4', '--ckpt-dir', str(tmp_path / 'ck'), '--no-progress'])
    assert sorted(res.losses) == ['arcface', 'ce'] and (tmp_path / 'runs' / 'fer2013-emosynthnet_tiny' / 'table.csv').is_file()
    assert len(r.history) == 1 and r.history[0]['lr'] == pytest.approx(0.1)   # the CIFAR-10 recipe's SGD lr
    assert r.config.optimizer == 'sgd' and r.config.nesterov
    assert (tmp_path / 'ck' / 'last.pt').is_file()
