"""Host syncs (each a GPU stall, counted on CPU) of a training iteration in mmssod's own lines: ACRST at most
3 per batch whatever its number of unlabeled images, SSMLL at most 2. The iteration is the demo config's
second (after a warm-up), with pseudo-labels, filter stage 2 and CropBank pastes all at work."""

import json
import os
import random

import pytest

from mmssod.datasets.cropbank import CROPBANK_ENV

from .conftest import ACRST_DEMO, SSMLL_DEMO, demo_config
from .sync_counting import count_training_syncs


def acrst_cfg_with(demo_det_root, work_dir, num_unlabeled):
    cfg = demo_config(
        ACRST_DEMO,
        demo_det_root,
        work_dir,
        **{
            'model.semi_train_cfg.burn_in_iters': 0,
            'model.semi_train_cfg.tau_cls': 0.0,  # an untrained teacher: keep its detections as pseudo-labels
            'model.semi_train_cfg.rpn_pseudo_thr': 0.1,
            'model.semi_train_cfg.cls_pseudo_thr': 0.1,
            'train_dataloader.batch_size': 2 * num_unlabeled,
            'train_dataloader.sampler.batch_size': 2 * num_unlabeled,
        },
    )
    unlabeled = cfg.train_dataloader.dataset.datasets[1]
    with open(unlabeled.data_root + unlabeled.ann_file) as f:
        images = json.load(f)['images']
    rng = random.Random(0)
    scores = {
        'classes': None,
        'scores': {str(im['id']): [rng.random() for _ in range(10)] for im in images},  # stage 2 drops some
        'file_names': {str(im['id']): im['file_name'] for im in images},
    }
    path = work_dir / 'ssmll_scores.json'
    path.write_text(json.dumps(scores))
    cfg.model.semi_train_cfg.ml_scores_file = str(path)
    return cfg


@pytest.mark.parametrize('num_unlabeled', [2, 4])
def test_acrst_iteration_syncs_at_most_3_times_per_batch(demo_det_root, tmp_path, num_unlabeled):
    cfg = acrst_cfg_with(demo_det_root, tmp_path, num_unlabeled)
    announced = os.environ.get(CROPBANK_ENV)
    (syncs,), runner = count_training_syncs(cfg)
    assert os.environ.get(CROPBANK_ENV) == announced  # the run withdrew its bank file when it ended
    hub = runner.message_hub
    assert hub.get_scalar('train/unsup_num_pseudo').current() > 0  # pseudo-labels...
    assert hub.get_scalar('train/unsup_num_pasted').current() > 0  # ...and pastes took part
    assert syncs.count('mmssod') <= 3, syncs.table('mmssod')


def test_ssmll_iteration_syncs_at_most_twice(demo_det_root, tmp_path):
    cfg = demo_config(SSMLL_DEMO, demo_det_root, tmp_path, **{'model.pretrain_iters': 1})
    (syncs,), runner = count_training_syncs(cfg)  # iteration 1: pre-training over, unlabeled loss on
    assert runner.message_hub.get_scalar('train/loss_unsup').current() > 0
    assert syncs.count('mmssod') <= 2, syncs.table('mmssod')
