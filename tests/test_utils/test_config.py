import importlib.util
import json
import os.path as osp

import pytest
from mmengine.config import Config

from mmssod.utils import check_data_paths, config_path, config_root, get_config, get_model_cfg


@pytest.mark.parametrize(
    'name',
    [
        'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
        'dino/dino-4scale_r50_8xb2-12e_coco.py',
        'soft_teacher/soft-teacher_faster-rcnn_r50-caffe_fpn_180k_semi-0.1-coco.py',
    ],
)
def test_loads_installed_mmdet_configs(name):
    cfg = get_config(f'mmdet::{name}')
    assert cfg.model.type in ('FasterRCNN', 'DINO', 'SoftTeacher')
    assert get_model_cfg(name) == cfg.model


def test_mmpretrain_and_missing_configs(monkeypatch):
    assert get_config('resnet/resnet18_8xb32_in1k.py', package='mmpretrain').model.backbone.depth == 18
    with pytest.raises(FileNotFoundError, match='nope.py'):
        get_config('mmdet::faster_rcnn/nope.py')
    with pytest.raises(ValueError, match="configs of package 'not_a_package'"):
        get_config('not_a_package::x/y.py')
    # a package MMEngine knows but that is not installed: an error, never MMEngine's `pip install`
    monkeypatch.setattr(
        'mmengine.hub.hub.install_package', lambda package: pytest.fail(f'pip install {package}')
    )
    if importlib.util.find_spec('mmocr') is None:
        with pytest.raises(ModuleNotFoundError, match="package 'mmocr' is not installed"):
            get_config('mmocr::dbnet/dbnet_resnet18_fpnc_1200e_icdar2015.py')


def test_loads_own_configs():
    name = 'cal_detr/cal-dino-4scale_r50_8xb2-12e_coco.py'
    path = config_path(f'mmssod::{name}')
    assert path == osp.join(config_root(), name)
    assert get_config(f'mmssod::{name}').filename == path
    assert get_config(name, package='mmssod').model.type == get_config(f'mmssod::{name}').model.type
    with pytest.raises(FileNotFoundError, match="config 'nope.py' not found in mmssod"):
        config_path('mmssod::nope.py')
    with pytest.raises(ValueError, match='mmssod configs only'):
        config_path('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')


def _cfg_with_ann(data_root, ann_file):
    return Config(
        dict(
            train_dataloader=dict(
                dataset=dict(
                    type='RepeatDataset',
                    times=2,
                    dataset=dict(type='CocoDataset', data_root=str(data_root), ann_file=ann_file),
                )
            )
        )
    )


def test_check_data_paths_names_the_key(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        check_data_paths(_cfg_with_ann(tmp_path, 'annotations/missing.json'))
    assert 'train_dataloader.dataset.dataset.ann_file' in str(err.value)
    assert str(tmp_path / 'annotations/missing.json') in str(err.value)

    broken = tmp_path / 'broken.json'
    broken.write_text(json.dumps({'images': [], 'annotations': []})[:-5])  # truncated download
    with pytest.raises(ValueError, match='not a complete JSON document'):
        check_data_paths(_cfg_with_ann(tmp_path, 'broken.json'))

    good = tmp_path / 'good.json'
    good.write_text(json.dumps({'images': [{'id': 1}], 'annotations': [], 'categories': []}))
    check_data_paths(_cfg_with_ann(tmp_path, 'good.json'))
