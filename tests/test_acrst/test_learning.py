"""ACRST can learn: the student's loss on unlabeled images falls within a few steps.

One real batch of the demo set (composited from real images; 2 labeled + 2 unlabeled images through the demo
config's pipelines, the unlabeled student view with a CropBank paste from the labeled set) is trained on
repeatedly through ``ACRST.train_step`` with the demo config's optimiser. The teacher (a copy of the initial
student; no EMA hook runs here) pseudo-labels the unlabeled images; the student's unsupervised loss on
those pseudo-labels and pastes must fall below half its first value. With lr 0 it cannot: the same steps
leave it where it started.
"""

import copy
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.registry import DATASETS, MODELS
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from mmssod.datasets.cropbank import CropBank

from .conftest import ACRST_DEMO, demo_config
from .test_detector import with_bank_file

STEPS = 10
#: the student's losses on the unlabeled images (classification terms: the regression terms only see pastes)
UNSUP_LOSSES = ('unsup_loss_rpn_cls', 'unsup_loss_cls')


@pytest.fixture(scope='module')
def fixed_batch(demo_det_root, tmp_path_factory):
    """One training batch of the demo config with pastes from a label CropBank, and that config."""
    cfg = demo_config(
        ACRST_DEMO,
        demo_det_root,
        tmp_path_factory.mktemp('acrst_learning'),
        **{
            'model.semi_train_cfg.ml_scores_file': None,  # filter stage 2 off: no SSMLL run needed
            'model.semi_train_cfg.burn_in_iters': 0,  # the unsupervised loss from the first step
            'train_dataloader.num_workers': 0,
            'train_dataloader.persistent_workers': False,
        },
    )
    init_default_scope('mmdet')
    labeled = DATASETS.build(copy.deepcopy(cfg.train_dataloader.dataset.datasets[0]))
    bank = CropBank(cfg.model.detector.roi_head.bbox_head.num_classes)
    bank.build_label_bank(labeled.get_data_info(i) for i in range(len(labeled)))
    bank_file = osp.join(cfg.work_dir, 'cropbank.pkl')
    bank.save(bank_file)
    np.random.seed(0)
    torch.manual_seed(0)
    loader = Runner.build_dataloader(with_bank_file(copy.deepcopy(cfg.train_dataloader), bank_file), seed=0)
    return cfg, next(iter(loader))


def unsup_loss_curve(cfg, batch, lr, steps=STEPS):
    """Train the ACRST student on ``batch`` for ``steps`` steps at ``lr``; per-step logs."""
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.copy_student_to_teacher()  # as MeanTeacherHook does before training
    model.train()
    optim_cfg = copy.deepcopy(cfg.optim_wrapper)
    optim_cfg.optimizer.lr = lr
    optim_wrapper = build_optim_wrapper(model, optim_cfg)
    return [
        {k: float(v) for k, v in model.train_step(copy.deepcopy(batch), optim_wrapper).items()}
        for _ in range(steps)
    ]


@pytest.mark.parametrize('lr', [pytest.param('config', id='config-lr'), pytest.param(0.0, id='lr0')])
def test_student_loss_on_pseudo_labels_and_pastes_falls(fixed_batch, lr):
    cfg, batch = fixed_batch
    lr = cfg.optim_wrapper.optimizer.lr if lr == 'config' else lr
    logs = unsup_loss_curve(cfg, batch, lr)
    assert logs[0]['unsup_num_pasted'] > 0 and logs[0]['unsup_num_pseudo'] > 0  # what the student learns from
    curve = np.array([sum(log[k] for k in UNSUP_LOSSES) for log in logs])
    fell = curve[-3:].mean() < 0.5 * curve[0]
    assert fell == (lr > 0), (lr, curve.round(3).tolist())
