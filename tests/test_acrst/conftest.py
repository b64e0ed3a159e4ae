"""Helpers for the ACRST tests: the demo configs pointed at the session's demo data and tiny schedules."""

import os.path as osp

import pytest
from mmengine.config import Config

from tests.conftest import REPO_ROOT

ACRST_DEMO = osp.join(
    REPO_ROOT, 'configs/acrst/acrst_faster-rcnn_efficientnet-lite0_fpn_semi-0.25-composited-demo.py'
)
SSMLL_DEMO = osp.join(REPO_ROOT, 'configs/acrst/ssmll/ssmll_efficientnet-lite0_semi-0.25-composited-demo.py')


def _retarget(node, old, new):
    """Replace the demo data prefix in every string of a config tree (in place)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and value.startswith(old):
                node[key] = new + value[len(old) :]
            else:
                _retarget(value, old, new)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, str) and value.startswith(old):
                node[i] = new + value[len(old) :]
            else:
                _retarget(value, old, new)


def demo_config(path, data_root, work_dir=None, **options):
    """Load a demo config with its data under ``data_root`` (and optional dotted-key overrides)."""
    cfg = Config.fromfile(path)
    _retarget(cfg._cfg_dict, 'data/composited_det_demo/', data_root.rstrip('/') + '/')
    if work_dir is not None:
        cfg.work_dir = str(work_dir)
    if options:
        cfg.merge_from_dict(options)
    return cfg


@pytest.fixture
def acrst_cfg(demo_det_root, tmp_path):
    """The ACRST demo config on the session's demo data, stage 2 off, small workloads."""
    return demo_config(
        ACRST_DEMO,
        demo_det_root,
        tmp_path / 'work',
        **{'model.semi_train_cfg.ml_scores_file': None, 'train_dataloader.num_workers': 0},
    )
