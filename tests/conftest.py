import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def pytest_configure(config):
    config.addinivalue_line("markers", "book: needs the built book in _build/html (make book)")
    config.addinivalue_line("markers", "slow: runs nbgrader or whole notebooks")


@pytest.fixture(scope="session")
def repo_root() -> pathlib.Path:
    return ROOT
