"""Cal-DETR on a GPU: the mixing loss reuses the Hungarian assignment of the last layer's classification loss
(the same matching, bit for bit) instead of running the assigner again, and a training iteration makes no
more host syncs than stock DINO / Deformable-DETR's own plus at most 2 in mmssod (counted on CPU)."""

import os.path as osp

import pytest
import torch

from tests.conftest import REPO_ROOT
from tests.test_acrst.conftest import demo_config
from tests.test_acrst.sync_counting import count_training_syncs

from .conftest import DDETR_CFG, DINO_CFG, build_tiny, make_batch

CONFIGS = osp.join(REPO_ROOT, 'configs/cal_detr')
SMOKE = {
    'CalDINOHead': ('cal-dino-4scale', 'dino-4scale'),
    'CalDeformableDETRHead': ('cal-deformable-detr', 'deformable-detr'),
}


@pytest.mark.parametrize('config,head', [(DINO_CFG, 'CalDINOHead'), (DDETR_CFG, 'CalDeformableDETRHead')])
def test_mixing_loss_reuses_the_assignment_of_the_classification_loss(config, head, monkeypatch):
    model = build_tiny(config, head)
    model.train()
    inputs, samples = make_batch(seed=1)
    bbox_head = model.bbox_head
    assign = bbox_head.assigner.assign
    calls = []
    monkeypatch.setattr(bbox_head.assigner, 'assign', lambda *a, **k: calls.append(1) or assign(*a, **k))
    captured = {}
    loss_mix_by_feat = bbox_head.loss_mix_by_feat

    def spy(*args):
        captured['args'] = args
        return loss_mix_by_feat(*args)

    monkeypatch.setattr(bbox_head, 'loss_mix_by_feat', spy)
    torch.manual_seed(0)
    losses = model.loss(inputs, samples)
    with_mixing = len(calls)
    bbox_head.logit_mixing = False
    calls.clear()
    torch.manual_seed(0)
    model.loss(inputs, samples)
    assert with_mixing == len(calls) > 0  # the mixing loss ran no assignment of its own
    *args, assignment = captured['args']
    assert len(assignment) == len(samples)
    bbox_head.logit_mixing = True
    assigned_here = bbox_head.loss_mix_by_feat(*args, None)  # the assigner run for the mixing loss alone
    assert losses['loss_mix'] > 0 and torch.equal(losses['loss_mix'], assigned_here)


@pytest.mark.parametrize('head', list(SMOKE))
def test_training_iteration_syncs_as_stock_plus_at_most_2(demo_det_root, tmp_path, head):
    counts = {}
    for name in SMOKE[head]:
        path = osp.join(CONFIGS, f'{name}_tiny_cpu-smoke_composited-demo.py')
        (syncs,), runner = count_training_syncs(demo_config(path, demo_det_root, tmp_path / name))
        counts[name] = syncs
    cal, stock = (counts[name] for name in SMOKE[head])
    assert runner.model.bbox_head.__class__.__name__ != head  # the last run is the stock model
    assert stock.count('mmssod') == 0
    assert cal.count('mmssod') <= 2, cal.table('mmssod')
    assert cal.count() <= stock.count() + 2, (cal.count(), stock.count())
