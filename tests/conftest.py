"""Shared test settings: deterministic, small, CPU-only."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


def pytest_configure(config):
    # The tasks are tiny: intra-op threads cost far more than they give on 2 cores.
    torch.set_num_threads(1)
