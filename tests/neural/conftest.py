import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bsdfs"))


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny MLPs: one thread is much faster than two contended ones on the shared 2-core machine.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
