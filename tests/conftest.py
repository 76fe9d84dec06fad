import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def pytest_configure(config):
    config.addinivalue_line("markers", "book: needs the built book in _build/html (make book)")
    config.addinivalue_line("markers", "slow: runs nbgrader or whole notebooks")


@pytest.fixture(scope="session")
def repo_root() -> pathlib.Path:
    return ROOT


def pytest_collection_finish(session):
    """Undo any global torch state a test module set while being imported."""
    import torch

    torch.set_default_dtype(torch.float32)


@pytest.fixture(autouse=True)
def _torch_default_dtype(request):
    """torch's default dtype for one test: the module's TORCH_DEFAULT_DTYPE, else float32.

    Modules that want float64 tensors by default declare ``TORCH_DEFAULT_DTYPE`` instead of
    calling ``torch.set_default_dtype`` at import, which would leak into every other module.
    """
    import torch

    wanted = getattr(request.module, "TORCH_DEFAULT_DTYPE", torch.float32)
    torch.set_default_dtype(wanted)
    yield
    torch.set_default_dtype(torch.float32)
