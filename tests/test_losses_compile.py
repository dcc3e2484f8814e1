"Issue 16.3: every loss traces with torch.compile's front end (dynamo) without a graph break in its forward."
import pytest
import torch
from emosynth_nb.losses import make_loss, LOSS_NAMES

pytestmark = pytest.mark.usefixtures("one_torch_thread")

@pytest.mark.parametrize("name", LOSS_NAMES + ("mam+sce", "arcface+focal", "cosface+symmetric_ce"))
def test_no_graph_break(name):
    torch.manual_seed(0); loss = make_loss(name, 8, 5); loss.train()
    emb, y = torch.randn(6, 8), torch.randint(0, 5, (6,))
    loss(emb, y)  # checked once, eagerly
    torch._dynamo.reset()
    ex = torch._dynamo.explain(loss)(emb, y)
    assert ex.graph_break_count == 0, [str(b.reason)[:300] for b in ex.break_reasons]
    assert ex.graph_count == 1
