import os
import os.path as osp

import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner.checkpoint import _load_checkpoint

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
    from importlib.metadata import version

    if int(version('transformers').split('.')[0]) < 5:
        pytest.skip('needs transformers >= 5 installed to show the fix')
    broken = run_python(['-c', 'import mmpretrain.models'])
    assert broken.returncode != 0  # the upstream failure this fix exists for
    fixed = run_python(['-c', 'import mmssod, mmpretrain.models, mmdet.models; print("ok")'])
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    assert fixed.stdout.strip().endswith('ok')


def test_checkpoint_with_message_hub_loads_on_new_torch(tmp_path):
    """mmengine checkpoints pickle a message hub; torch >= 2.6 refuses them with weights_only=True."""
    hub = MessageHub.get_instance('compat_test')
    hub.update_scalar('train/loss', 1.5)
    ckpt = {'state_dict': {'w': torch.ones(2)}, 'message_hub': hub.state_dict(), 'meta': {'iter': 3}}
    path = osp.join(tmp_path, 'iter_3.pth')
    torch.save(ckpt, path)
    with pytest.raises(Exception, match='weights_only'):
        torch.load(path)  # what mmengine 0.10.7 does without the fix
    loaded = _load_checkpoint(path, map_location='cpu')
    assert loaded['meta']['iter'] == 3
    assert isinstance(loaded['message_hub']['log_scalars']['train/loss'], HistoryBuffer)
    with pytest.raises(FileNotFoundError, match='can not be found'):
        _load_checkpoint(osp.join(tmp_path, 'missing.pth'), map_location='cpu')
