import os
from importlib.metadata import version

import pytest
import torch

from mmssod.utils.compat import (
    SUPPORTED_VERSIONS,
    IncompatibleStackError,
    check_mmcv_ops,
    check_versions,
    installed_versions,
)

from ..conftest import run_python

GOOD = {name: low for name, (low, _) in SUPPORTED_VERSIONS.items()}


def test_installed_stack_is_supported():
    check_versions(installed_versions())
    check_mmcv_ops()


@pytest.mark.parametrize(
    ('name', 'bad'), [('mmdet', '3.2.0'), ('mmcv', '2.2.0'), ('mmengine', '1.0.0'), ('mmpretrain', '1.1.0')]
)
def test_version_out_of_range_names_package_and_range(name, bad):
    low, high = SUPPORTED_VERSIONS[name]
    with pytest.raises(IncompatibleStackError) as err:
        check_versions({**GOOD, name: bad})
    msg = str(err.value)
    assert f'{name} {bad} is installed' in msg and f'{name}>={low},<{high}' in msg and 'make setup' in msg


def test_missing_and_lite_mmcv():
    with pytest.raises(IncompatibleStackError, match='mmpretrain is not installed'):
        check_versions({**GOOD, 'mmpretrain': None})
    with pytest.raises(
        IncompatibleStackError, match='mmcv-lite 2.1.0 is installed, but mmdet needs the full mmcv'
    ):
        check_versions({**GOOD, 'mmcv': None, 'mmcv-lite': '2.1.0'})


def test_import_fails_clearly_on_wrong_installed_version(tmp_path):
    """A real import with an out-of-range mmdet distribution first on the path."""
    dist = tmp_path / 'mmdet-3.2.0.dist-info'
    dist.mkdir()
    (dist / 'METADATA').write_text('Metadata-Version: 2.1\nName: mmdet\nVersion: 3.2.0\n')
    res = run_python(['-c', 'import mmssod'], env={'PYTHONPATH': f'{tmp_path}{os.pathsep}{os.getcwd()}'})
    assert res.returncode != 0
    assert 'mmdet 3.2.0 is installed, but mmssod supports mmdet>=3.3.0,<3.4.0' in res.stderr


def test_modern_transformers_does_not_break_model_imports():
    """transformers >= 5 is in the test env (requirements/tests.txt); mmpretrain 1.2.0 alone breaks."""
    if int(version('transformers').split('.')[0]) < 5:
        pytest.skip('needs transformers >= 5 installed to show the fix')
    broken = run_python(['-c', 'import mmpretrain.models'])
    assert broken.returncode != 0  # the upstream failure this fix exists for
    fixed = run_python(['-c', 'import mmssod, mmpretrain.models, mmdet.models; print("ok")'])
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    assert fixed.stdout.strip().endswith('ok')


def test_with_cuda_the_launcher_and_ddp_wrapper_are_stock():
    """``import mmssod`` installs the gloo launcher / DDP wrapper only where CUDA is missing."""
    code = (
        'import torch\n'
        'torch.cuda.is_available = lambda: True\n'
        'import mmengine.dist.utils as dist_utils\n'
        'from mmengine.model.wrappers import MMDistributedDataParallel as DDP\n'
        'launcher, wrapper = dist_utils._init_dist_pytorch, DDP.__init__\n'
        'import mmssod\n'
        'assert dist_utils._init_dist_pytorch is launcher and DDP.__init__ is wrapper\n'
        'print("stock")\n'
    )
    res = run_python(['-c', code])
    assert res.returncode == 0 and res.stdout.strip().endswith('stock'), res.stderr[-2000:]


def test_without_cuda_the_launcher_uses_gloo():
    import mmengine.dist.utils as dist_utils

    from mmssod.utils.compat import enable_cpu_distributed

    if torch.cuda.is_available():
        pytest.skip('the gloo launcher is installed only without CUDA')
    assert enable_cpu_distributed() and dist_utils._init_dist_pytorch._mmssod_cpu


def test_older_transformers_leave_mmpretrain_multimodal_on(monkeypatch):
    from mmpretrain.utils import dependency

    from mmssod.utils import compat

    monkeypatch.setattr(dependency, 'WITH_MULTIMODAL', True)
    monkeypatch.setattr(compat, 'version', lambda name: '4.46.0' if name == 'transformers' else version(name))
    assert not compat.disable_mmpretrain_multimodal_if_needed()
    assert dependency.WITH_MULTIMODAL is True
    monkeypatch.setattr(compat, 'version', lambda name: '5.0.0' if name == 'transformers' else version(name))
    assert compat.disable_mmpretrain_multimodal_if_needed() and dependency.WITH_MULTIMODAL is False


def test_only_local_checkpoint_loading_is_replaced():
    from mmengine.runner import checkpoint

    from mmssod.utils.safe_load import load_checkpoint_file

    schemes = checkpoint.CheckpointLoader._schemes
    assert schemes[''] is load_checkpoint_file
    assert (
        schemes['http://'] is checkpoint.load_from_http and schemes['https://'] is checkpoint.load_from_http
    )
