"Shared pytest fixtures."
import pytest, torch

@pytest.fixture(scope="module")
def one_torch_thread():
    "Tiny tensors and networks run faster on one torch thread (no OpenMP wake-ups, no fight for the 2 cores); restored afterwards."
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
