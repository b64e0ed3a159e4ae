"""Loading a checkpoint never runs code from it, through every path a user loads one.

A crafted ``.pth`` whose pickle calls ``os.system`` is refused by ``load_checkpoint``, ``load_from``,
``--resume`` and ``tools/test.py``; the command does not run and the error names the type. A checkpoint with
another pickled type that a trusted release may hold (``argparse.Namespace``) is refused the same way and
loads after ``tools/model_converters/trusted_checkpoint.py --trust``. MMEngine's own checkpoints load.
"""

import os
import os.path as osp
import pickle
from argparse import Namespace

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner.checkpoint import _load_checkpoint, load_checkpoint

from mmssod.utils.safe_load import UnsafeCheckpointError, load_checkpoint_file, load_data_pickle

from ..conftest import run_python
from .test_train_test import CONFIG, short_run_options


class _RunsACommand:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


@pytest.fixture
def crafted(tmp_path):
    """A checkpoint that would create ``marker`` when unpickled fully."""
    marker = tmp_path / 'command_ran'
    path = str(tmp_path / 'crafted.pth')
    torch.save({'state_dict': {'w': torch.ones(2)}, 'meta': {'iter': 1}, 'hub': _RunsACommand(marker)}, path)
    return path, marker


def test_mmengine_checkpoint_with_message_hub_loads(tmp_path):
    """mmengine pickles a message hub (HistoryBuffer, numpy) that plain weights_only=True refuses."""
    hub = MessageHub.get_instance('safe_load_test')
    hub.update_scalar('train/loss', 1.5)
    path = str(tmp_path / 'iter_3.pth')
    torch.save(
        {'state_dict': {'w': torch.ones(2)}, 'message_hub': hub.state_dict(), 'meta': {'iter': 3}}, path
    )
    with pytest.raises(pickle.UnpicklingError, match='weights_only'):
        torch.load(path)  # what mmengine 0.10.7 does on torch >= 2.6 without mmssod
    loaded = _load_checkpoint(path, map_location='cpu')
    assert loaded['meta']['iter'] == 3
    buffer = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer) and buffer.current() == 1.5
    with pytest.raises(FileNotFoundError, match='can not be found'):
        _load_checkpoint(str(tmp_path / 'missing.pth'), map_location='cpu')


def test_load_checkpoint_refuses_code_and_names_the_type(crafted):
    path, marker = crafted
    with pytest.raises(UnsafeCheckpointError) as err:
        load_checkpoint(torch.nn.Linear(2, 2), path, map_location='cpu')
    assert 'posix.system' in str(err.value) and 'trusted_checkpoint.py' in str(err.value)
    assert not marker.exists()


@pytest.mark.parametrize('how', ['resume', 'load_from', 'test'])
def test_tools_refuse_code_in_a_checkpoint(crafted, demo_det_root, tmp_path, how):
    path, marker = crafted
    work = ['--work-dir', str(tmp_path / 'w')]
    options = short_run_options(demo_det_root, 2)  # ends with --cfg-options ...
    if how == 'resume':
        res = run_python(['tools/train.py', CONFIG, *work, '--resume', path, *options])
    elif how == 'load_from':
        res = run_python(['tools/train.py', CONFIG, *work, *options, f'load_from={path}'])
    else:
        res = run_python(['tools/test.py', CONFIG, path, *work, *options])
    assert res.returncode != 0
    assert 'UnsafeCheckpointError' in res.stderr and 'posix.system' in res.stderr, res.stderr[-3000:]
    assert not marker.exists()
    assert not osp.exists(tmp_path / 'w' / 'iter_1.pth')


def test_trusted_release_is_refused_then_converted(tmp_path):
    src, dst = str(tmp_path / 'release.pth'), str(tmp_path / 'converted.pth')
    weights = {'w': torch.arange(4.0)}
    torch.save({'model': weights, 'args': Namespace(lr=2e-4, dec_layers=6), 'epoch': 49}, src)
    with pytest.raises(UnsafeCheckpointError, match=r'argparse\.Namespace') as err:
        load_checkpoint_file(src)
    # the command the error suggests, run as written (from another folder) with the output file filled in
    python, tool, *args = str(err.value).splitlines()[-1].split()
    assert python == 'python' and args == [src, 'CONVERTED.pth', '--trust'], str(err.value)

    refused = run_python([tool, src, dst], cwd=str(tmp_path))
    assert refused.returncode != 0 and '--trust' in refused.stderr and not osp.exists(dst)

    converted = run_python([tool, src, dst, '--trust'], cwd=str(tmp_path))
    assert converted.returncode == 0, converted.stderr[-2000:]
    loaded = load_checkpoint_file(dst)
    assert torch.equal(loaded['model']['w'], weights['w'])
    assert loaded['args'] == {'lr': 2e-4, 'dec_layers': 6} and loaded['epoch'] == 49


def test_results_pickle_builds_data_only(tmp_path):
    results = [
        {'img_id': 3, 'pred_instances': {'scores': torch.tensor([0.5, 0.25]), 'labels': torch.tensor([1, 2])}}
    ]
    good, bad = tmp_path / 'good.pkl', tmp_path / 'bad.pkl'
    results[0]['pred_instances']['masks'] = np.ones((1, 2, 2), dtype=bool)
    for protocol in (2, pickle.HIGHEST_PROTOCOL):  # 2: mmengine.dump's, as tools/test.py --out writes it
        good.write_bytes(pickle.dumps(results, protocol=protocol))
        loaded = load_data_pickle(str(good))
        assert loaded[0]['img_id'] == 3
        assert torch.equal(loaded[0]['pred_instances']['labels'], torch.tensor([1, 2]))
        assert loaded[0]['pred_instances']['masks'].all()

    marker = tmp_path / 'command_ran'
    bad.write_bytes(pickle.dumps([_RunsACommand(marker)]))
    with pytest.raises(UnsafeCheckpointError, match='posix.system'):
        load_data_pickle(str(bad))
    assert not marker.exists()
