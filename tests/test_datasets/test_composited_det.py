"""Composited long-tailed detection: determinism, exact boxes, long tail, semi splits, corruptions, AP."""

import filecmp
import json
import os
import os.path as osp

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from tools.benchmarks.composited import detection as det
from tools.benchmarks.composited.canvas import long_tail_counts, long_tail_weights
from tools.benchmarks.composited.corruptions import CORRUPTIONS
from tools.benchmarks.composited.files import load_image

SMALL = det.DetectionConfig(
    num_train=30,
    num_val=10,
    height=96,
    width=96,
    objects_per_image=(1, 4),
    size_range=(16, 48),
    percents=(10,),
    folds=(1,),
)


def ann_path(root, name):
    return osp.join(root, 'annotations', name)


def _load(path):
    with open(path) as f:
        return json.load(f)


def _tree_files(root):
    out = []
    for dirpath, _, files in os.walk(root):
        out += [osp.relpath(osp.join(dirpath, f), root) for f in files]
    return sorted(out)


def test_same_seed_is_byte_identical_and_other_seed_differs(tmp_path, fmnist_available):
    a, b, c = (str(tmp_path / n) for n in 'abc')
    det.build_detection(a, seed=3, cfg=SMALL)
    det.build_detection(b, seed=3, cfg=SMALL)
    det.build_detection(c, seed=4, cfg=SMALL)
    files = _tree_files(a)
    assert files == _tree_files(b)
    assert (
        any(f.startswith('semi_anns/') for f in files) and 'annotations/instances_val_corrupted.json' in files
    )
    for f in files:  # every json and every image
        assert filecmp.cmp(osp.join(a, f), osp.join(b, f), shallow=False), f
    for f in ('annotations/instances_train.json', 'annotations/instances_val.json'):
        assert not filecmp.cmp(osp.join(a, f), osp.join(c, f), shallow=False)


def test_boxes_are_tight_around_visible_mask_pixels(det_root):
    for split in ('train', 'val'):
        coco = _load(ann_path(det_root, f'instances_{split}.json'))
        by_image = {}
        for ann in coco['annotations']:
            by_image.setdefault(ann['image_id'], []).append(ann)
        assert len(coco['annotations']) > 0
        for img in coco['images']:
            union = np.zeros((img['height'], img['width']), dtype=np.int32)
            for ann in by_image.get(img['id'], []):
                mask = mask_utils.decode(ann['segmentation']).astype(bool)
                assert mask.shape == (img['height'], img['width'])
                ys, xs = np.nonzero(mask)
                assert len(ys) == ann['area'] > 0
                x0, y0, x1, y1 = xs.min(), ys.min(), xs.max(), ys.max()
                assert ann['bbox'] == [float(x0), float(y0), float(x1 - x0 + 1), float(y1 - y0 + 1)]
                assert ann['iscrowd'] == 0 and 1 <= ann['category_id'] <= 10
                union += mask
            assert union.max() <= 1, 'visible masks of one image must not overlap'


def test_long_tail_counts_formula():
    counts = long_tail_counts(100_000, 10, 50.0)
    assert counts.sum() == 100_000
    assert np.all(np.diff(counts) < 0)
    assert counts[0] / counts[-1] == pytest.approx(50.0, rel=0.01)
    w = long_tail_weights(10, 50.0, class_order=[9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
    assert w[9] / w[0] == pytest.approx(50.0) and np.isclose(w.sum(), 1.0)
    assert np.all(long_tail_counts(37, 10, 1.0) >= 3)


def test_class_histogram_follows_requested_tail(det_root, tiny_det_cfg):
    meta = _load(osp.join(det_root, 'meta.json'))
    coco = _load(ann_path(det_root, 'instances_train.json'))
    hist = np.asarray(det.class_histogram(coco))
    assert hist.tolist() == meta['class_histogram']['train']
    assert np.all(np.diff(hist) <= 0), hist  # natural order: class 0 is the head
    if 'dropped' not in coco['info']['description']:
        assert hist.tolist() == long_tail_counts(int(hist.sum()), 10, tiny_det_cfg.imbalance_ratio).tolist()
    # ~900 instances: the tail class has ~6, so allow for integer rounding
    assert hist[0] / hist[-1] == pytest.approx(tiny_det_cfg.imbalance_ratio, rel=0.25)
    val = np.asarray(det.class_histogram(_load(ann_path(det_root, 'instances_val.json'))))
    assert val[0] / val[-1] == pytest.approx(tiny_det_cfg.val_imbalance_ratio, rel=0.35)
    assert val.min() >= 5, 'val keeps enough tail instances for per-class AP'


def test_semi_splits_disjoint_complete_and_named_like_mmdet(det_root, tiny_det_cfg):
    train = _load(ann_path(det_root, 'instances_train.json'))
    all_ids = {img['id'] for img in train['images']}
    all_anns = {a['id'] for a in train['annotations']}
    for fold in tiny_det_cfg.folds:
        for percent in tiny_det_cfg.percents:
            lab = _load(osp.join(det_root, 'semi_anns', f'instances_train.{fold}@{percent}.json'))
            unl = _load(osp.join(det_root, 'semi_anns', f'instances_train.{fold}@{percent}-unlabeled.json'))
            lab_ids = {img['id'] for img in lab['images']}
            unl_ids = {img['id'] for img in unl['images']}
            assert not lab_ids & unl_ids
            assert lab_ids | unl_ids == all_ids
            assert len(lab_ids) == int(percent * len(all_ids) / 100) >= 1
            assert {a['id'] for a in lab['annotations']} | {a['id'] for a in unl['annotations']} == all_anns
            assert all(a['image_id'] in lab_ids for a in lab['annotations'])
            assert lab['categories'] == train['categories']
            if len(lab_ids) >= 10:  # the coverage repair gives every class a labeled instance when possible
                assert len({a['category_id'] for a in lab['annotations']}) == 10
    one = _load(osp.join(det_root, 'semi_anns', 'instances_train.1@10.json'))
    two = _load(osp.join(det_root, 'semi_anns', 'instances_train.2@10.json'))
    assert {i['id'] for i in one['images']} != {i['id'] for i in two['images']}, 'folds differ'


def test_coco_eval_of_ground_truth_against_itself_is_perfect(det_root):
    gt = COCO(ann_path(det_root, 'instances_val.json'))
    dets = [
        {
            'image_id': a['image_id'],
            'category_id': a['category_id'],
            'bbox': a['bbox'],
            'segmentation': a['segmentation'],
            'score': 1.0,
        }
        for a in gt.dataset['annotations']
    ]
    for iou_type in ('bbox', 'segm'):
        ev = COCOeval(gt, gt.loadRes(dets), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        assert ev.stats[0] == pytest.approx(1.0), iou_type  # AP@[.5:.95]
        assert ev.stats[1] == pytest.approx(1.0), iou_type  # AP@.5


def test_corrupted_val_keeps_annotations_and_records_corruption(det_root):
    val = _load(ann_path(det_root, 'instances_val.json'))
    cor = _load(ann_path(det_root, 'instances_val_corrupted.json'))
    assert cor['annotations'] == val['annotations']
    assert cor['categories'] == val['categories']
    assert [i['file_name'] for i in cor['images']] == [i['file_name'] for i in val['images']]
    names = set()
    for clean, bad in zip(val['images'], cor['images']):
        assert bad['corruption'] in CORRUPTIONS and 1 <= bad['severity'] <= 5
        names.add(bad['corruption'])
        a = load_image(osp.join(det_root, 'val', clean['file_name']))
        b = load_image(osp.join(det_root, 'val_corrupted', bad['file_name']))
        assert a.shape == b.shape and not np.array_equal(a, b)
    assert len(names) >= 4


@pytest.mark.parametrize('name', sorted(CORRUPTIONS))
def test_each_corruption_keeps_shape_and_grows_with_severity(name):
    rng = np.random.default_rng(0)
    img = (rng.random((64, 80, 3)) * 60 + np.linspace(0, 180, 80)[None, :, None]).astype(np.uint8)
    diffs = []
    for severity in (1, 5):
        out = CORRUPTIONS[name](img, severity, np.random.default_rng(1))
        assert out.shape == img.shape and out.dtype == np.uint8
        diffs.append(np.abs(out.astype(float) - img).mean())
    assert diffs[1] > diffs[0] > 0


def test_ensure_demo_detection_builds_once_and_caches(tmp_path, fmnist_available):
    root = str(tmp_path / 'demo')
    assert det.ensure_demo_detection(root) == root
    meta = _load(osp.join(root, 'meta.json'))
    assert meta['complete'] and meta['params'] == det.DEMO_CONFIG.to_dict()
    assert meta['num_images'] == {'train': det.DEMO_CONFIG.num_train, 'val': det.DEMO_CONFIG.num_val}
    for rel in (
        'annotations/instances_train.json',
        'annotations/instances_val.json',
        'annotations/instances_val_corrupted.json',
        'semi_anns/instances_train.1@10.json',
        'semi_anns/instances_train.1@10-unlabeled.json',
        'semi_anns/instances_train.1@25.json',
        'semi_anns/instances_train.1@25-unlabeled.json',
    ):
        assert osp.isfile(osp.join(root, rel)), rel
    stamp = os.stat(osp.join(root, 'meta.json')).st_mtime_ns
    det.ensure_demo_detection(root)
    assert os.stat(osp.join(root, 'meta.json')).st_mtime_ns == stamp, 'cached set is not rebuilt'
    assert not [e for e in os.listdir(tmp_path) if 'building' in e], 'no temporary folder left behind'


def test_ensure_demo_detection_rebuilds_when_parameters_change(tmp_path, monkeypatch, fmnist_available):
    monkeypatch.setattr(det, 'DEMO_CONFIG', SMALL)
    root = str(tmp_path / 'demo')
    det.ensure_demo_detection(root, seed=0)
    first = _load(ann_path(root, 'instances_train.json'))
    det.ensure_demo_detection(root, seed=1)  # other parameters -> rebuilt
    meta = _load(osp.join(root, 'meta.json'))
    assert meta['seed'] == 1
    assert _load(ann_path(root, 'instances_train.json')) != first


def test_class_order_option(fmnist_available):
    assert det.resolve_class_order(None, 0) is None
    order = det.resolve_class_order('random', 0)
    assert sorted(order) == list(range(10)) and order == det.resolve_class_order('random', 0)
    named = det.resolve_class_order(
        'Ankle boot,Bag,Sneaker,Shirt,Sandal,Coat,Dress,Pullover,Trouser,T-shirt/top', 0
    )
    assert named == tuple(range(9, -1, -1))
