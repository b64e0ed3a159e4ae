"""Bad input in each dataset layout fails before training, naming the config key and the path.

For every layout a shipped config reads: a missing annotation file (or list file / image folder where the
layout has no annotation file), an empty split and a wrong folder (``data_root`` typo). The checks are those
``tools/train.py`` and ``tools/test.py`` run before building the Runner (``check_data_paths``); one case
goes through ``tools/train.py`` itself.
"""

import glob
import json
import os
import os.path as osp
import re
import shutil

import pytest
from mmengine.config import Config

from mmssod.utils import check_data_paths

from ..conftest import REPO_ROOT, run_python

# layout -> (config (a glob under configs/: the first match, so renames of the schedule part do not matter),
#            split, dataset key, the file or folder the split reads, relative to the run folder)
LAYOUTS = {
    'coco': (
        'cal_detr/deformable-detr_r50_*_coco_dece.py',
        'train',
        'train_dataloader.dataset',
        'data/coco/annotations/instances_train2017.json',
    ),
    'coco-semi-split': (
        'acrst/acrst_faster-rcnn_r50-caffe_fpn_*_semi-0.1-coco.py',
        'train',
        'train_dataloader.dataset.datasets[0]',
        'data/coco/semi_anns/instances_train2017.1@10.json',
    ),
    'coco-corrupted': (
        'cal_detr/deformable-detr_r50_*_corrupted-coco_dece.py',
        'test',
        'test_dataloader.dataset',
        'data/coco/annotations/instances_val2017_corrupted.json',
    ),
    'voc': (
        'acrst/acrst_*_voc07-voc12.py',
        'train',
        'train_dataloader.dataset.datasets[1]',
        'data/VOCdevkit/annotations/voc12_trainval.json',
    ),
    'cityscapes-det': (
        'cal_detr/deformable-detr_r50_*_cityscapes-to-foggy_dece.py',
        'train',
        'train_dataloader.dataset',
        'data/cityscapes/annotations/instancesonly_filtered_gtFine_train.json',
    ),
    'foggy-cityscapes': (
        'cal_detr/deformable-detr_r50_*_cityscapes-to-foggy_dece.py',
        'test',
        'test_dataloader.dataset',
        'data/cityscapes/annotations/instancesonly_filtered_gtFine_val_foggy_beta_0.02.json',
    ),
    'cityscapes-seg': (
        'ddep/ddep_r50-unet1x_*_cityscapes-*_1pct.py',
        'train',
        'train_dataloader.dataset',
        'data/cityscapes/splits/train@1.txt',
    ),
    'ade20k': (
        'ddep/ddep_r50-unet1x_*_ade20k-*_5pct.py',
        'train',
        'train_dataloader.dataset',
        'data/ade/ADEChallengeData2016/splits/train@5.txt',
    ),
    'pascal-context': (
        'ddep/ddep_r50-unet1x_*_pascal-context-59-*[0-9].py',
        'val',
        'val_dataloader.dataset',
        'data/VOCdevkit/VOC2010/ImageSets/SegmentationContext/val.txt',
    ),
    'imagenet': (
        'ddep/ddep_r50-unet1x_*_in1k-224.py',
        'train',
        'train_dataloader.dataset',
        'data/imagenet/train',
    ),
    'market1501': (
        'spcl/spcl_r50_*_usl_market1501.py',
        'train',
        'train_dataloader.dataset',
        'data/market1501/bounding_box_train',
    ),
    'msmt17': (
        'spcl/spcl_r50_*_usl_msmt17.py',
        'val',
        'val_dataloader.dataset.datasets[0]',
        'data/msmt17/list_query.txt',
    ),
    'personx': (
        'spcl/spcl_r50_*_uda_personx-to-market1501.py',
        'train',
        'train_dataloader.dataset.source',
        'data/personx/bounding_box_train',
    ),
    'veri776': (
        'spcl/spcl_r50_*_uda_vehicleid-to-veri776.py',
        'val',
        'val_dataloader.dataset.datasets[1]',
        'data/veri776/image_test',
    ),
    'vehicleid': (
        'spcl/spcl_r50_*_uda_vehicleid-to-veri776.py',
        'train',
        'train_dataloader.dataset.source',
        'data/vehicleid/train_test_split/train_list.txt',
    ),
    'composited-det': (
        'acrst/acrst_faster-rcnn_r18_fpn_*_semi-0.1-composited-lt.py',
        'train',
        'train_dataloader.dataset.datasets[1]',
        'data/composited_lt_det/semi_anns/instances_train.1@10-unlabeled.json',
    ),
    'composited-seg': (
        'ddep/ddep_r18-unet1x_*_composited-seg-10pct.py',
        'train',
        'train_dataloader.dataset',
        'data/composited_seg/splits/train.1@10.txt',
    ),
    'composited-reid': (
        'spcl/spcl_r18_*_usl_composited-reid.py',
        'train',
        'train_dataloader.dataset',
        'data/composited_reid/target/bounding_box_train',
    ),
}


def _dataset_at(cfg, key):
    node = cfg
    for name, index in re.findall(r'(\w+)(?:\[(\d+)\])?', key):
        node = node[name]
        if index:
            node = node[int(index)]
    return node


@pytest.fixture
def run_copy(mini_run_dir, tmp_path, monkeypatch):
    """A private copy of the miniature data (the cases break files), as the working directory."""

    def make(rel_path):
        broken = rel_path.split('/')[1]
        for name in os.listdir(osp.join(mini_run_dir, 'data')):
            src, dst = osp.join(mini_run_dir, 'data', name), tmp_path / 'data' / name
            dst.parent.mkdir(exist_ok=True)
            shutil.copytree(src, dst) if name == broken else os.symlink(src, dst)
        monkeypatch.chdir(tmp_path)
        return tmp_path

    return make


def _config(layout):
    matches = sorted(glob.glob(osp.join(REPO_ROOT, 'configs', LAYOUTS[layout][0])))
    assert matches, f'no config matches {LAYOUTS[layout][0]}'
    return matches[0]


def _check(layout):
    return Config.fromfile(_config(layout)), LAYOUTS[layout][1]


@pytest.mark.parametrize('layout', sorted(LAYOUTS))
def test_intact_layout_passes(layout, run_copy):
    run_copy(LAYOUTS[layout][3])
    cfg, split = _check(layout)
    check_data_paths(cfg, splits=(split,))


@pytest.mark.parametrize('layout', sorted(LAYOUTS))
def test_missing_annotation_file(layout, run_copy):
    _, _, key, rel = LAYOUTS[layout]
    run_copy(rel)
    shutil.rmtree(rel) if osp.isdir(rel) else os.remove(rel)
    cfg, split = _check(layout)
    with pytest.raises(FileNotFoundError) as err:
        check_data_paths(cfg, splits=(split,))
    assert key in str(err.value) and rel in str(err.value), str(err.value)


@pytest.mark.parametrize('layout', sorted(LAYOUTS))
def test_empty_split(layout, run_copy):
    _, _, key, rel = LAYOUTS[layout]
    run_copy(rel)
    if osp.isdir(rel):
        for dirpath, _, files in os.walk(rel):
            for f in files:
                os.remove(osp.join(dirpath, f))
    elif rel.endswith('.json'):
        with open(rel) as f:
            coco = json.load(f)
        with open(rel, 'w') as f:
            json.dump(dict(coco, images=[], annotations=[]), f)
    else:
        open(rel, 'w').close()
    cfg, split = _check(layout)
    with pytest.raises(FileNotFoundError) as err:
        check_data_paths(cfg, splits=(split,))
    msg = str(err.value)
    assert key in msg and rel.rsplit('/', 1)[0] in msg and ('empty' in msg or 'no images' in msg), msg


@pytest.mark.parametrize('layout', sorted(LAYOUTS))
def test_wrong_folder(layout, run_copy):
    _, _, key, rel = LAYOUTS[layout]
    run_copy(rel)
    cfg, split = _check(layout)
    dataset = _dataset_at(cfg, key)
    wrong = dataset['data_root'].rstrip('/') + '_typo/'
    dataset['data_root'] = wrong
    with pytest.raises(FileNotFoundError) as err:
        check_data_paths(cfg, splits=(split,))
    assert f'{key}.data_root' in str(err.value) and wrong in str(err.value), str(err.value)


def test_train_tool_stops_before_training(run_copy):
    """tools/train.py: an empty split is reported before the Runner is built."""
    _, _, key, rel = LAYOUTS['msmt17']
    run_dir = run_copy(rel)
    open(rel, 'w').close()
    config = _config('msmt17')
    res = run_python([osp.join(REPO_ROOT, 'tools/train.py'), config], cwd=str(run_dir))
    assert res.returncode != 0
    assert key in res.stderr and rel in res.stderr, res.stderr[-3000:]
    assert 'Config:' not in res.stdout + res.stderr, 'the Runner was built before the check'
