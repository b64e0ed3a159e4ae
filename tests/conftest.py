"""Shared fixtures. Tests run on CPU with real mmdet / mmpretrain components and real (composited) data."""

import os
import os.path as osp
import subprocess
import sys

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def run_python(args, cwd=REPO_ROOT, env=None, timeout=600):
    """Run ``python <args>`` in a subprocess with the project venv's interpreter; return CompletedProcess."""
    full_env = {**os.environ, 'PYTHONPATH': REPO_ROOT, 'OMP_NUM_THREADS': '1', **(env or {})}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope='session')
def demo_det_root(tmp_path_factory):
    """The embedded demo detection set (composited from real images), built once per test session."""
    from tools.benchmarks.composited import ensure_demo_detection

    return ensure_demo_detection(str(tmp_path_factory.mktemp('data') / 'composited_det_demo'), seed=0)
