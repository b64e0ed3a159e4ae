"""The composited dataset configs load and build with mmdet's datasets / pipelines (and MarketReIDDataset)."""

import contextlib
import copy
import logging
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmssod  # noqa: F401  (registers MarketReIDDataset)
from tools.benchmarks.composited import FMNIST_CLASSES, PROVENANCE, SEG_CLASSES

CONFIG_DIR = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs', '_base_', 'datasets'
)


def _cfg(name):
    return Config.fromfile(osp.join(CONFIG_DIR, name))


def _build(dataset_cfg, **root):
    from mmdet.registry import DATASETS

    cfg = copy.deepcopy(dataset_cfg.to_dict() if hasattr(dataset_cfg, 'to_dict') else dataset_cfg)
    if cfg['type'] == 'ConcatDataset':
        cfg['datasets'] = [_patch(d, **root) for d in cfg['datasets']]
    else:
        cfg = _patch(cfg, **root)
    init_default_scope('mmdet')
    return DATASETS.build(cfg)


def _patch(cfg, data_root):
    return {**cfg, 'data_root': data_root}


@pytest.mark.parametrize('name', ['composited_lt_det.py', 'composited_det_demo.py'])
def test_detection_config_builds_coco_dataset(name, det_root):
    cfg = _cfg(name)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        ds = _build(cfg[loader].dataset, data_root=det_root + '/')
        assert type(ds).__name__ == 'CocoDataset'
        assert ds.metainfo['classes'] == FMNIST_CLASSES
        assert ds.metainfo['provenance'] == [PROVENANCE]
        assert len(ds) > 0
        item = ds[0]
        sample = item['data_samples']
        assert item['inputs'].shape[0] == 3
        assert len(sample.gt_instances.bboxes) > 0
        labels = sample.gt_instances.labels.numpy()
        assert labels.min() >= 0 and labels.max() < 10
    assert cfg.val_evaluator.type == 'CocoMetric' and cfg.val_evaluator.classwise


def test_corrupted_config_uses_corrupted_val(det_root):
    cfg = _cfg('composited_lt_det_corrupted.py')
    assert cfg.test_dataloader.dataset.ann_file.endswith('instances_val_corrupted.json')
    assert cfg.test_evaluator.ann_file.endswith('annotations/instances_val_corrupted.json')
    assert cfg.val_dataloader.dataset.ann_file.endswith('instances_val.json'), 'val stays clean'
    ds = _build(cfg.test_dataloader.dataset, data_root=det_root + '/')
    assert ds.get_data_info(0)['img_path'].startswith(osp.join(det_root, 'val_corrupted'))
    assert len(ds[0]['data_samples'].gt_instances.bboxes) > 0


def test_semi_config_multibranch_pipelines_run(det_root):
    cfg = _cfg('semi_composited_lt_det.py')
    assert cfg.fold == 1 and cfg.percent == 10
    concat = _build(cfg.train_dataloader.dataset, data_root=det_root + '/')
    labeled, unlabeled = concat.datasets
    assert labeled.ann_file.endswith('semi_anns/instances_train.1@10.json')
    assert unlabeled.ann_file.endswith('semi_anns/instances_train.1@10-unlabeled.json')
    assert len(concat) == len(labeled) + len(unlabeled)
    sup = labeled[0]
    assert sup['inputs']['sup'].shape[0] == 3
    assert sup['inputs']['unsup_teacher'] is None and sup['inputs']['unsup_student'] is None
    assert len(sup['data_samples']['sup'].gt_instances.bboxes) > 0
    unsup = unlabeled[0]
    assert unsup['inputs']['sup'] is None
    assert unsup['inputs']['unsup_teacher'].shape[0] == unsup['inputs']['unsup_student'].shape[0] == 3
    assert len(unsup['data_samples']['unsup_teacher'].gt_instances.bboxes) == 0, 'LoadEmptyAnnotations'
    # the sampler of the config accepts the concatenated dataset
    from mmdet.registry import DATA_SAMPLERS

    sampler = DATA_SAMPLERS.build({**cfg.train_dataloader.sampler.to_dict(), 'dataset': concat})
    first = next(iter(sampler))
    assert 0 <= first < len(concat)


def test_segmentation_config_builds_base_seg_dataset(seg_root):
    cfg = _cfg('composited_seg.py')
    assert cfg.metainfo['classes'] == SEG_CLASSES
    assert _build(cfg.val_dataloader.dataset, data_root=seg_root + '/').metainfo['provenance'] == [PROVENANCE]
    for ds_cfg in (cfg.full_label_dataset, cfg.few_label_dataset, cfg.val_dataloader.dataset):
        ds = _build(ds_cfg, data_root=seg_root + '/')
        assert type(ds).__name__ == 'BaseSegDataset' and len(ds) > 0
        item = ds[0]
        seg = item['data_samples'].gt_sem_seg.sem_seg.numpy()
        assert seg.shape[-2:] == item['inputs'].shape[-2:]
        assert set(np.unique(seg)) <= set(range(len(SEG_CLASSES)))
    few = _build(cfg.few_label_dataset, data_root=seg_root + '/')
    full = _build(cfg.full_label_dataset, data_root=seg_root + '/')
    assert len(few) == int(0.1 * len(full))
    unl = _build(cfg.unlabeled_dataset, data_root=seg_root + '/')
    assert len(unl) > 0 and 'seg_map_path' not in unl.get_data_info(0)
    assert unl[0]['inputs'].shape[0] == 3


def test_reid_config_builds_market_datasets(reid_root):
    cfg = _cfg('composited_reid.py')
    for key, domain in (('source_train_dataset', 'source'), ('target_train_dataset', 'target')):
        ds = _build(cfg[key], data_root=osp.join(reid_root, domain))
        assert type(ds).__name__ == 'MarketReIDDataset' and len(ds) > 0
        item = ds[0]
        assert item['inputs'].shape[-2:] == (256, 128)
        meta = item['data_samples'].metainfo
        assert {'pid', 'camid', 'sample_idx'} <= set(meta)
        assert int(item['data_samples'].gt_label.label) == ds.get_data_info(0)['label']
    val = _build(cfg.val_dataloader.dataset, data_root=osp.join(reid_root, 'target'))
    assert val.metainfo['provenance'] == [PROVENANCE]
    subsets = {val.get_data_info(i)['subset'] for i in range(len(val))}
    assert subsets == {'query', 'gallery'}
    assert val[0]['data_samples'].metainfo['subset'] == 'query'


@contextlib.contextmanager
def _logged_warnings():
    """Collect the WARNING (and worse) records of mmengine's current logger."""
    from mmengine.logging import MMLogger

    records = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def test_dataset_configs_build_without_warnings(det_root, seg_root, reid_root):
    """Provenance travels in metainfo as a list: a str value would be read as a meta-file path (a warning)."""
    builds = [
        ('composited_lt_det.py', 'val_dataloader', det_root + '/'),
        ('semi_composited_lt_det.py', 'train_dataloader', det_root + '/'),
        ('composited_seg.py', 'val_dataloader', seg_root + '/'),
        ('composited_reid.py', 'val_dataloader', osp.join(reid_root, 'target')),
    ]
    for name, loader, root in builds:
        with _logged_warnings() as records:
            ds = _build(_cfg(name)[loader].dataset, data_root=root)
        assert [r.getMessage() for r in records] == [], name
        metainfo = (ds.datasets[0] if hasattr(ds, 'datasets') else ds).metainfo
        assert metainfo['provenance'] == [PROVENANCE], name
