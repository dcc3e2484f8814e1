"DistributedDataParallel: two CPU processes (gloo, under torchrun) train to the same weights as one process."
import importlib.util, os, subprocess, sys, textwrap
from pathlib import Path
import pytest, torch
import torch.distributed as dist

ROOT = Path(__file__).resolve().parents[1]
ENV = os.environ | {'PYTHONPATH': os.pathsep.join(filter(None, [str(ROOT), os.environ.get('PYTHONPATH')]))}

SCRIPT = textwrap.dedent('''
    import sys, torch, torch.nn as nn
    from emosynth_nb.core import set_seed
    from emosynth_nb.losses import make_loss
    from emosynth_nb.train import fit
    from emosynth_nb.models import EmbeddingModel

    class Net(EmbeddingModel):
        "Headless, no batch norm and no dropout: per-process batch statistics and masks would differ from one process by design."
        embed_dim, aux_classes = 6, 7
        def __init__(self):
            super().__init__()
            self.conv = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.AvgPool2d(4), nn.Flatten())
            self.aux, self.emb = nn.Linear(3 * 4 * 4, 7), nn.Linear(3 * 4 * 4, 6)
        def forward_features(self, x): return self.conv(x)
        def forward_head(self, f, pre_logits=False): return self.emb(f)
        def embed_with_aux(self, x):
            f = self.conv(x)
            return self.emb(f), self.aux(f)

    def run():
        set_seed(0)
        g = torch.Generator().manual_seed(0)
        data = torch.utils.data.TensorDataset(torch.rand(64, 1, 16, 16, generator=g), torch.randint(0, 7, (64,), generator=g))
        model = Net(); loss = make_loss('cosface', 6, 7)
        r = fit(model, loss, data, epochs=2, batch_size=16, lr=0.05, optimizer='sgd', aux_weight=0.3, device='cpu', progress=False)
        return dict(model=model.state_dict(), loss=loss.state_dict(), history=[h['train_loss'] for h in r.history])

    if __name__ == '__main__':
        out = run()
        import torch.distributed as dist
        if not dist.is_initialized() or dist.get_rank() == 0: torch.save(out, sys.argv[1])
''')

pytestmark = pytest.mark.usefixtures("one_torch_thread")

@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason='needs torch.distributed with gloo')
def test_ddp_two_processes_match_one(tmp_path):
    script = tmp_path / 'ddp_run.py'; script.write_text(SCRIPT)
    one, two = tmp_path / 'one.pt', tmp_path / 'two.pt'
    spec = importlib.util.spec_from_file_location('ddp_run', script); mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod); torch.save(mod.run(), one)   # the single-process reference, in this process
    p = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc-per-node=2',
                        str(script), str(two)], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    a, b = torch.load(one, weights_only=True), torch.load(two, weights_only=True)
    for k in a['model']: torch.testing.assert_close(a['model'][k], b['model'][k], rtol=1e-4, atol=1e-5, msg=k)
    for k in a['loss']: torch.testing.assert_close(a['loss'][k], b['loss'][k], rtol=1e-4, atol=1e-5, msg=k)
    assert a['history'] == pytest.approx(b['history'], rel=1e-4)
