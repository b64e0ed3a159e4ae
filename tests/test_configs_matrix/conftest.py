"""The miniature datasets of every layout, written once per test session under ``<tmp>/run/data``."""

import pytest

from ..fixtures.mini_datasets import write_all


@pytest.fixture(scope='session')
def mini_run_dir(tmp_path_factory):
    """A working directory whose ``data/`` holds every miniature dataset at the configs' data roots."""
    from tools.benchmarks.composited import CompositedDataError, load_fashion_mnist

    try:
        load_fashion_mnist(None, 'test')
    except CompositedDataError as err:
        pytest.skip(f'Fashion-MNIST (for the composited layouts) is not installed: {err}')
    return write_all(str(tmp_path_factory.mktemp('run')))
