"""Every config in configs/acrst/ loads with Config.fromfile and builds its model; key settings are right."""

import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

from tests.conftest import REPO_ROOT

ACRST_CONFIGS = sorted(glob.glob(osp.join(REPO_ROOT, 'configs/acrst/acrst_*.py')))
SSMLL_CONFIGS = sorted(glob.glob(osp.join(REPO_ROOT, 'configs/acrst/ssmll/ssmll_*.py')))


def pipeline_types(pipeline):
    return [t['type'] for t in pipeline]


def test_configs_found():
    assert len(ACRST_CONFIGS) == 10 and len(SSMLL_CONFIGS) == 10


@pytest.mark.parametrize('path', ACRST_CONFIGS, ids=osp.basename)
def test_acrst_config_builds(path):
    from mmdet.registry import MODELS

    cfg = Config.fromfile(path)
    semi = cfg.model.semi_train_cfg
    assert cfg.model.type == 'ACRST' and semi.tau_cls == 0.7 and semi.tau_ml == 0.2
    assert semi.ml_scores_file.endswith('unlabeled_scores.json') and not semi.regress_pseudo
    labeled, unlabeled = cfg.train_dataloader.dataset.datasets
    sup = pipeline_types(labeled.pipeline)
    assert sup.index('ACRSTPaste') == len(sup) - 2  # just before MultiBranch(PackDetInputs)
    student = unlabeled.pipeline[-1]['unsup_student']
    assert pipeline_types(student)[-2:] == ['ACRSTPaste', 'PackDetInputs']
    assert {'pasted_bboxes', 'pasted_labels'} <= set(student[-1]['meta_keys'])
    assert 'ACRSTPaste' not in pipeline_types(unlabeled.pipeline[-1]['unsup_teacher'])
    hooks = {h['type']: h for h in cfg.custom_hooks}
    assert hooks['CropBankHook']['beta'] == 0.6 and 'MeanTeacherHook' in hooks
    name = osp.basename(path)
    if 'coco' in name and 'additional' not in name:
        pct = name.split('semi-')[1].split('-coco')[0]
        assert labeled.ann_file.endswith(f'1@{int(float(pct) * 100)}.json')
        assert unlabeled.ann_file.endswith(f'1@{int(float(pct) * 100)}-unlabeled.json')
        assert semi.unsup_weight == 4.0 and cfg.optim_wrapper.optimizer.lr == 0.01
        assert hooks['MeanTeacherHook']['momentum'] == pytest.approx(0.0004)
        assert pct in semi.ml_scores_file
    if 'voc' in name:
        assert cfg.model.detector.roi_head.bbox_head.num_classes == 20
        assert labeled.ann_file.endswith('voc07_trainval.json') and unlabeled.ann_file.endswith(
            'voc12_trainval.json'
        )
    init_default_scope('mmdet')
    cfg.model.semi_train_cfg.ml_scores_file = None  # the SSMLL scores exist only after the SSMLL run
    cfg.model.detector.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    assert model.num_classes == (20 if 'voc' in name else 80 if 'coco' in name else 10)


@pytest.mark.parametrize('path', SSMLL_CONFIGS, ids=osp.basename)
def test_ssmll_config_builds(path):
    from mmpretrain.registry import MODELS

    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmpretrain' and cfg.model.type == 'SSMLL'
    assert cfg.score_dataset.labeled is False
    assert cfg.score_dataset.ann_file == cfg.train_dataloader.dataset.datasets[1].ann_file
    assert cfg.train_dataloader.sampler.source_ratio == [1, 1]
    init_default_scope('mmpretrain')
    cfg.model.classifier.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    assert hasattr(model, 'teacher') and hasattr(model, 'student')


PAPER_BURN_IN = {  # (AAAI 2022) COCO-standard 1 / 2 / 5 / 10 %, VOC
    'acrst_faster-rcnn_r50-caffe_fpn_180k_semi-0.01-coco.py': 3000,
    'acrst_faster-rcnn_r50-caffe_fpn_180k_semi-0.02-coco.py': 5000,
    'acrst_faster-rcnn_r50-caffe_fpn_180k_semi-0.05-coco.py': 5000,
    'acrst_faster-rcnn_r50-caffe_fpn_180k_semi-0.1-coco.py': 10000,
    'acrst_faster-rcnn_r50-caffe_fpn_72k_voc07-voc12.py': 5000,
}
PAPER_SSMLL_PRETRAIN = {  # supervised pre-training of SSMLL: VOC / COCO-standard / COCO-additional
    'ssmll_r50_8xb16-18k_voc07-voc12.py': 2000,
    'ssmll_r50_8xb16-36k_semi-0.01-coco.py': 2000,
    'ssmll_r50_8xb16-36k_semi-0.1-coco.py': 2000,
    'ssmll_r50_8xb16-96k_coco-additional.py': 6000,
}


@pytest.mark.parametrize('name', sorted(PAPER_BURN_IN))
def test_paper_burn_in_and_schedule(name):
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs/acrst', name))
    assert cfg.model.semi_train_cfg.burn_in_iters == PAPER_BURN_IN[name]
    assert cfg.train_cfg.max_iters == (72000 if 'voc' in name else 180000)
    hook = {h['type']: h for h in cfg.custom_hooks}['CropBankHook']
    assert hook.get('label_cap') is None and hook['pr_form'] == 'aaai'  # the whole labeled set, AAAI PR


@pytest.mark.parametrize('name', sorted(PAPER_SSMLL_PRETRAIN))
def test_ssmll_paper_pretraining_and_views(name):
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs/acrst/ssmll', name))
    assert cfg.model.pretrain_iters == PAPER_SSMLL_PRETRAIN[name]
    assert cfg.model.data_preprocessor.type == 'MultiViewClsDataPreprocessor'
    for dataset in cfg.train_dataloader.dataset.datasets:
        (views,) = [t for t in dataset.pipeline if t['type'] == 'MultiView']
        weak, strong = (pipeline_types(v) for v in views['transforms'])
        assert {'ColorJitter', 'GaussianBlur', 'RandomErasing'} <= set(strong) - set(weak)


def test_ssmll_views_run_on_an_image(tmp_path):
    """Both views of the SSMLL train pipelines run (many random draws), giving [weak, strong] tensors."""
    import mmcv
    import numpy as np
    from mmengine.dataset import Compose

    init_default_scope('mmpretrain')
    img = str(tmp_path / 'img.png')
    mmcv.imwrite(np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8), img)
    for name in ('ssmll_r18_semi-0.1-composited-lt.py', 'ssmll_r50_8xb16-36k_semi-0.1-coco.py'):
        cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs/acrst/ssmll', name))
        pipeline = Compose(cfg.train_pipeline)
        np.random.seed(0)
        for _ in range(30):
            out = pipeline({'img_path': img, 'img_id': 1, 'labeled': False, 'gt_label': []})
            assert len(out['inputs']) == 2 and out['inputs'][0].shape == out['inputs'][1].shape
