"""D-ECE math, matching conventions, the DECEMetric (alone and next to CocoMetric) and temperature scaling."""

import json
import math
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData

from mmssod.evaluation.functional import (
    apply_temperature,
    calibration_bins,
    classwise_detection_ece,
    collect_calibration_set,
    detection_ece,
    fit_temperature,
    match_detections,
    miscalibration_direction,
    signed_calibration_gap,
)
from mmssod.evaluation.metrics import DECEMetric

CLASSES = ('a', 'b', 'c')


def test_perfectly_calibrated_detections_have_zero_dece():
    conf = np.r_[np.full(20, 0.95), np.full(20, 0.55), np.full(10, 0.3)]
    tp = np.r_[np.arange(20) < 19, np.arange(20) < 11, np.arange(10) < 3]
    assert detection_ece(conf, tp) == pytest.approx(0.0, abs=1e-12)


def test_all_wrong_detections_have_dece_equal_to_mean_confidence():
    conf = np.array([0.31, 0.5, 0.77, 0.99, 0.42])
    assert detection_ece(conf, np.zeros(5, bool)) == pytest.approx(conf.mean())


def test_dece_hand_computed_example_and_bin_edges():
    # bins: 0.3 -> bin 3 (edge belongs to the upper bin), 0.35 -> bin 3, 0.9 and 1.0 -> bin 9
    conf = np.array([0.3, 0.35, 0.9, 1.0])
    tp = np.array([True, False, True, True])
    bins = calibration_bins(conf, tp, 10)
    assert bins['counts'].tolist() == [0, 0, 0, 2, 0, 0, 0, 0, 0, 2]
    expected = 0.5 * abs(0.5 - 0.325) + 0.5 * abs(1.0 - 0.95)
    assert detection_ece(conf, tp, 10) == pytest.approx(expected)
    assert math.isnan(detection_ece(np.zeros(0), np.zeros(0, bool)))
    with pytest.raises(ValueError, match='num_bins'):
        calibration_bins(conf, tp, 0)


def test_classwise_dece():
    conf = np.array([0.8, 0.8, 0.4])
    tp = np.array([True, True, False])
    per_class = classwise_detection_ece(conf, tp, np.array([0, 0, 2]), 3)
    assert (
        per_class[0] == pytest.approx(0.2) and per_class[2] == pytest.approx(0.4) and math.isnan(per_class[1])
    )


def test_matching_is_greedy_by_score_class_aware_and_ignores_crowd():
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 60, 60]], float)
    gt_labels = np.array([0, 1, 0])
    ignore = np.array([False, False, True])  # the third box is a crowd region
    dets = np.array(
        [
            [0, 0, 10, 10],  # exact match of gt 0 (lower score)
            [0, 0, 10, 9],  # IoU 0.9 with gt 0, higher score: matched first
            [20, 20, 30, 30],  # right box, wrong class
            [42, 42, 50, 50],  # inside the crowd box
            [0, 0, 10, 5],  # IoU exactly 0.5 with gt 0, already matched -> FP
        ],
        float,
    )
    scores = np.array([0.6, 0.9, 0.8, 0.7, 0.5])
    labels = np.array([0, 0, 0, 0, 0])
    flags = match_detections(dets, scores, labels, gt, gt_labels, ignore)
    assert flags.tolist() == [0, 1, 0, -1, 0]
    # IoU exactly at the threshold counts as a match (>=)
    assert match_detections(dets[4:], scores[4:], labels[4:], gt[:1], gt_labels[:1]).tolist() == [1]


def test_images_without_ground_truth_count_as_false_positives_by_default():
    preds = [
        dict(bboxes=np.array([[0, 0, 10, 10]]), scores=np.array([0.9]), labels=np.array([0])),
        dict(bboxes=np.array([[0, 0, 10, 10]]), scores=np.array([0.8]), labels=np.array([0])),
        dict(bboxes=np.array([[0, 0, 10, 10]]), scores=np.array([0.2]), labels=np.array([0])),  # < 0.3
    ]
    gts = [
        dict(bboxes=np.array([[0, 0, 10, 10]]), labels=np.array([0])),
        dict(bboxes=np.zeros((0, 4)), labels=np.zeros(0, int)),
        dict(bboxes=np.array([[0, 0, 10, 10]]), labels=np.array([0])),
    ]
    with_empty = collect_calibration_set(preds, gts)
    assert with_empty['is_tp'].tolist() == [True, False]
    without = collect_calibration_set(preds, gts, include_empty_images=False)
    assert without['is_tp'].tolist() == [True]


def _sample(img_id, bboxes, scores, labels, gt_bboxes=None, gt_labels=None):
    s = dict(
        img_id=img_id,
        ori_shape=(100, 100),
        pred_instances=dict(
            bboxes=torch.tensor(bboxes, dtype=torch.float32).reshape(-1, 4),
            scores=torch.tensor(scores, dtype=torch.float32),
            labels=torch.tensor(labels, dtype=torch.long),
        ),
    )
    if gt_bboxes is not None:
        s['gt_instances'] = InstanceData(
            bboxes=torch.tensor(gt_bboxes, dtype=torch.float32).reshape(-1, 4), labels=torch.tensor(gt_labels)
        )
    return s


def _coco_file(tmp_path):
    images = [dict(id=i, file_name=f'{i}.png', width=100, height=100) for i in (1, 2)]
    anns = [
        dict(id=1, image_id=1, category_id=10, bbox=[0, 0, 10, 10], area=100, iscrowd=0),
        dict(id=2, image_id=1, category_id=30, bbox=[50, 50, 20, 20], area=400, iscrowd=0),
        dict(id=3, image_id=2, category_id=20, bbox=[10, 10, 30, 30], area=900, iscrowd=1),
    ]
    cats = [dict(id=10, name='a'), dict(id=20, name='b'), dict(id=30, name='c')]
    path = tmp_path / 'ann.json'
    path.write_text(json.dumps(dict(images=images, annotations=anns, categories=cats)))
    return str(path)


def _predictions():
    return [
        # img 1: class a TP (0.9), class c TP with label 2 (0.6), a duplicate FP (0.75)
        _sample(1, [[0, 0, 10, 10], [50, 50, 70, 70], [0, 0, 10, 10]], [0.9, 0.6, 0.75], [0, 2, 0]),
        # img 2: inside the crowd box of class b (ignored), an FP of class a, a low score (dropped)
        _sample(2, [[12, 12, 30, 30], [80, 80, 90, 90], [0, 0, 5, 5]], [0.8, 0.45, 0.1], [1, 0, 0]),
    ]


def test_metric_with_ann_file_known_answer_and_diagram(tmp_path):
    metric = DECEMetric(ann_file=_coco_file(tmp_path), classwise=True, out_dir=str(tmp_path / 'vis'))
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, _predictions())
    res = metric.evaluate(2)
    # kept: 0.9 TP, 0.75 FP, 0.6 TP, 0.45 FP (crowd-covered 0.8 ignored, 0.1 below the threshold), one per bin
    # (scores are float32 like a model's: values on a bin edge such as 0.7 may fall just below it)
    expected = 100 * 0.25 * (abs(1 - 0.9) + abs(0 - 0.75) + abs(1 - 0.6) + abs(0 - 0.45))
    assert res['dece/D-ECE'] == pytest.approx(expected, rel=1e-5)
    assert res['dece/num_dets'] == 4
    assert res['dece/D-ECE_c'] == pytest.approx(40.0, rel=1e-5)
    assert math.isnan(res['dece/D-ECE_b'])
    assert osp.isfile(metric.last_diagram) and metric.last_diagram.endswith('.png')
    with open(metric.last_diagram, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_metric_reads_ground_truth_from_data_samples(tmp_path):
    metric = DECEMetric(save_diagram=False)
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, [_sample(1, [[0, 0, 10, 10]], [0.8], [1], [[0, 0, 10, 10]], [1])])
    assert metric.evaluate(1)['dece/D-ECE'] == pytest.approx(20.0, rel=1e-5)
    with pytest.raises(ValueError, match='ann_file'):
        DECEMetric().process({}, [_sample(1, [[0, 0, 1, 1]], [0.5], [0])])


def test_metric_with_empty_predictions_reports_nan_and_still_draws(tmp_path):
    metric = DECEMetric(ann_file=_coco_file(tmp_path), out_dir=str(tmp_path))
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, [_sample(1, np.zeros((0, 4)), [], []), _sample(2, np.zeros((0, 4)), [], [])])
    res = metric.evaluate(2)
    assert math.isnan(res['dece/D-ECE']) and res['dece/num_dets'] == 0
    assert osp.isfile(metric.last_diagram)


def test_metric_next_to_coco_metric_in_a_list_evaluator(tmp_path):
    ann = _coco_file(tmp_path)
    evaluator = Evaluator(
        [
            dict(type='mmdet.CocoMetric', ann_file=ann, metric='bbox'),
            dict(type='DECEMetric', ann_file=ann, out_dir=str(tmp_path), prefix='dece_val'),
        ]
    )
    evaluator.dataset_meta = dict(classes=CLASSES)
    evaluator.process(_predictions(), {})
    res = evaluator.evaluate(2)
    assert 'coco/bbox_mAP' in res and 'dece_val/D-ECE' in res
    assert osp.isfile(osp.join(tmp_path, 'dece_val_reliability_diagram.png'))


def test_metric_rejects_bad_settings(tmp_path):
    with pytest.raises(FileNotFoundError, match='ann_file'):
        DECEMetric(ann_file=str(tmp_path / 'missing.json'))
    with pytest.raises(ValueError, match='score_thr'):
        DECEMetric(score_thr=1.5)
    with pytest.raises(ValueError, match='num_bins'):
        DECEMetric(num_bins=0)


def test_temperature_scaling_fits_an_overconfident_detector():
    rng = np.random.default_rng(0)
    true_p = rng.uniform(0.05, 0.95, 4000)
    is_tp = rng.uniform(size=true_p.size) < true_p
    logits = np.log(true_p / (1 - true_p)) * 2.5  # overconfident by a factor 2.5 in logit space
    scores = 1 / (1 + np.exp(-logits))
    t = fit_temperature(scores, is_tp)
    assert 2.0 < t < 3.1
    assert detection_ece(apply_temperature(scores, t), is_tp) < 0.5 * detection_ece(scores, is_tp)
    ranks = np.argsort(scores)
    assert np.all(np.diff(apply_temperature(scores, t)[ranks]) >= 0)  # ranking (AP) unchanged
    with pytest.raises(ValueError, match='held-out'):
        fit_temperature(np.zeros(0), np.zeros(0, bool))


def test_signed_gap_gives_the_direction_of_miscalibration():
    conf = np.full(10, 0.85)
    over, under = np.arange(10) < 5, np.arange(10) < 10  # precision 0.5 / 1.0 at confidence 0.85
    assert signed_calibration_gap(conf, over) == pytest.approx(0.35)
    assert miscalibration_direction(signed_calibration_gap(conf, over)) == 'over'
    assert signed_calibration_gap(conf, under) == pytest.approx(-0.15)
    assert miscalibration_direction(signed_calibration_gap(conf, under)) == 'under'
    assert abs(signed_calibration_gap(conf, over)) == pytest.approx(detection_ece(conf, over))
    assert miscalibration_direction(signed_calibration_gap(np.zeros(0), np.zeros(0, bool))) == 'n/a'


def test_temperature_changes_confidences_not_the_evaluated_detection_set(tmp_path):
    """T is fit on raw scores >= score_thr; the evaluated set must be the same definition, whatever T is.

    Thresholding the scaled scores (the former behaviour) let the raw-0.1 detection in at T = 3 (scaled score
    0.325 >= 0.3), so the evaluated set changed with T.
    """
    ann = _coco_file(tmp_path)
    res = {}
    for t in (1.0, 3.0, 0.5):
        metric = DECEMetric(ann_file=ann, temperature=t, save_diagram=False)
        metric.dataset_meta = dict(classes=CLASSES)
        metric.process({}, _predictions())
        cal = metric.calibration_set(metric.results)
        res[t] = (metric.evaluate(2), cal)
    for t in (3.0, 0.5):
        assert res[t][0]['dece/num_dets'] == res[1.0][0]['dece/num_dets'] == 4
        assert np.array_equal(res[t][1]['is_tp'], res[1.0][1]['is_tp'])
        assert np.allclose(res[t][1]['raw_confidences'], res[1.0][1]['confidences'])
        assert np.allclose(res[t][1]['confidences'], apply_temperature(res[1.0][1]['confidences'], t))
    conf, tp = res[1.0][1]['confidences'], res[1.0][1]['is_tp']
    assert res[3.0][0]['dece/D-ECE'] == pytest.approx(100 * detection_ece(apply_temperature(conf, 3.0), tp))


def _coco_file_reordered(tmp_path):
    """The categories of ``_coco_file`` listed in another order than the dataset's classes (c, a, b)."""
    coco = json.loads(open(_coco_file(tmp_path)).read())
    coco['categories'] = [coco['categories'][i] for i in (2, 0, 1)]
    path = tmp_path / 'ann_reordered.json'
    path.write_text(json.dumps(coco))
    return str(path)


def test_per_class_names_follow_the_annotation_files_category_order(tmp_path):
    """Label i is the i-th category of the file (mmdet's CocoDataset matching), so its name must be too.

    The file lists c (id 30), a (10), b (20); the dataset classes say (a, b, c). Labels are matched to
    category ids in the file's order: label 0 -> c, 1 -> a, 2 -> b. The former names came from the dataset
    classes' order and called label 0's D-ECE 'a'.
    """
    metric = DECEMetric(ann_file=_coco_file_reordered(tmp_path), classwise=True, save_diagram=False)
    metric.dataset_meta = dict(classes=CLASSES)
    assert metric.class_names() == ['c', 'a', 'b']
    # one TP of class c (gt box [50, 50, 70, 70]) predicted with label 0 (= c in this file's order)
    metric.process({}, [_sample(1, [[50, 50, 70, 70]], [0.6], [0]), _sample(2, np.zeros((0, 4)), [], [])])
    res = metric.evaluate(2)
    assert res['dece/D-ECE_c'] == pytest.approx(40.0, rel=1e-5)
    assert math.isnan(res['dece/D-ECE_a']) and math.isnan(res['dece/D-ECE_b'])


def test_results_that_do_not_match_the_annotation_file_are_refused(tmp_path):
    ann = _coco_file(tmp_path)
    metric = DECEMetric(ann_file=ann, save_diagram=False)
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, [_sample(1, [[0, 0, 10, 10]], [0.9], [0]), _sample(77, [[0, 0, 10, 10]], [0.9], [0])])
    with pytest.raises(ValueError, match=r'not in .*ann\.json \(image ids \[77\]\).*same dataset'):
        metric.evaluate(2)
    metric = DECEMetric(ann_file=ann, save_diagram=False)
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, [_sample(1, [[0, 0, 10, 10]], [0.9], [5])])
    with pytest.raises(ValueError, match=r'labels \[5\] lie outside the 3 classes'):
        metric.evaluate(1)
    metric = DECEMetric(ann_file=ann, save_diagram=False)
    metric.dataset_meta = dict(classes=('a', 'b', 'dog'))
    metric.process({}, [_sample(1, [[0, 0, 10, 10]], [0.9], [0])])
    with pytest.raises(ValueError, match=r"not there: \['dog'\].*ann_file"):
        metric.evaluate(1)
