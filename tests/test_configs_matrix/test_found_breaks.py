"""Regression tests for breaks the config matrix found (each fails on the code before its fix)."""

import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint, save_checkpoint

from ..conftest import REPO_ROOT, run_python

DDEP_SMOKE_FINETUNE = 'configs/ddep/ddep_r18-tiny_cpu-smoke_finetune_composited-seg.py'


def _smoke_segmentor(**decoder):
    cfg = Config.fromfile(osp.join(REPO_ROOT, DDEP_SMOKE_FINETUNE))
    cfg.model.decode_head.decoder.update(decoder)
    init_default_scope('mmseg')
    from mmseg.registry import MODELS

    return MODELS.build(cfg.model)


def test_fine_tuned_ddep_checkpoint_loads_back(tmp_path):
    """A DDeP fine-tuning run's own checkpoint (what --resume and tools/test.py load) records its decoder
    layout: before, loading it raised 'no recorded decoder layout'."""
    trained = _smoke_segmentor()
    path = str(tmp_path / 'iter_2.pth')
    save_checkpoint(trained.state_dict(), path)
    fresh = _smoke_segmentor()
    load_checkpoint(fresh, path, map_location='cpu', strict=True)
    for key, value in trained.state_dict().items():
        assert torch.equal(value, fresh.state_dict()[key]), key
    with pytest.raises(ValueError, match='widen_factor'):  # the layout is still checked
        load_checkpoint(_smoke_segmentor(widen_factor=2), path, map_location='cpu', strict=False)


def test_test_tool_refuses_a_config_without_test_loop(tmp_path):
    """tools/test.py on a pretraining config says there is nothing to test (was mmengine's RuntimeError
    '`self._test_loop` should not be None')."""
    config = osp.join(REPO_ROOT, 'configs/ddep/ddep_r18-tiny_cpu-smoke_pretrain_composited-seg.py')
    ckpt = tmp_path / 'x.pth'
    ckpt.write_bytes(b'')
    res = run_python(['tools/test.py', config, str(ckpt)])
    assert res.returncode != 0 and 'it has nothing to test' in res.stderr, res.stderr[-2000:]
    assert 'test_dataloader' in res.stderr
