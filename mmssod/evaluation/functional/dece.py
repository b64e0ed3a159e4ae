"""Detection expected calibration error (D-ECE), as used by Cal-DETR (Munir et al., NeurIPS 2023).

Detections with score >= ``score_thr`` are matched to ground truth; a detection is a true positive when it
has the ground truth's class and IoU >= ``iou_thr`` with a not-yet-matched ground truth box (greedy by
descending score, COCO style). The confidence range [0, 1] is split into ``num_bins`` equal bins and

    D-ECE = sum_b |B_b| / N * |precision(B_b) - mean confidence(B_b)|,

pooled over classes (``detection_ece``) or per class (``classwise_detection_ece``).

Conventions (the paper leaves them open; all are arguments here):

* score threshold: ``score >= score_thr`` (default 0.3); IoU: ``>= iou_thr`` (default 0.5).
* bins: bin ``b`` holds confidences in ``[b / n, (b + 1) / n)``; a confidence of 1 goes to the last bin.
* crowd / ignored ground truth (COCO ``iscrowd=1``): a detection that matches no regular ground truth but
  covers a crowd box of its class (intersection over the detection's area >= ``iou_thr``, as COCO does) is
  left out of the calibration set, neither right nor wrong.
* images without ground truth: their detections are false positives and count (``include_empty_images``).
* all returned errors are fractions in [0, 1]; metrics report them x100.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np
from mmdet.evaluation.functional import bbox_overlaps

TRUE_POSITIVE, FALSE_POSITIVE, IGNORED = 1, 0, -1

__all__ = [
    'match_detections',
    'calibration_bins',
    'detection_ece',
    'signed_calibration_gap',
    'miscalibration_direction',
    'classwise_detection_ece',
    'bootstrap_detection_ece',
    'calibrated_detection_ece',
    'collect_calibration_set',
]


def match_detections(
    det_bboxes: np.ndarray,
    det_scores: np.ndarray,
    det_labels: np.ndarray,
    gt_bboxes: np.ndarray,
    gt_labels: np.ndarray,
    gt_ignore: Optional[np.ndarray] = None,
    iou_thr: float = 0.5,
) -> np.ndarray:
    """Greedy COCO-style matching of one image's detections to its ground truth.

    Args:
        det_bboxes (np.ndarray): Detection boxes (x1, y1, x2, y2), shape (N, 4).
        det_scores (np.ndarray): Detection confidences, shape (N,).
        det_labels (np.ndarray): Detection class indices, shape (N,).
        gt_bboxes (np.ndarray): Ground-truth boxes (x1, y1, x2, y2), shape (M, 4).
        gt_labels (np.ndarray): Ground-truth class indices, shape (M,).
        gt_ignore (np.ndarray, optional): True for crowd / ignored ground truth, shape (M,).
            Defaults to None (nothing ignored).
        iou_thr (float): IoU a true positive needs. Defaults to 0.5.

    Returns:
        np.ndarray: int8 flags, shape (N,): 1 true positive, 0 false positive, -1 ignored (on a crowd box).
    """
    det_bboxes = np.asarray(det_bboxes, dtype=np.float64).reshape(-1, 4)
    gt_bboxes = np.asarray(gt_bboxes, dtype=np.float64).reshape(-1, 4)
    det_labels, gt_labels = np.asarray(det_labels).reshape(-1), np.asarray(gt_labels).reshape(-1)
    num_dets = det_bboxes.shape[0]
    flags = np.full(num_dets, FALSE_POSITIVE, dtype=np.int8)
    if num_dets == 0 or gt_bboxes.shape[0] == 0:
        return flags
    gt_ignore = (
        np.zeros(len(gt_labels), bool) if gt_ignore is None else np.asarray(gt_ignore, bool).reshape(-1)
    )
    ious = bbox_overlaps(det_bboxes, gt_bboxes, mode='iou')
    iofs = bbox_overlaps(det_bboxes, gt_bboxes, mode='iof')  # intersection over the detection's area
    same_class = det_labels[:, None] == gt_labels[None, :]
    matched = np.zeros(len(gt_labels), bool)
    for i in np.argsort(-np.asarray(det_scores).reshape(-1), kind='stable'):
        candidates = same_class[i] & ~gt_ignore & ~matched & (ious[i] >= iou_thr)
        if candidates.any():
            j = int(np.argmax(np.where(candidates, ious[i], -1.0)))
            matched[j] = True
            flags[i] = TRUE_POSITIVE
        elif (same_class[i] & gt_ignore & (iofs[i] >= iou_thr)).any():
            flags[i] = IGNORED
    return flags


def calibration_bins(confidences: np.ndarray, is_tp: np.ndarray, num_bins: int = 10) -> Dict[str, np.ndarray]:
    """Per-bin statistics of a reliability diagram.

    Args:
        confidences (np.ndarray): Detection confidences in [0, 1], shape (N,).
        is_tp (np.ndarray): Whether each detection is a true positive, shape (N,).
        num_bins (int): Number of equal-width bins over [0, 1]. Defaults to 10.

    Returns:
        dict: ``edges`` (num_bins + 1,), ``counts`` (num_bins,), ``confidence`` (mean confidence per bin,
        NaN for empty bins), ``precision`` (fraction of true positives per bin, NaN for empty bins).
    """
    if not isinstance(num_bins, (int, np.integer)) or num_bins < 1:
        raise ValueError(f'`num_bins` must be a positive integer, got {num_bins!r}')
    conf = np.asarray(confidences, dtype=np.float64).reshape(-1)
    tp = np.asarray(is_tp, dtype=np.float64).reshape(-1)
    if conf.shape != tp.shape:
        raise ValueError(f'confidences {conf.shape} and true-positive flags {tp.shape} differ in length')
    if conf.size and (conf.min() < 0 or conf.max() > 1):
        raise ValueError(f'confidences must lie in [0, 1], got range [{conf.min()}, {conf.max()}]')
    idx = np.clip(np.floor(conf * num_bins).astype(np.int64), 0, num_bins - 1)
    counts = np.bincount(idx, minlength=num_bins).astype(np.int64)
    with np.errstate(invalid='ignore', divide='ignore'):
        mean_conf = np.bincount(idx, weights=conf, minlength=num_bins) / counts
        precision = np.bincount(idx, weights=tp, minlength=num_bins) / counts
    return dict(
        edges=np.linspace(0.0, 1.0, num_bins + 1), counts=counts, confidence=mean_conf, precision=precision
    )


def detection_ece(confidences: np.ndarray, is_tp: np.ndarray, num_bins: int = 10) -> float:
    """D-ECE, pooled over all given detections.

    Args:
        confidences (np.ndarray): Confidences of the detections kept (score >= threshold), shape (N,).
        is_tp (np.ndarray): True-positive flags, shape (N,).
        num_bins (int): Number of equal-width confidence bins. Defaults to 10.

    Returns:
        float: D-ECE as a fraction in [0, 1]; NaN when there is no detection (undefined).
    """
    bins = calibration_bins(confidences, is_tp, num_bins)
    total = bins['counts'].sum()
    if total == 0:
        return float('nan')
    full = bins['counts'] > 0
    gaps = np.abs(bins['precision'][full] - bins['confidence'][full])
    return float((bins['counts'][full] / total * gaps).sum())


def signed_calibration_gap(confidences: np.ndarray, is_tp: np.ndarray, num_bins: int = 10) -> float:
    """The direction of miscalibration: D-ECE's weighted gaps with their sign.

    ``sum_b |B_b| / N * (mean confidence(B_b) - precision(B_b))``: positive when the detections are
    over-confident on balance (confidence above precision), negative when under-confident. Its absolute value
    is at most the D-ECE (equal when every bin errs the same way).

    Args:
        confidences (np.ndarray): Confidences, shape (N,).
        is_tp (np.ndarray): True-positive flags, shape (N,).
        num_bins (int): Number of confidence bins. Defaults to 10.

    Returns:
        float: the signed gap as a fraction in [-1, 1]; NaN without detections.
    """
    bins = calibration_bins(confidences, is_tp, num_bins)
    total = bins['counts'].sum()
    if total == 0:
        return float('nan')
    full = bins['counts'] > 0
    gaps = bins['confidence'][full] - bins['precision'][full]
    return float((bins['counts'][full] / total * gaps).sum())


def miscalibration_direction(signed_gap: float) -> str:
    """'over' (confidence above precision), 'under', or 'n/a' (NaN) for a :func:`signed_calibration_gap`."""
    if not np.isfinite(signed_gap):
        return 'n/a'
    return 'over' if signed_gap > 0 else 'under'


def classwise_detection_ece(
    confidences: np.ndarray, is_tp: np.ndarray, labels: np.ndarray, num_classes: int, num_bins: int = 10
) -> np.ndarray:
    """D-ECE of each class' detections.

    Args:
        confidences (np.ndarray): Confidences, shape (N,).
        is_tp (np.ndarray): True-positive flags, shape (N,).
        labels (np.ndarray): Predicted class of each detection, shape (N,).
        num_classes (int): Number of classes.
        num_bins (int): Number of confidence bins. Defaults to 10.

    Returns:
        np.ndarray: shape (num_classes,), NaN for classes without detections.
    """
    conf, tp, labels = np.asarray(confidences), np.asarray(is_tp), np.asarray(labels)
    return np.array([detection_ece(conf[labels == c], tp[labels == c], num_bins) for c in range(num_classes)])


def bootstrap_detection_ece(
    confidences: np.ndarray, is_tp: np.ndarray, num_bins: int = 10, num_samples: int = 1000, seed: int = 0
) -> np.ndarray:
    """D-ECE of detection sets resampled with replacement: its spread is the sampling error of one D-ECE.

    Args:
        confidences (np.ndarray): Confidences, shape (N,), N > 0.
        is_tp (np.ndarray): True-positive flags, shape (N,).
        num_bins (int): Number of confidence bins. Defaults to 10.
        num_samples (int): Number of resampled sets. Defaults to 1000.
        seed (int): Seed of the resampling. Defaults to 0.

    Returns:
        np.ndarray: shape (num_samples,), the D-ECE (fraction) of each resampled set.
    """
    conf, tp = np.asarray(confidences, dtype=float), np.asarray(is_tp, dtype=bool)
    idx = np.random.default_rng(seed).integers(0, conf.size, size=(num_samples, conf.size))
    return np.array([detection_ece(conf[i], tp[i], num_bins) for i in idx])


def calibrated_detection_ece(
    confidences: np.ndarray, num_bins: int = 10, num_samples: int = 1000, seed: int = 0
) -> np.ndarray:
    """D-ECE of a perfectly calibrated detector with these confidences (each detection a true positive with
    probability equal to its confidence): the value a finite set reaches by chance alone.

    Args:
        confidences (np.ndarray): Confidences, shape (N,).
        num_bins (int): Number of confidence bins. Defaults to 10.
        num_samples (int): Number of simulated outcome sets. Defaults to 1000.
        seed (int): Seed of the simulation. Defaults to 0.

    Returns:
        np.ndarray: shape (num_samples,), the D-ECE (fraction) of each simulated set.
    """
    conf = np.asarray(confidences, dtype=float)
    draws = np.random.default_rng(seed).uniform(size=(num_samples, conf.size)) < conf
    return np.array([detection_ece(conf, tp, num_bins) for tp in draws])


def collect_calibration_set(
    predictions: Sequence[dict],
    ground_truths: Sequence[dict],
    score_thr: float = 0.3,
    iou_thr: float = 0.5,
    include_empty_images: bool = True,
) -> Dict[str, np.ndarray]:
    """Threshold and match the detections of many images.

    Args:
        predictions (Sequence[dict]): Per image ``bboxes`` (N, 4), ``scores`` (N,), ``labels`` (N,).
        ground_truths (Sequence[dict]): Per image ``bboxes`` (M, 4), ``labels`` (M,), optional ``ignore``.
        score_thr (float): Keep detections with ``score >= score_thr``. Defaults to 0.3.
        iou_thr (float): IoU of a true positive. Defaults to 0.5.
        include_empty_images (bool): Count the detections of images without (non-ignored) ground truth, all
            false positives. Defaults to True.

    Returns:
        dict: ``confidences``, ``is_tp`` (bool), ``labels`` of the kept, not-ignored detections, each (K,).
    """
    if len(predictions) != len(ground_truths):
        raise ValueError(f'{len(predictions)} predictions but {len(ground_truths)} ground truths')
    conf, tp, labels = [], [], []
    for pred, gt in zip(predictions, ground_truths):
        scores = np.asarray(pred['scores'], dtype=np.float64).reshape(-1)
        keep = scores >= score_thr
        ignore = np.asarray(gt.get('ignore', np.zeros(len(gt['labels']), bool)), bool).reshape(-1)
        if not include_empty_images and not (~ignore).any():
            continue
        bboxes = np.asarray(pred['bboxes']).reshape(-1, 4)[keep]
        det_labels = np.asarray(pred['labels']).reshape(-1)[keep]
        flags = match_detections(
            bboxes, scores[keep], det_labels, gt['bboxes'], gt['labels'], ignore, iou_thr=iou_thr
        )
        used = flags != IGNORED
        conf.append(scores[keep][used])
        tp.append(flags[used] == TRUE_POSITIVE)
        labels.append(det_labels[used])
    if not conf:
        return dict(confidences=np.zeros(0), is_tp=np.zeros(0, bool), labels=np.zeros(0, np.int64))
    return dict(
        confidences=np.concatenate(conf),
        is_tp=np.concatenate(tp),
        labels=np.concatenate(labels).astype(np.int64),
    )
