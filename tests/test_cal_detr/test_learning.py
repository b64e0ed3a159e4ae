"""Cal-DETR can learn: the calibrated head's classification and mixing losses fall within a few steps.

The Cal-DINO and Cal-Deformable-DETR CPU smoke configs (tiny detectors with ``CalDINOHead`` /
``CalDeformableDETRHead``: logit modulation and mixing on) are trained through ``train_step`` with their own
optimiser on one real batch of the demo set (composited from real images). The last layer's ``loss_cls``,
computed on the modulated logits, and ``loss_mix`` must fall below 65% of their first values (mean of the
last 3 steps). With lr 0 they cannot: they stay where they started.
"""

import copy
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from tests.conftest import REPO_ROOT

SMOKE_CONFIGS = {
    'cal-dino': 'cal-dino-4scale_tiny_cpu-smoke_composited-demo.py',
    'cal-deformable-detr': 'cal-deformable-detr_tiny_cpu-smoke_composited-demo.py',
}
STEPS = 12
BOUND = 0.65


@pytest.fixture(scope='module', params=sorted(SMOKE_CONFIGS))
def fixed_batch(request, demo_det_root):
    """A smoke config on the session's demo data, and one training batch of it."""
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs/cal_detr', SMOKE_CONFIGS[request.param]))
    cfg.train_dataloader.dataset.data_root = demo_det_root.rstrip('/') + '/'
    cfg.train_dataloader.update(num_workers=0, persistent_workers=False)
    init_default_scope('mmdet')
    np.random.seed(0)
    torch.manual_seed(0)
    return cfg, next(iter(Runner.build_dataloader(cfg.train_dataloader, seed=0)))


def loss_curve(cfg, batch, lr, steps=STEPS):
    """Train the detector on ``batch`` for ``steps`` steps at ``lr``; per-step logs."""
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(cfg.model))  # mmdet edits the head config it is given
    model.init_weights()
    model.train()
    optim_cfg = copy.deepcopy(cfg.optim_wrapper)
    optim_cfg.optimizer.lr = lr
    optim_wrapper = build_optim_wrapper(model, optim_cfg)
    return [
        {k: float(v) for k, v in model.train_step(copy.deepcopy(batch), optim_wrapper).items()}
        for _ in range(steps)
    ]


@pytest.mark.parametrize('lr', [pytest.param('config', id='config-lr'), pytest.param(0.0, id='lr0')])
def test_calibrated_classification_and_mixing_losses_fall(fixed_batch, lr):
    cfg, batch = fixed_batch
    head = cfg.model.bbox_head
    assert head.type.startswith('Cal') and head.logit_modulation and head.logit_mixing
    lr = cfg.optim_wrapper.optimizer.lr if lr == 'config' else lr
    logs = loss_curve(cfg, batch, lr)
    for key in ('loss_cls', 'loss_mix'):
        curve = np.array([log[key] for log in logs])
        fell = curve[-3:].mean() < BOUND * curve[0]
        assert fell == (lr > 0), (key, lr, curve.round(3).tolist())
