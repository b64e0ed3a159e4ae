"""The installed package, used as a downstream project uses it: outside the repository, with only the wheel.

The wheel is built the way a release is (``python -m build``: the sdist from a copy of the tracked files,
then the wheel from that sdist), installed into a temp folder, and used from another temp folder with that
folder alone on ``PYTHONPATH`` (the venv provides the dependencies; the repository is not on the path).
"""

import glob
import os
import os.path as osp
import re
import subprocess
import sys
import tarfile
import textwrap
import zipfile

import pytest

from ..conftest import REPO_ROOT
from .test_train_test import check, short_run_options

DEMO = 'demo/faster-rcnn_efficientnet-lite0_fpn_composited-demo.py'


def tracked_files():
    out = subprocess.run(['git', 'ls-files'], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return [f for f in out.stdout.splitlines() if osp.isfile(osp.join(REPO_ROOT, f))]


@pytest.fixture(scope='module')
def package(tmp_path_factory):
    """``(sdist, wheel, site)``: built from a copy of the tracked files, the wheel installed into ``site``."""
    root = tmp_path_factory.mktemp('package')
    src, dist, site = root / 'src', root / 'dist', root / 'site'
    for name in tracked_files():  # what a clean clone holds (the working tree's versions)
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(open(osp.join(REPO_ROOT, name), 'rb').read())
    # --no-isolation: build with the venv's setuptools (offline); the wheel is built from the sdist
    check(
        subprocess.run(
            [sys.executable, '-m', 'build', '--no-isolation', '-o', str(dist), str(src)],
            capture_output=True,
            text=True,
            timeout=600,
        )
    )
    (sdist,) = glob.glob(str(dist / 'mmssod-*.tar.gz'))
    (wheel,) = glob.glob(str(dist / 'mmssod-*.whl'))
    check(
        subprocess.run(
            [
                sys.executable,
                '-m',
                'pip',
                'install',
                '--no-deps',
                '--no-index',
                '-q',
                '--target',
                str(site),
                wheel,
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
    )
    return sdist, wheel, site


def outside_env(site):
    """Environment of a downstream project: the installed wheel on the path, the repository not."""
    return {**os.environ, 'PYTHONPATH': str(site), 'OMP_NUM_THREADS': '1'}


def test_wheel_from_the_sdist_holds_package_configs_tools_and_metafiles(package):
    sdist, wheel, _ = package
    names = set(zipfile.ZipFile(wheel).namelist())
    files = tracked_files()
    shipped = [f for f in files if f.startswith(('configs/', 'tools/')) or f == 'model-index.yml']
    missing = [f for f in shipped if f'mmssod/.mim/{f}' not in names]
    assert not missing, f'the wheel lacks {missing[:5]} ({len(missing)} files)'
    modules = [f for f in files if f.startswith('mmssod/') and f.endswith('.py')]
    assert modules and all(f in names for f in modules)
    assert any(n.endswith('.dist-info/licenses/LICENSE') for n in names)
    in_sdist = {n.split('/', 1)[1] for n in tarfile.open(sdist).getnames() if '/' in n}
    assert {'LICENSE', 'MANIFEST.in', 'setup.py', 'requirements/runtime.txt', 'model-index.yml'} <= in_sdist
    assert not any(n.startswith('mmssod/.mim') for n in in_sdist)  # the wheel's copy is made from configs/


def test_downstream_config_inherits_mmssod_and_trains_with_the_packaged_train_py(
    package, demo_det_root, tmp_path
):
    _, _, site = package
    project = tmp_path / 'project'
    project.mkdir()
    (project / 'my_config.py').write_text(
        f"_base_ = ['mmssod::{DEMO}']\n"
        'optim_wrapper = dict(optimizer=dict(lr=3e-4))  # the one value this project changes\n'
    )
    probe = textwrap.dedent(
        f"""
        import mmssod
        from mmengine.config import Config
        from mmengine.hub import get_config
        print('mmssod from', mmssod.__file__)
        print('hub lr', get_config('mmssod::{DEMO}').optim_wrapper.optimizer.lr)
        print('downstream lr', Config.fromfile('my_config.py').optim_wrapper.optimizer.lr)
        """
    )
    out = check(
        subprocess.run(
            [sys.executable, '-c', probe],
            cwd=project,
            env=outside_env(site),
            capture_output=True,
            text=True,
            timeout=600,
        )
    )
    assert f'mmssod from {site}/mmssod/__init__.py' in out
    assert 'hub lr 0.0006' in out and 'downstream lr 0.0003' in out

    train_py = site / 'mmssod' / '.mim' / 'tools' / 'train.py'  # what `mim train mmssod` runs too
    work_dir = tmp_path / 'work'
    res = subprocess.run(
        [
            sys.executable,
            str(train_py),
            'my_config.py',
            '--work-dir',
            str(work_dir),
            *short_run_options(demo_det_root, 2),
        ],
        cwd=project,
        env=outside_env(site),
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = check(res)
    assert osp.isfile(work_dir / 'iter_2.pth')
    assert 'optimizer=dict(lr=0.0003' in (work_dir / 'my_config.py').read_text()
    assert re.search(
        r'Iter\(train\) \[1/2\]\s+lr: 3\.0000e-06', out
    ), 'warm-up does not start from the changed lr'


def test_mim_train_mmssod_in_the_setup_environment(demo_det_root, tmp_path):
    """`make setup`'s editable install: mim runs the checkout's tools/train.py (linked, not copied)."""
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    res = subprocess.run(
        [
            mim,
            'train',
            'mmssod',
            osp.basename(DEMO),
            '--work-dir',
            str(tmp_path / 'w'),
            *short_run_options(demo_det_root, 2),
        ],
        cwd=tmp_path,
        env={**env, 'OMP_NUM_THREADS': '1'},
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = check(res)
    used = re.search(r'\S+/mmssod/\.mim/tools/train\.py', out)
    assert used and osp.realpath(used.group()) == osp.join(osp.realpath(REPO_ROOT), 'tools', 'train.py')
    assert osp.isfile(tmp_path / 'w' / 'iter_2.pth')
