"""ACRST ablation benchmark on composited long-tailed data: every arm on the same data, schedule and seeds.

Each arm is trained with ``tools/train.py`` in its own process (CUDA when available, else CPU) from a config
derived from one ACRST config, so data, detector, schedule, batch, seeds, burn-in, thresholds and augmentation
are shared; an arm differs from its neighbour only in the part under test (``--methods`` picks the arms):

* a ``supervised`` - the same Faster R-CNN on the labeled split only (the labeled half of each batch);
* b ``supervised_fbr`` - a + the ``ACRSTPaste`` transform on the labeled images, fed by a label bank only
  (every ground-truth box of the labeled split, written by this script with the package's ``CropBank`` before
  training, since ``CropBankHook`` needs an ACRST detector), uniform classes (beta 0), no pseudo bank;
* c ``soft_teacher_base`` - Soft Teacher on ACRST's recipe: the ACRST detector with its burn-in, the teacher
  reset at the end of burn-in, ``tau_cls`` and the same Soft Teacher thresholds, EMA, unsupervised weight and
  strong augmentation as e, with every ACRST addition off: no CropBank / paste, no filter stage 2
  (``tau_ml=None``), and box regression on every filtered pseudo-label (``regress_pseudo=True``). Against
  mmdet's ``SoftTeacher`` it keeps the R-CNN classification weighted by the teacher's background score but
  has no box-jitter uncertainty filter (``ACRST.compute_uncertainty_with_aug`` gives 0, ``reg_pseudo_thr``
  is inf): mmdet regresses only pseudo boxes whose jitter uncertainty is below 0.02;
* d ``soft_teacher_fbr`` - c + the CropBank (label and pseudo banks) pasted on labeled and unlabeled
  images with uniform classes (FBR, beta 0);
* e ``acrst`` - ACRST: d with AFFR (beta 0.6), filter stage 2 (SSMLL scores, ``tau_ml``) and selective
  supervision (unlabeled box regression on pasted instances only);
* f ``acrst_no_stage2`` - e with ``tau_ml=None`` (needs SSMLL scores, else e runs without stage 2 too);
* g ``acrst_regress_all`` - e with ``regress_pseudo=True`` (regression on every pseudo-label);
* h ``acrst_label_bank`` / ``acrst_pseudo_bank`` - e with the pseudo bank (``pseudo_cap=0``) or the label
  bank (``label_cap=0``) empty;
* ``acrst_beta0`` - e at beta 0 (added by ``--mechanism`` for the class histograms);
* ``soft_teacher_mmdet`` - mmdet's ``SoftTeacher`` with its default semi_train_cfg (no burn-in, thresholds
  0.5 / 0.9, box-jitter filter), no CropBank; a reference recipe, not in the default arms (``soft_teacher``
  is read as this arm, also in results files).

The detector is the ImageNet-pretrained EfficientNet-Lite0 Faster R-CNN FPN
(``configs/_base_/models/faster-rcnn_efficientnet-lite0_fpn.py``) unless ``--backbone r18-scratch`` (the
demo's from-scratch half-width ResNet-18). The data: by default a bench set built on first use with
``tools/dataset_converters/composited_det.py`` (``--bench-*`` flags), or ``--demo`` / ``--config``. The
regime changes only through settings applied to every arm: schedule (``--iters``, ``--burn-in``), data size
(``--bench-num-train``) and ``--tau-cls`` (every arm on ACRST's recipe, c to h).

Reported per seed and as mean +- sd over seeds: mAP, mAP_50, the AP of the rarest third of classes (by
labeled-set frequency), the median per-iteration time after burn-in, and the per-seed differences c - a,
e - c (with the goal check: rarest-third gain above twice its sd on every seed), e - b, e - d. Each finished
arm and seed is saved as ``<work-dir>/seed<S>/<arm>_result.json`` and reused by a later run with equal
settings. ``--mechanism`` adds, against the composited ground truth of the unlabeled images: the final ACRST
teacher's pseudo-label precision / recall per class after filter stage 1 alone and after both stages (needs
SSMLL scores: ``--ml-scores`` or ``--ssmll-iters``), and the class histograms of pasted instances and of
pseudo-labels for beta 0 vs 0.6. ``--pilot`` trains one semi-supervised arm (``--pilot-arm``) with a
checkpoint every ``--pilot-interval`` iterations and counts, at each, the classes whose teacher pseudo-labels
(filter stage 1) reach recall ``--gate-recall`` on the unlabeled images; the gate passes with at least
``--gate-classes`` of them at the end (JSON and PNG; a linear extrapolation of the crossing when it fails).
Results on these data are "composited from real images", never COCO numbers.

The isolated ablation (:data:`ISOLATED_ARMS`, :data:`ISOLATED_DIFFERENCES`) first chooses the strongest Soft
Teacher: ``--select`` trains arm c with mmdet's box-jitter regression filter (``--box-jitter``: the
registered :data:`BOX_JITTER_MODEL`, :data:`BOX_JITTER_RULE`) at each (pseudo-label score threshold,
unsupervised weight) of :data:`SELECTION_GRID` (``--grid-points``: a share of it per process), one seed,
scores it by mAP on the val canvases of a separate bench build (``--select-val-root``, another generator
seed; never the reported val set), reads the pilot gate of its final teacher, saves each point and writes
``selection.json`` (:func:`select_setting`). ``--recipe selection.json`` then runs any arms at the chosen
threshold and weight with the box-jitter filter on every arm on ACRST's recipe, and the supervised arms
scored on an EMA of their weights with the teacher's momentum (``--supervised-ema``,
:func:`supervised_ema_hook`).

    python tools/benchmarks/acrst_bench.py --pilot --iters 800 --pilot-interval 100   # gate first
    python tools/benchmarks/acrst_bench.py --seeds 0 1 2 --mechanism --ssmll-iters 1000   # CPU evidence
    python tools/benchmarks/acrst_bench.py --iters 4 --burn-in 2 --refresh-interval 2 --val-images 8 \\
        --bench-num-train 60 --bench-num-val 20 --mechanism --ssmll-iters 2                # smoke
    python tools/benchmarks/acrst_bench.py --select --grid-points 5 --iters 4 --burn-in 2 --val-images 8 \
        --bench-num-train 60 --bench-num-val 20 --bench-root /tmp/b --select-val-root /tmp/v   # grid smoke
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import math
import os
import os.path as osp
import statistics
import subprocess
import sys
import time
from typing import Optional, Sequence

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from tools.benchmarks import cropbank_cost  # noqa: E402
from tools.benchmarks.determinism import (  # noqa: E402
    add_determinism_args,
    randomness,
    run_env,
    run_identity,
    run_record,
)
from tools.benchmarks.saved import saved_run  # noqa: E402
from tools.benchmarks.stats import (  # noqa: E402
    is_effect,
    markdown_table,
    mean_sd,
    mean_sd_text,
    number,
    paired_differences,
    seeds_mean_sd_text,
    seeds_text,
)

LT_CONFIG = osp.join(ROOT, 'configs/acrst/acrst_faster-rcnn_r18_fpn_20k_semi-0.1-composited-lt.py')
DEMO_CONFIG = osp.join(
    ROOT, 'configs/acrst/acrst_faster-rcnn_efficientnet-lite0_fpn_semi-0.25-composited-demo.py'
)
SSMLL_CONFIG = osp.join(ROOT, 'configs/acrst/ssmll/ssmll_r18_semi-0.1-composited-lt.py')
LITE0_BASE = osp.join(ROOT, 'configs/_base_/models/faster-rcnn_efficientnet-lite0_fpn.py')

#: Every arm, in report order, with what it is (the letters are the ablation's).
ARMS = {
    'supervised': 'a. supervised, labeled split only',
    'supervised_fbr': 'b. a + CropBank paste (label bank, beta 0)',
    'soft_teacher_base': "c. Soft Teacher on ACRST's recipe (burn-in, teacher reset, tau_cls)",
    'soft_teacher_fbr': 'd. c + CropBank paste (beta 0, FBR)',
    'acrst': 'e. ACRST (beta 0.6)',
    'acrst_no_stage2': 'f. e without filter stage 2',
    'acrst_regress_all': 'g. e regressing every pseudo-label',
    'acrst_label_bank': 'h. e with the label bank only',
    'acrst_pseudo_bank': 'h. e with the pseudo bank only',
    'acrst_beta0': 'e at beta 0',
    'soft_teacher_mmdet': "mmdet's SoftTeacher, default recipe",
}
METHODS = tuple(ARMS)
#: The arms run by default: the ablation a to h.
DEFAULT_ARMS = METHODS[:9]
#: Former arm names, read as the arm they name now (also in results files).
ARM_ALIASES = {'soft_teacher': 'soft_teacher_mmdet'}
#: What each arm with a CropBank changes against ``acrst``: (CropBankHook settings, semi_train_cfg settings).
CROPBANK_ARMS = {
    'acrst': ({}, {}),
    'acrst_beta0': ({'beta': 0.0}, {}),
    'acrst_no_stage2': ({}, {'tau_ml': None}),
    'acrst_regress_all': ({}, {'regress_pseudo': True}),
    'acrst_label_bank': ({'pseudo_cap': 0}, {}),
    'acrst_pseudo_bank': ({'label_cap': 0}, {}),
    'soft_teacher_fbr': ({'beta': 0.0}, {'tau_ml': None, 'regress_pseudo': True}),
}
#: ``soft_teacher_base``: the semi_train_cfg of ``soft_teacher_fbr``, without CropBank and paste.
BASE_SEMI = {'tau_ml': None, 'regress_pseudo': True}
#: Arms on the ACRST detector (the ones ``--tau-cls`` and the pilot apply to).
ACRST_RECIPE_ARMS = ('soft_teacher_base',) + tuple(CROPBANK_ARMS)
#: The differences the report reads, (minuend, subtrahend); the first e - c pair carries the goal check.
DIFFERENCES = (
    ('soft_teacher_base', 'supervised'),
    ('acrst', 'soft_teacher_base'),
    ('acrst', 'supervised_fbr'),
    ('acrst', 'soft_teacher_fbr'),
    ('acrst', 'soft_teacher_mmdet'),
)
#: What decides the data, schedule and thresholds of a run (a pilot counts for runs with the same values).
REGIME_KEYS = (
    'config', 'demo', 'lt', 'percent', 'backbone', 'bench_root', 'bench_num_train', 'bench_num_val',
    'bench_size', 'bench_imbalance', 'bench_percent', 'iters', 'burn_in', 'batch_size', 'refresh_interval',
    'lr', 'tau_cls',
)  # fmt: skip
#: What else decides a trained arm's result: a saved result with equal settings is reused.
RUN_KEYS = REGIME_KEYS + ('ml_scores', 'ssmll_iters', 'val_images')
#: Settings of the isolated ablation, part of a run's settings only when set (runs saved before keep theirs).
RECIPE_KEYS = ('unsup_weight', 'box_jitter', 'supervised_ema')
#: mmdet's Soft Teacher box-jitter regression filter (its default semi_train_cfg): a pseudo box is regressed
#: only when the sd of the teacher's refined boxes over ``jitter_times`` jittered copies (offsets up to
#: ``jitter_scale`` of its size), relative to its size, is below ``reg_pseudo_thr``.
BOX_JITTER_RULE = dict(reg_pseudo_thr=0.02, jitter_times=10, jitter_scale=0.06)
#: The registered name of ACRST with that filter (:func:`register_box_jitter`).
BOX_JITTER_MODEL = 'ACRSTBoxJitter'
#: The Soft Teacher selection grid: (pseudo-label score threshold, unsupervised weight), in point order.
SELECTION_GRID = tuple((thr, weight) for thr in (0.5, 0.7, 0.9) for weight in (2.0, 4.0))
#: The isolated ablation under the selected Soft Teacher settings, in report order.
ISOLATED_ARMS = (
    'supervised', 'supervised_fbr', 'soft_teacher_base', 'soft_teacher_fbr', 'acrst_beta0', 'acrst',
    'acrst_no_stage2', 'acrst_regress_all',
)  # fmt: skip
#: What each arm is in the isolated ablation (letters as in the report).
ISOLATED_LABELS = {
    'supervised': 'a. supervised (EMA)',
    'supervised_fbr': 'b. a + paste (label bank, beta 0; EMA)',
    'soft_teacher_base': 'c. Soft Teacher, selected (box-jitter filter)',
    'soft_teacher_fbr': 'd. c + paste (beta 0)',
    'acrst_beta0': 'e0. ACRST at beta 0',
    'acrst': 'e. ACRST (beta 0.6)',
    'acrst_no_stage2': 'f. e without filter stage 2',
    'acrst_regress_all': 'g. e regressing every pseudo-box (box-jitter filter)',
}
#: The paired differences of the isolated ablation: (name, minuend, subtrahend).
ISOLATED_DIFFERENCES = (
    ('AFFR (beta 0.6 vs 0)', 'acrst', 'acrst_beta0'),
    ('filter stage 2', 'acrst', 'acrst_no_stage2'),
    ('selective supervision', 'acrst', 'acrst_regress_all'),
    ('semi-supervised parts', 'acrst_beta0', 'supervised_fbr'),
    ('paste inside Soft Teacher', 'soft_teacher_fbr', 'soft_teacher_base'),
    ('stage 2 + selective supervision', 'acrst_beta0', 'soft_teacher_fbr'),
    ('goal: Soft Teacher vs supervised', 'soft_teacher_base', 'supervised'),
    ('goal: ACRST vs Soft Teacher', 'acrst', 'soft_teacher_base'),
)


def canonical_arm(name: str) -> str:
    """The arm a (possibly former) arm name stands for."""
    return ARM_ALIASES.get(name, name)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', help='ACRST config to derive all arms from (default: the demo config)')
    parser.add_argument('--demo', action='store_true', help='the demo set (30 labeled images) instead')
    parser.add_argument('--lt', action='store_true', help='the composited LT set (data/composited_lt_det)')
    parser.add_argument('--percent', type=float, default=10, help='labeled split (1, 5 or 10) of the LT set')
    parser.add_argument(
        '--backbone', default='efficientnet-lite0', choices=['efficientnet-lite0', 'r18-scratch']
    )
    # the bench set (default data): sized so the supervised arm learns and the tail stays a tail
    parser.add_argument('--bench-root', default='data/composited_acrst_bench')
    parser.add_argument('--bench-num-train', type=int, default=1000)
    parser.add_argument('--bench-num-val', type=int, default=200)
    parser.add_argument('--bench-size', type=int, default=256, help='canvas side (px)')
    parser.add_argument('--bench-imbalance', type=float, default=20.0)
    parser.add_argument('--bench-percent', type=int, default=20, help='labeled percent of the bench set')
    parser.add_argument('--iters', type=int, default=800)
    parser.add_argument('--burn-in', type=int, default=300, help='ACRST burn-in iterations')
    parser.add_argument('--batch-size', type=int, default=4, help='labeled + unlabeled images per batch')
    parser.add_argument('--refresh-interval', type=int, default=50, help='CropBank refresh')
    parser.add_argument('--lr', type=float, default=None, help='optimizer lr (default: the config)')
    parser.add_argument(
        '--tau-cls',
        type=float,
        default=None,
        help="filter stage 1 threshold of every arm on ACRST's recipe (c to h), rpn_pseudo_thr and "
        "cls_pseudo_thr set equal to it (default: the config's)",
    )
    parser.add_argument('--ml-scores', help='SSMLL scores file of the unlabeled set (filter stage 2)')
    parser.add_argument(
        '--ssmll-iters', type=int, default=0, help='train SSMLL for N iterations first and use its scores'
    )
    parser.add_argument('--val-images', type=int, default=None, help='evaluate on the first N val images')
    parser.add_argument(
        '--methods',
        nargs='+',
        default=list(DEFAULT_ARMS),
        choices=METHODS + tuple(ARM_ALIASES),
        help=f'arms (default: {" ".join(DEFAULT_ARMS)}); soft_teacher = soft_teacher_mmdet',
    )
    parser.add_argument('--mechanism', action='store_true', help='pseudo-label quality and class histograms')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--seed', type=int, default=None, help='one seed (same as --seeds S)')
    parser.add_argument('--work-dir', default='work_dirs/acrst_bench')
    add_determinism_args(parser)
    parser.add_argument(
        '--max-time-ratio',
        type=float,
        default=1.15,
        help='target: ACRST / Soft Teacher (c) iteration time at most this (with the accuracy criteria)',
    )
    parser.add_argument('--out', help='JSON with all numbers (default: <work-dir>/results.json)')
    parser.add_argument(
        '--merge',
        nargs='+',
        metavar='JSON',
        help='no training: report the union of these results files '
        '(e.g. seeds run as separate processes) and write it to --out',
    )
    parser.add_argument(
        '--unsup-weight',
        type=float,
        default=None,
        help="unsupervised loss weight of every arm on ACRST's recipe (c to h; default: the config's)",
    )
    parser.add_argument(
        '--box-jitter',
        action='store_true',
        help="mmdet Soft Teacher's box-jitter regression filter on every arm on ACRST's recipe (c to h): "
        f'{BOX_JITTER_RULE}: pseudo boxes regressed only with jitter uncertainty below reg_pseudo_thr',
    )
    parser.add_argument(
        '--supervised-ema',
        action='store_true',
        help="score the supervised arms (a, b) on an EMA of their weights (mmengine's EMAHook with the "
        "teacher's momentum, buffers included, started at the end of burn-in), as c to h are on the teacher",
    )
    parser.add_argument(
        '--recipe',
        metavar='SELECTION_JSON',
        help='the Soft Teacher settings chosen by --select (selection.json): sets --tau-cls and '
        '--unsup-weight to the chosen point and turns on --box-jitter and --supervised-ema',
    )
    parser.add_argument(
        '--recipe-use',
        default='selected',
        choices=('selected', 'gate_fallback'),
        help="which point of --recipe: the best val mAP ('selected') or the best gate-passing one",
    )
    select = parser.add_argument_group('Soft Teacher selection grid (run before the isolated arms)')
    select.add_argument(
        '--select',
        action='store_true',
        help='train arm c (box-jitter Soft Teacher) at the grid points of pseudo-label score threshold x '
        'unsupervised weight, score each on the selection val set, write selection.json',
    )
    select.add_argument(
        '--grid-points',
        type=int,
        nargs='+',
        default=None,
        help=f'grid points to train (0-{len(SELECTION_GRID) - 1}, default all): '
        + ', '.join(f'{i}: thr {t:g} w {w:g}' for i, (t, w) in enumerate(SELECTION_GRID)),
    )
    select.add_argument(
        '--select-val-root',
        default='data/composited_acrst_bench_selectval',
        help='the selection val set: a separate build of the bench set (another seed) whose val canvases '
        'are scored, never the reported val set',
    )
    select.add_argument('--select-val-seed', type=int, default=1, help='generation seed of that build')
    select.add_argument('--select-out', help='folder of selection.json (default: <work-dir>/selection)')
    pilot = parser.add_argument_group('pilot gate (run before a multi-seed run)')
    pilot.add_argument('--pilot', action='store_true', help='run the pilot gate instead of the benchmark')
    pilot.add_argument('--pilot-arm', default='acrst', choices=ACRST_RECIPE_ARMS)
    pilot.add_argument('--pilot-interval', type=int, default=100, help='iterations between checkpoints')
    pilot.add_argument('--gate-recall', type=float, default=0.3, help='per-class pseudo-label recall')
    pilot.add_argument('--gate-classes', type=int, default=6, help='classes that must reach it')
    args = parser.parse_args(argv)
    if args.seed is not None:
        args.seeds = [args.seed]
    methods = list(dict.fromkeys(canonical_arm(m) for m in args.methods))
    if args.mechanism:
        methods += [m for m in ('acrst', 'acrst_beta0') if m not in methods]
    args.methods = methods
    if args.pilot_interval <= 0:
        raise SystemExit(f'--pilot-interval must be > 0, got {args.pilot_interval}')
    if args.recipe:
        apply_recipe_args(args, read_recipe(args.recipe, args.recipe_use))
    if args.tau_cls is not None and not 0 <= args.tau_cls <= 1:
        raise SystemExit(f'--tau-cls must be in [0, 1], got {args.tau_cls}')
    if args.grid_points is not None and not set(args.grid_points) <= set(range(len(SELECTION_GRID))):
        raise SystemExit(f'--grid-points must be in 0-{len(SELECTION_GRID) - 1}, got {args.grid_points}')
    return args


# ----- pure evaluation math ---------------------------------------------------------------------------
def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU of boxes ``a`` (N, 4) and ``b`` (M, 4), (x1, y1, x2, y2)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-12)


def pseudo_label_quality(
    detections: list, ground_truth: list, num_classes: int, iou_thr: float = 0.5
) -> dict:
    """Per-class precision / recall of pseudo-labels against ground truth (greedy matching by score).

    A pseudo-label is right when it overlaps a still unmatched ground-truth box of its class with IoU >=
    ``iou_thr`` (highest-scoring pseudo-labels match first).

    Args:
        detections (list[tuple]): per image ``(boxes (N, 4), labels (N,), scores (N,))``.
        ground_truth (list[tuple]): per image ``(boxes (M, 4), labels (M,))``.
        num_classes (int): K.
        iou_thr (float): matching IoU. Defaults to 0.5.

    Returns:
        dict: ``tp``, ``fp``, ``fn`` (K,) int arrays and ``precision``, ``recall`` (K,) float arrays (NaN
        where undefined), plus the pooled ``precision_all`` / ``recall_all``.
    """
    tp, fp, fn = (np.zeros(num_classes, np.int64) for _ in range(3))
    for (boxes, labels, scores), (gt_boxes, gt_labels) in zip(detections, ground_truth):
        boxes, labels = np.asarray(boxes).reshape(-1, 4), np.asarray(labels, np.int64).reshape(-1)
        gt_boxes, gt_labels = np.asarray(gt_boxes).reshape(-1, 4), np.asarray(gt_labels, np.int64).reshape(-1)
        order = np.argsort(-np.asarray(scores, np.float64).reshape(-1), kind='stable')
        iou = box_iou(boxes, gt_boxes)
        matched = np.zeros(len(gt_boxes), bool)
        for i in order:
            cand = (gt_labels == labels[i]) & ~matched
            j = int(np.argmax(np.where(cand, iou[i], -1))) if cand.any() else -1
            if j >= 0 and iou[i, j] >= iou_thr:
                matched[j] = True
                tp[labels[i]] += 1
            else:
                fp[labels[i]] += 1
        np.add.at(fn, gt_labels[~matched], 1)
    with np.errstate(invalid='ignore', divide='ignore'):
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), np.nan)
        recall = np.where(tp + fn > 0, tp / np.maximum(tp + fn, 1), np.nan)
    total_tp, total_fp, total_fn = int(tp.sum()), int(fp.sum()), int(fn.sum())
    return {
        'tp': tp,
        'fp': fp,
        'fn': fn,
        'precision': precision,
        'recall': recall,
        'precision_all': total_tp / (total_tp + total_fp) if total_tp + total_fp else math.nan,
        'recall_all': total_tp / (total_tp + total_fn) if total_tp + total_fn else math.nan,
    }


def recall_gate(recall: dict, min_recall: float = 0.3, min_classes: int = 6) -> dict:
    """The pilot gate: the teacher's pseudo-labels reach ``min_recall`` on at least ``min_classes`` classes.

    Args:
        recall (dict[str, float]): per-class pseudo-label recall on the unlabeled images (K entries; NaN
            where the class has no ground truth there, which does not count as covered).
        min_recall (float): recall a class must reach. Defaults to 0.3.
        min_classes (int): classes that must reach it. Defaults to 6.

    Returns:
        dict: ``covered`` (int, classes with recall >= ``min_recall``), ``covered_classes`` (their names, in
        ``recall``'s order), ``passed`` (bool), ``min_recall``, ``min_classes``.
    """
    covered = [c for c, r in recall.items() if r is not None and not math.isnan(r) and r >= min_recall]
    return {
        'covered': len(covered),
        'covered_classes': covered,
        'passed': len(covered) >= min_classes,
        'min_recall': min_recall,
        'min_classes': min_classes,
    }


def least_squares_line(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Slope and intercept of the least-squares line through (P,) points ``x``, ``y`` (>= 2 distinct x).

    Closed form, so equal ``y`` give a slope of exactly 0.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    dx, dy = x - x.mean(), y - y.mean()
    slope = float((dx * dy).sum() / (dx * dx).sum())
    return slope, float(y.mean() - slope * x.mean())


def extrapolate_crossing(
    iterations: Sequence[float], covered: Sequence[float], target: float
) -> Optional[float]:
    """Where a least-squares line through (iteration, classes covered) reaches ``target``: an extrapolation.

    Args:
        iterations (Sequence[float]): (P,) checkpoint iterations.
        covered (Sequence[float]): (P,) classes covered at each.
        target (float): the number of classes the gate needs.

    Returns:
        float | None: the iteration where the line reaches ``target`` (not earlier than the last checkpoint);
        None with fewer than two distinct iterations or a slope <= 0 (the line never gets there).
    """
    x = np.asarray(iterations, np.float64)
    if len(np.unique(x)) < 2:
        return None
    slope, intercept = least_squares_line(x, covered)
    if slope <= 0:
        return None
    return float(max((target - intercept) / slope, x.max()))


def arm_differences(results: dict, minuend: str, subtrahend: str, keys=('mAP', 'rare_AP')) -> Optional[dict]:
    """Per-seed differences ``minuend - subtrahend`` over the seeds that ran both arms.

    Args:
        results (dict): ``{seed: {arm: {key: float}}}``.
        minuend (str): arm.
        subtrahend (str): arm.
        keys (tuple[str]): the numbers to difference. Defaults to mAP and rarest-third AP.

    Returns:
        dict | None: ``seeds`` (list) and per key ``per_seed`` (S,), ``mean``, ``sd`` (sample sd, NaN with
        one seed) and ``above_2sd`` (S,) bool (the seed's difference is above twice the sd; False when the sd
        is NaN); None when no seed ran both arms.
    """
    seeds = [s for s, per in results.items() if minuend in per and subtrahend in per]
    if not seeds:
        return None
    out: dict = {'seeds': seeds}
    for key in keys:
        per_seed = [results[s][minuend][key] - results[s][subtrahend][key] for s in seeds]
        mean, sd = mean_sd(per_seed)
        out[key] = {
            'per_seed': per_seed,
            'mean': mean,
            'sd': sd,
            'above_2sd': [bool(v > 2 * sd) for v in per_seed],
        }
    return out


def goal_met(diff: dict, time_ratios: Sequence[float], max_ratio: float) -> bool:
    """ACRST's target against the Soft Teacher base: >= 3 seeds, rarest-third gain above twice its sd on
    every seed, mAP not lower by more than its sd, iteration-time ratio <= ``max_ratio`` on every seed.

    Args:
        diff (dict): :func:`arm_differences` output of ``acrst - soft_teacher_base``.
        time_ratios (Sequence[float]): (S,) ACRST / base median iteration times.
        max_ratio (float): the largest acceptable time ratio.
    """
    rare, m_ap = diff['rare_AP'], diff['mAP']
    return bool(
        len(rare['per_seed']) >= 3
        and all(rare['above_2sd'])
        and m_ap['mean'] >= -m_ap['sd']
        and max(time_ratios) <= max_ratio
    )


def select_setting(points: Sequence[dict], grid: Sequence[tuple] = SELECTION_GRID) -> dict:
    """The Soft Teacher setting chosen from the grid points' saved results: the best selection-val mAP.

    Args:
        points (Sequence[dict]): finished grid points, each with ``index`` (into ``grid``), ``val_mAP``
            (float) and ``gate`` (:func:`recall_gate` output, ``passed``).
        grid (Sequence[tuple]): (P,) grid of (score threshold, unsupervised weight). Defaults to
            :data:`SELECTION_GRID`.

    Returns:
        dict: ``complete`` (every grid point finished), ``missing`` (indices not finished), ``selected``
        (the point with the highest val mAP, ties to the lower index; None unless complete),
        ``selected_passes_gate`` (bool | None) and ``gate_fallback`` (the best gate-passing point when the
        selected one fails the gate, else None; None too when no point passes).
    """
    by_index = {int(p['index']): p for p in points}
    missing = [i for i in range(len(grid)) if i not in by_index]
    out = {'complete': not missing, 'missing': missing, 'selected': None, 'selected_passes_gate': None,
           'gate_fallback': None}  # fmt: skip
    if missing:
        return out
    order = sorted(by_index.values(), key=lambda p: (-float(p['val_mAP']), int(p['index'])))
    selected = order[0]
    out['selected'] = selected
    out['selected_passes_gate'] = bool(selected['gate']['passed'])
    if not selected['gate']['passed']:
        out['gate_fallback'] = next((p for p in order if p['gate']['passed']), None)
    return out


def read_recipe(path: str, use: str = 'selected') -> dict:
    """The chosen grid point of a selection.json (``use``: 'selected' or 'gate_fallback'); raises, naming the
    file and what to do, when the selection is incomplete or has no such point."""
    if not osp.isfile(path):
        raise SystemExit(f'--recipe {path}: no such file; run --select first (it writes selection.json)')
    with open(path) as f:
        selection = json.load(f)
    if not selection.get('complete'):
        raise SystemExit(
            f'--recipe {path}: the selection grid is incomplete (points {selection.get("missing")} not run); '
            'finish them with --select --grid-points ...'
        )
    point = selection.get(use)
    if point is None:
        raise SystemExit(
            f'--recipe {path}: no {use!r} point (the selected point passes the gate, or no point passes '
            'it); use --recipe-use selected'
        )
    return point


def apply_recipe_args(args, point: dict) -> None:
    """Set a run's Soft Teacher settings to a selection grid point: ``tau_cls`` (the pseudo-label score
    threshold), ``unsup_weight``, the box-jitter filter and the supervised arms' EMA; a conflicting
    ``--tau-cls`` / ``--unsup-weight`` raises."""
    for key, value in (('tau_cls', point['score_thr']), ('unsup_weight', point['unsup_weight'])):
        given = getattr(args, key, None)
        if given is not None and given != value:
            raise SystemExit(
                f'--{key.replace("_", "-")} {given} conflicts with --recipe ({key} {value}); leave it out'
            )
        setattr(args, key, value)
    args.box_jitter = True
    args.supervised_ema = True


def semi_recipe(
    semi: dict, score_thr: Optional[float], unsup_weight: Optional[float], box_jitter: bool
) -> dict:
    """The Soft Teacher settings every arm on ACRST's recipe shares, applied to its ``semi_train_cfg``.

    Args:
        semi (dict): the ACRST ``semi_train_cfg`` (changed in place).
        score_thr (float | None): pseudo-label score threshold: ``tau_cls = rpn_pseudo_thr = cls_pseudo_thr``
            (None: the config's).
        unsup_weight (float | None): unsupervised loss weight (None: the config's).
        box_jitter (bool): add :data:`BOX_JITTER_RULE` (the model type must then be :data:`BOX_JITTER_MODEL`).

    Returns:
        dict: ``semi``.
    """
    if score_thr is not None:
        semi.update(tau_cls=score_thr, rpn_pseudo_thr=score_thr, cls_pseudo_thr=score_thr)
    if unsup_weight is not None:
        semi.update(unsup_weight=unsup_weight)
    if box_jitter:
        semi.update(BOX_JITTER_RULE)
    return semi


def supervised_ema_hook(custom_hooks: Sequence[dict], burn_in: int) -> dict:
    """mmengine's ``EMAHook`` for a supervised arm, with the semi-supervised teacher's EMA.

    The teacher (``MeanTeacherHook``: ``teacher = (1 - m) teacher + m student``, buffers too when
    ``skip_buffer=False``) is reset to the student at the end of burn-in and averaged from the next
    iteration; ``EMAHook`` with ``begin_iter=burn_in`` copies the weights until then and averages with the
    same formula and momentum after, its buffers averaged as the teacher's are.

    Args:
        custom_hooks (Sequence[dict]): the ACRST config's custom hooks (one ``MeanTeacherHook``).
        burn_in (int): burn-in iterations.

    Returns:
        dict: the ``EMAHook`` config.
    """
    teachers = [h for h in custom_hooks if h['type'] == 'MeanTeacherHook']
    if len(teachers) != 1:
        raise ValueError(f'supervised EMA: expected one MeanTeacherHook in custom_hooks, got {len(teachers)}')
    (teacher,) = teachers
    return dict(
        type='EMAHook',
        ema_type='ExponentialMovingAverage',
        momentum=teacher.get('momentum', 0.001),
        update_buffers=not teacher.get('skip_buffer', True),
        begin_iter=int(burn_in),
    )


def register_box_jitter():
    """Register :data:`BOX_JITTER_MODEL`: ACRST whose pseudo boxes get mmdet ``SoftTeacher``'s box-jitter
    uncertainty (its own ``compute_uncertainty_with_aug``) instead of ACRST's zeros, so that
    ``semi_train_cfg.reg_pseudo_thr`` filters the regressed pseudo boxes as in mmdet; pasted instances keep
    uncertainty 0. Idempotent; needs ``mmssod`` imported. Returns the class."""
    from mmdet.models.detectors import SoftTeacher
    from mmdet.registry import MODELS

    from mmssod.models.acrst import ACRST

    if BOX_JITTER_MODEL in MODELS.module_dict:
        return MODELS.module_dict[BOX_JITTER_MODEL]

    class ACRSTBoxJitter(ACRST):
        """ACRST with mmdet Soft Teacher's box-jitter regression filter (``reg_pseudo_thr``)."""

        def compute_uncertainty_with_aug(self, x, batch_data_samples):
            """mmdet's (N,) uncertainties per image; an image without pseudo boxes gets (0,), not mmdet's
            (0, 4), since ACRST appends the pasted instances' (P,) zeros to them."""
            uncs = SoftTeacher.compute_uncertainty_with_aug(self, x, batch_data_samples)
            return [u.reshape(len(ds.gt_instances)) for u, ds in zip(uncs, batch_data_samples)]

    MODELS.register_module(name=BOX_JITTER_MODEL, module=ACRSTBoxJitter)
    return ACRSTBoxJitter


def config_diff(a, b, prefix: str = '') -> list[str]:
    """Dotted paths where two config trees differ (dicts by key, equal-length lists by index).

    Args:
        a (dict | list | Any): a config (``Config.to_dict()``) or part of one.
        b (dict | list | Any): the other.
        prefix (str): path of ``a`` / ``b`` in the whole config. Defaults to ''.

    Returns:
        list[str]: sorted paths (``''`` for the whole tree when its values differ).
    """
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b), key=str):
            path = f'{prefix}.{key}' if prefix else str(key)
            out += [path] if (key in a) != (key in b) else config_diff(a[key], b[key], path)
        return sorted(out)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        return sorted(p for i, (x, y) in enumerate(zip(a, b)) for p in config_diff(x, y, f'{prefix}.{i}'))
    return [] if a == b else [prefix]


# ----- data and configs -------------------------------------------------------------------------------
def ensure_bench_data(args) -> str:
    """Build the bench set on first use (same flags, same files); several bench processes may start together:
    one builds, the others wait for it (:func:`~tools.benchmarks.composited.ensure_detection`)."""
    from tools.benchmarks.composited import ensure_detection

    root = osp.join(ROOT, args.bench_root) if not osp.isabs(args.bench_root) else args.bench_root
    cfg = bench_data_config(args, args.bench_num_train, (float(args.bench_percent),), (1,))
    return ensure_detection(root, seed=0, cfg=cfg)


def bench_data_config(args, num_train: int, percents: tuple, folds: tuple):
    """The bench set's generator settings (``--bench-*``) with ``num_train`` train canvases and the labeled
    splits of ``percents`` x ``folds``."""
    from tools.benchmarks.composited import DetectionConfig

    return DetectionConfig(
        num_train=num_train,
        num_val=args.bench_num_val,
        height=args.bench_size,
        width=args.bench_size,
        objects_per_image=(1, 6),
        size_range=(32, max(args.bench_size // 2, 40)),
        imbalance_ratio=args.bench_imbalance,
        val_imbalance_ratio=3.0,
        percents=percents,
        folds=folds,
        corrupt=False,
    )


def split_files(root: str, percent) -> tuple[str, str]:
    """The fold-1 labeled / unlabeled annotation files of ``percent`` under ``root`` (relative)."""
    for p in (f'{percent}', f'{float(percent):g}', f'{float(percent)}'):
        labeled = f'semi_anns/instances_train.1@{p}.json'
        if osp.isfile(osp.join(root, labeled)):
            return labeled, f'semi_anns/instances_train.1@{p}-unlabeled.json'
    raise SystemExit(f'no fold-1 {percent}% split under {root}/semi_anns')


def data_setup(args) -> dict:
    """Base config, data root and split files of this run."""
    if args.config:
        return {'config': args.config, 'root': None}
    if args.demo:
        return {'config': DEMO_CONFIG, 'root': None}
    if args.lt:
        root = osp.join(ROOT, 'data/composited_lt_det')
        return {'config': LT_CONFIG, 'root': root, 'splits': split_files(root, args.percent), 'size': 384}
    root = ensure_bench_data(args)
    return {
        'config': DEMO_CONFIG,
        'root': root,
        'splits': split_files(root, args.bench_percent),
        'size': args.bench_size,
    }


def _retarget(node, old: str, new: str):
    if isinstance(node, dict):
        for key, value in node.items():
            node[key] = new + value[len(old) :] if isinstance(value, str) and value.startswith(old) else value
            _retarget(node[key], old, new)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            node[i] = new + value[len(old) :] if isinstance(value, str) and value.startswith(old) else value
            _retarget(node[i], old, new)


def strip_paste(pipeline: list) -> list:
    """A pipeline without ACRSTPaste and without the pasted_* meta keys (for the baselines); the branches of a
    MultiBranch (values that are pipelines themselves) included."""
    out = []
    for t in pipeline:
        t = dict(t)
        if t['type'] == 'ACRSTPaste':
            continue
        if 'meta_keys' in t:
            t['meta_keys'] = tuple(k for k in t['meta_keys'] if not k.startswith('pasted_'))
        for key, value in t.items():
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                t[key] = strip_paste(value)
        out.append(t)
    return out


def mmdet_soft_teacher(acrst_model):
    """mmdet's SoftTeacher with its default recipe on an ACRST model config's detector, data preprocessor and
    unsupervised weight."""
    from mmengine.config import ConfigDict

    return ConfigDict(
        type='SoftTeacher',
        detector=acrst_model.detector,
        data_preprocessor=acrst_model.data_preprocessor,
        semi_train_cfg=dict(
            freeze_teacher=True,
            sup_weight=1.0,
            unsup_weight=acrst_model.semi_train_cfg.unsup_weight,
            pseudo_label_initial_score_thr=0.5,
            rpn_pseudo_thr=0.9,
            cls_pseudo_thr=0.9,
            reg_pseudo_thr=0.02,
            jitter_times=10,
            jitter_scale=0.06,
            min_pseudo_bbox_wh=(1e-2, 1e-2),
        ),
        semi_test_cfg=dict(predict_on='teacher'),
    )


def use_backbone(detector, name: str) -> None:
    """Put the detector on ``name``: the pretrained EfficientNet-Lite0 base or the scratch half ResNet-18.

    A detector already on that backbone is left as it is. Otherwise backbone, neck, anchor strides, RoI
    extractor, head widths (and, for Lite0, the data preprocessor) come from the backbone's base; the class
    count and the train / test settings stay the config's.
    """
    from mmengine.config import Config

    if name == 'efficientnet-lite0':
        if detector.backbone.type == 'EfficientNetLite':
            return
        base = Config.fromfile(LITE0_BASE).model
        detector.backbone = base.backbone
        detector.neck = base.neck
        detector.rpn_head.in_channels = base.rpn_head.in_channels
        detector.rpn_head.feat_channels = base.rpn_head.feat_channels
        detector.rpn_head.anchor_generator = base.rpn_head.anchor_generator
        detector.roi_head.bbox_roi_extractor = base.roi_head.bbox_roi_extractor
        detector.roi_head.bbox_head.in_channels = base.roi_head.bbox_head.in_channels
        detector.roi_head.bbox_head.fc_out_channels = base.roi_head.bbox_head.fc_out_channels
        detector.data_preprocessor = base.data_preprocessor
        return
    if detector.backbone.type == 'ResNet':
        return
    strides = [4, 8, 16, 32]
    detector.backbone = dict(
        type='ResNet',
        depth=18,
        stem_channels=32,
        base_channels=32,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None,
    )
    detector.neck.in_channels = [32, 64, 128, 256]
    detector.neck.num_outs = 5
    detector.rpn_head.anchor_generator.strides = strides + [64]
    detector.roi_head.bbox_roi_extractor.featmap_strides = strides


def label_bank_file(work_dir: str) -> str:
    """Where the ``supervised_fbr`` arm's label bank is written (absolute: the training runs elsewhere)."""
    return osp.join(osp.abspath(work_dir), 'cropbank', 'label_bank.pkl')


def derive_config(args, method: str, work_dir: str, seed: int, setup: dict):
    """The config of one arm, derived from the ACRST config (see the module docstring for the arms).

    Everything but the part under test is shared: data, detector, schedule, batch, seed, burn-in, filter
    thresholds, EMA, augmentation and the CropBank settings come from the same ACRST config and flags.
    """
    from mmengine.config import Config, ConfigDict

    method = canonical_arm(method)
    if method not in ARMS:
        raise ValueError(f'unknown arm {method!r}; the arms are {list(ARMS)}')
    cfg = Config.fromfile(setup['config'])
    labeled, unlabeled = cfg.train_dataloader.dataset.datasets
    if setup.get('root'):
        old = labeled.data_root
        _retarget(cfg._cfg_dict, old, setup['root'].rstrip('/') + '/')
        labeled, unlabeled = cfg.train_dataloader.dataset.datasets
        labeled.ann_file, unlabeled.ann_file = setup['splits']
    cfg.work_dir = work_dir
    cfg.randomness = randomness(args, seed)
    cfg.train_cfg.max_iters = args.iters
    cfg.train_cfg.val_interval = args.iters
    for sched in cfg.param_scheduler:
        if sched.type == 'MultiStepLR':
            sched.end = args.iters
            sched.milestones = [int(args.iters * 0.75), int(args.iters * 0.9)]
        if sched.type == 'LinearLR':
            sched.end = min(sched.end, max(args.iters // 10, 1))
    if args.lr:
        cfg.optim_wrapper.optimizer.lr = args.lr
    cfg.default_hooks.logger.interval = 1
    cfg.log_processor = dict(by_epoch=False, window_size=1)  # log each iteration's own time, not a mean
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=False, interval=args.iters, max_keep_ckpts=1
    )
    if args.batch_size:
        cfg.train_dataloader.batch_size = args.batch_size
        cfg.train_dataloader.sampler.batch_size = args.batch_size
    if args.val_images:
        cfg.val_dataloader.dataset.indices = args.val_images
        cfg.test_dataloader = cfg.val_dataloader
    use_backbone(cfg.model.detector, args.backbone)
    cfg.model.data_preprocessor.data_preprocessor = cfg.model.detector.data_preprocessor
    semi = cfg.model.semi_train_cfg
    semi.ml_scores_file = args.ml_scores
    semi.burn_in_iters = args.burn_in
    # the Soft Teacher settings of the regime: every arm on ACRST's recipe alike
    box_jitter = bool(getattr(args, 'box_jitter', False))
    semi_recipe(semi, getattr(args, 'tau_cls', None), getattr(args, 'unsup_weight', None), box_jitter)
    if box_jitter:
        cfg.model.type = BOX_JITTER_MODEL
        imports = list(cfg.get('custom_imports', {}).get('imports', []))
        cfg.custom_imports = dict(
            imports=imports + ['tools.benchmarks.acrst_bench'], allow_failed_imports=False
        )
    if setup.get('val_root'):  # score on another val set (the selection grid): retarget val and test
        old_root, new_root = setup['root'].rstrip('/') + '/', setup['val_root'].rstrip('/') + '/'
        for key in ('val_dataloader', 'test_dataloader', 'val_evaluator', 'test_evaluator'):
            _retarget(cfg[key], old_root, new_root)
    bank_hook = [h for h in cfg.custom_hooks if h.type == 'CropBankHook'][0]
    bank_hook.refresh_interval = args.refresh_interval
    # the paper's bank: the whole labeled set, a wide pseudo bank; AFFR at the paper's beta
    bank_hook.update(label_cap=None, pseudo_cap=1000, beta=0.6)
    if method in CROPBANK_ARMS:
        hook_settings, semi_settings = CROPBANK_ARMS[method]
        bank_hook.update(hook_settings)
        semi.update(semi_settings)
        return cfg

    # no CropBank on the unlabeled images; the labeled images keep the paste only in supervised_fbr
    unlabeled.pipeline = strip_paste(unlabeled.pipeline)
    if method != 'supervised_fbr':
        labeled.pipeline = strip_paste(labeled.pipeline)
    cfg.custom_hooks = [h for h in cfg.custom_hooks if h.type != 'CropBankHook']
    if method == 'soft_teacher_base':
        semi.update(BASE_SEMI)
        return cfg
    if method == 'soft_teacher_mmdet':
        cfg.model = mmdet_soft_teacher(cfg.model)
        return cfg
    # supervised arms: the detector alone on the labeled split, the labeled share of each batch
    ratio = cfg.train_dataloader.sampler.source_ratio
    batch = max(cfg.train_dataloader.batch_size * ratio[0] // sum(ratio), 1)
    sup = [t for t in labeled.pipeline if t['type'] != 'MultiBranch'] + [dict(type='PackDetInputs')]
    if method == 'supervised_fbr':
        # the ACRST config's own paste transform on the labeled images, reading a label bank that
        # write_label_bank() fills before training (no CropBankHook: it needs an ACRST detector)
        sup = [
            ConfigDict(t, bank_file=label_bank_file(work_dir)) if t['type'] == 'ACRSTPaste' else t
            for t in sup
        ]
        if not any(t['type'] == 'ACRSTPaste' for t in sup):
            raise ValueError(
                f'supervised_fbr: the labeled pipeline of {setup["config"]} has no ACRSTPaste to paste with'
            )
    labeled.pipeline = sup
    cfg.model = cfg.model.detector
    cfg.train_dataloader = dict(
        batch_size=batch,
        num_workers=cfg.train_dataloader.num_workers,
        persistent_workers=True,
        sampler=dict(type='DefaultSampler', shuffle=True),
        batch_sampler=dict(type='AspectRatioBatchSampler'),
        dataset=labeled,
    )
    cfg.val_cfg = dict(type='ValLoop')
    # scored on an EMA of the weights, as the semi-supervised arms on their teacher (--supervised-ema)
    ema = getattr(args, 'supervised_ema', False)
    cfg.custom_hooks = [supervised_ema_hook(cfg.custom_hooks, args.burn_in)] if ema else []
    return cfg


def write_label_bank(cfg) -> str:
    """Write the label-bank-only CropBank file the ``supervised_fbr`` arm's ``ACRSTPaste`` reads.

    The bank is the one ``CropBankHook`` builds before training (every ground-truth box of the labeled
    split, no image read), with an empty pseudo bank and uniform classes (beta 0); it never changes.

    Args:
        cfg (Config): the ``supervised_fbr`` config (its train dataset is the labeled split).

    Returns:
        str: the bank file.
    """
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope

    import mmssod  # noqa: F401
    from mmssod.datasets.cropbank import CropBank

    init_default_scope('mmdet')
    dataset_cfg = cfg.train_dataloader.dataset
    (paste,) = [t for t in dataset_cfg.pipeline if t['type'] == 'ACRSTPaste']
    dataset = DATASETS.build(dict(dataset_cfg, pipeline=[]))
    bank = CropBank(cfg.model.roi_head.bbox_head.num_classes, label_cap=None, pseudo_cap=0, beta=0.0)
    bank.build_label_bank(dataset.get_data_info(i) for i in range(len(dataset)))
    bank.save(paste['bank_file'])
    print(
        f'[acrst_bench] label bank of {bank.num_labeled_images} labeled images, records per class '
        f'{bank.sizes().tolist()} -> {paste["bank_file"]}',
        flush=True,
    )
    return paste['bank_file']


# ----- runs -------------------------------------------------------------------------------------------
def run_train(args, config_file: str, work_dir: str, what: str) -> None:
    """Train a config with ``tools/train.py`` in its own process (environment of
    :func:`~tools.benchmarks.determinism.run_env`); raise with the end of its stderr."""
    # a bank location announced in this process' environment would override the arm's own bank file
    env = {k: v for k, v in run_env(args).items() if k != 'MMSSOD_CROPBANK_FILE'}
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools/train.py'), config_file, '--work-dir', work_dir],
        cwd=ROOT,
        env={**env, 'PYTHONPATH': ROOT},
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f'{what} failed:\n{proc.stderr[-4000:]}')


def read_run(work_dir: str, skip: int = 5) -> dict:
    """Final val metrics and the median per-iteration time after ``skip`` iterations (warm-up, burn-in)."""
    (scalars,) = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))[-1:]
    times, metrics = [], {}
    with open(scalars) as f:
        for line in f:
            rec = json.loads(line)
            if 'loss' in rec and 'time' in rec:
                times.append(rec['time'])
            elif any(k.endswith('bbox_mAP') for k in rec):
                metrics = rec
    warm = times[min(skip, len(times) - 1) :]
    return {
        'metrics': metrics,
        'iter_time': statistics.median(warm) if warm else float('nan'),
        'iters': len(times),
    }


def class_ap(metrics: dict, classes: list[str]) -> tuple[float, float, dict]:
    """mAP, mAP_50 and per-class AP (teacher when present) from CocoMetric's classwise output, in percent."""
    prefix = 'teacher/coco/' if any(k.startswith('teacher/') for k in metrics) else 'coco/'
    per_class = {c: 100 * float(metrics.get(f'{prefix}{c}_precision', float('nan'))) for c in classes}
    return (
        100 * float(metrics.get(f'{prefix}bbox_mAP', float('nan'))),
        100 * float(metrics.get(f'{prefix}bbox_mAP_50', float('nan'))),
        per_class,
    )


def train_ssmll(args, setup: dict, seed: int) -> str:
    """Train SSMLL on this run's data for ``--ssmll-iters`` and write its scores of the unlabeled set."""
    from mmengine.config import Config

    work_dir = osp.join(args.work_dir, f'ssmll_seed{seed}')
    out = osp.join(work_dir, 'unlabeled_scores.json')
    if osp.isfile(out):
        return out
    cfg = Config.fromfile(SSMLL_CONFIG)
    if setup.get('root'):
        _retarget(cfg._cfg_dict, cfg.labeled_dataset.data_root, setup['root'].rstrip('/') + '/')
        labeled_ann, unlabeled_ann = setup['splits']
        cfg.train_dataloader.dataset.datasets[0].ann_file = labeled_ann
        cfg.train_dataloader.dataset.datasets[1].ann_file = unlabeled_ann
        cfg.score_dataset.ann_file = unlabeled_ann
    cfg.randomness = randomness(args, seed)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=args.ssmll_iters)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    cfg.model.pretrain_iters = min(cfg.model.pretrain_iters, args.ssmll_iters // 5)
    cfg.param_scheduler = [
        dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=args.ssmll_iters, eta_min=1e-5)
    ]
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=args.ssmll_iters)
    cfg.work_dir = work_dir
    os.makedirs(work_dir, exist_ok=True)
    config_file = osp.join(work_dir, 'ssmll.py')
    cfg.dump(config_file)
    run_train(args, config_file, work_dir, 'SSMLL')
    proc = subprocess.run(
        [
            sys.executable,
            osp.join(ROOT, 'tools/acrst/ssmll_scores.py'),
            config_file,
            osp.join(work_dir, f'iter_{args.ssmll_iters}.pth'),
            '--out',
            out,
            '--eval-negatives',
        ],
        cwd=ROOT,
        env={**run_env(args), 'PYTHONPATH': ROOT},
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f'SSMLL scores failed:\n{proc.stderr[-4000:]}')
    print(proc.stdout.strip().splitlines()[-2] if proc.stdout.strip() else '', flush=True)
    return out


def teacher_detections(config_file: str, checkpoint: str, min_score: float) -> tuple[list, list, list, list]:
    """The trained teacher's detections (score >= ``min_score``) on the unlabeled images and their GT."""
    import torch
    from mmdet.registry import DATASETS, MODELS
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    import mmssod  # noqa: F401

    init_default_scope('mmdet')
    register_box_jitter()
    cfg = Config.fromfile(config_file)
    unlabeled = cfg.train_dataloader.dataset.datasets[1]
    dataset = DATASETS.build(
        dict(unlabeled, pipeline=cfg.test_dataloader.dataset.pipeline, test_mode=True, filter_cfg=None)
    )
    cfg.model.semi_train_cfg.ml_scores_file = None
    model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu')
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    model.to(device).eval()
    model.teacher.roi_head.test_cfg.score_thr = min_score
    dets, gts, ids, paths = [], [], [], []
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, collate_fn=pseudo_collate, num_workers=1)
    with torch.no_grad():
        for batch in loader:
            for ds in model.test_step(batch):
                pred = ds.pred_instances
                dets.append((pred.bboxes.cpu().numpy(), pred.labels.cpu().numpy(), pred.scores.cpu().numpy()))
                ids.append(str(ds.metainfo['img_id']))
                paths.append(ds.metainfo['img_path'])
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        inst = [x for x in info['instances'] if not x.get('ignore_flag', 0)]
        gts.append(
            (np.array([x['bbox'] for x in inst], np.float32), np.array([x['bbox_label'] for x in inst]))
        )
    return dets, gts, ids, paths


def pseudo_quality(config_file: str, checkpoint: str, ml_scores: Optional[str], classes: list[str]) -> dict:
    """A checkpoint's teacher pseudo-labels on the unlabeled images against their composited ground truth.

    Precision / recall per class after filter stage 1 (``tau_cls``) alone, and after both stages when SSMLL
    scores are given and the config has ``tau_ml``.

    Returns:
        dict: ``{'stage1': {...}, 'both': {...}}``, each with per-class ``precision``, ``recall``,
        ``num_pseudo`` and the pooled ``precision_all`` / ``recall_all``.
    """
    import torch
    from mmengine.config import Config

    from mmssod.models.acrst.functional import two_stage_filter

    semi = Config.fromfile(config_file).model.semi_train_cfg
    dets, gts, ids, _ = teacher_detections(config_file, checkpoint, semi.pseudo_label_initial_score_thr)
    scores = None
    if ml_scores and semi.get('tau_ml') is not None:
        with open(ml_scores) as f:
            scores = json.load(f)['scores']
    out = {}
    for stage, tau_ml in (('stage1', None), ('both', semi.get('tau_ml'))):
        if stage == 'both' and scores is None:
            continue
        kept = []
        for (boxes, labels, sc), img_id in zip(dets, ids):
            ml = None if tau_ml is None else torch.tensor(scores[img_id])
            keep = two_stage_filter(
                torch.from_numpy(sc), torch.from_numpy(labels), ml, semi.tau_cls, tau_ml
            ).numpy()
            kept.append((boxes[keep], labels[keep], sc[keep]))
        q = pseudo_label_quality(kept, gts, len(classes))
        out[stage] = {
            'precision': dict(zip(classes, q['precision'].tolist())),
            'recall': dict(zip(classes, q['recall'].tolist())),
            'num_pseudo': dict(zip(classes, (q['tp'] + q['fp']).tolist())),
            'precision_all': q['precision_all'],
            'recall_all': q['recall_all'],
        }
    return out


def mechanism(args, config_file: str, work_dir: str, ml_scores: Optional[str], classes: list[str]) -> dict:
    """Pseudo-label precision / recall per class of the final teacher: filter stage 1 alone vs both stages."""
    return pseudo_quality(config_file, osp.join(work_dir, f'iter_{args.iters}.pth'), ml_scores, classes)


def config_digest(cfg) -> str:
    """SHA-256 of a config's content (a saved run is reused only for an equal config)."""
    text = json.dumps(cfg.to_dict(), sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def run_settings(args, method: str, seed: int, cfg) -> dict:
    """What decides a trained arm's result: a finished run with equal settings is reused, not retrained."""
    settings = {k: getattr(args, k, None) for k in RUN_KEYS}
    settings.update({k: getattr(args, k) for k in RECIPE_KEYS if getattr(args, k, None) not in (None, False)})
    return dict(settings, **run_identity(args), arm=method, seed=seed, config_sha256=config_digest(cfg))


def run_arm(args, method: str, seed: int, setup: dict, classes: list, rare: list) -> dict:
    """Train one arm with one seed and read its numbers; a saved result with equal settings is reused.

    The result is saved as ``<work-dir>/seed<S>/<arm>_result.json`` (with its settings), so arms and seeds
    trained by several processes are reported together by one.
    """
    work_dir = osp.join(args.work_dir, f'seed{seed}', method)
    cfg = derive_config(args, method, work_dir, seed, setup)
    config_file = osp.join(args.work_dir, f'seed{seed}', f'{method}.py')
    os.makedirs(osp.dirname(config_file), exist_ok=True)
    cfg.dump(config_file)
    settings = run_settings(args, method, seed, cfg)
    done = osp.join(args.work_dir, f'seed{seed}', f'{method}_result.json')
    res = saved_run(done, settings)
    if res is not None:
        print(f'[acrst_bench] reusing seed {seed} {method}: {done}', flush=True)
    else:
        start = time.time()
        pilot_dir = pilot_training(args, method, seed, setup)
        if pilot_dir is not None:  # the pilot's training is this arm's: only its checkpoints differ
            print(
                f'[acrst_bench] seed {seed} {method}: reading the training of its pilot ({pilot_dir})',
                flush=True,
            )
            work_dir = pilot_dir
        else:
            if method == 'supervised_fbr':
                write_label_bank(cfg)
            run_train(args, config_file, work_dir, f'{method} (seed {seed})')
        # the same timing window for every arm: after warm-up and after ACRST's supervised-only burn-in
        run = read_run(work_dir, skip=max(5, args.burn_in))
        m_ap, m_ap50, per_class = class_ap(run['metrics'], classes)
        res = {
            'mAP': m_ap,
            'mAP_50': m_ap50,
            'rare_AP': statistics.mean(per_class[c] for c in rare),
            'per_class_AP': per_class,
            'iter_time_s': run['iter_time'],
            'iters_logged': run['iters'],
            'wall_s': time.time() - start,
            'trained_in': work_dir,
        }
        stats_file = osp.join(work_dir, 'cropbank', 'stats.json')
        if osp.isfile(stats_file):
            with open(stats_file) as f:
                stats = json.load(f)
            res['pasted_hist'] = dict(zip(classes, stats['pasted_class_counts']))
            res['pseudo_hist'] = dict(zip(classes, stats['pseudo_class_counts']))
            res['final_mu'] = dict(zip(classes, stats['refreshes'][-1]['mu'])) if stats['refreshes'] else None
        res['settings'] = settings
        res['reproducibility'] = run_record(args)
    if args.mechanism and method == 'acrst' and 'pseudo_quality' not in res:
        res['pseudo_quality'] = mechanism(
            args, config_file, res.get('trained_in', work_dir), args.ml_scores, classes
        )
    with open(done, 'w') as f:
        json.dump(res, f, indent=1, default=float)
    print(
        f'[acrst_bench] seed {seed} {method}: mAP {res["mAP"]:.2f}, mAP_50 {res["mAP_50"]:.2f}, rare-third '
        f'AP {res["rare_AP"]:.2f}, {res["iter_time_s"]:.3f} s/iter, {res["wall_s"]:.0f} s',
        flush=True,
    )
    return res


def device_name() -> str:
    """Where the arms train: 'cuda' when available, else 'cpu'."""
    import torch

    return 'cuda' if torch.cuda.is_available() else 'cpu'


def provenance_of(device: str) -> str:
    """How the numbers are labelled: the data's origin and the scale they ran at."""
    return 'composited from real images, ' + ('CPU scale' if device == 'cpu' else device)


# ----- pilot gate -------------------------------------------------------------------------------------
def pilot_checkpoints(iters: int, interval: int) -> list[int]:
    """Iterations with a pilot checkpoint: every ``interval`` up to ``iters`` (the last one always)."""
    its = list(range(interval, iters + 1, interval))
    return its if its and its[-1] == iters else its + [iters]


def regime(args) -> dict:
    """The data, schedule and thresholds of a run (a pilot vouches for runs with the same regime)."""
    return {k: getattr(args, k, None) for k in REGIME_KEYS}


def pilot_checkpoint_hook(interval: int) -> dict:
    """The only change a pilot makes to its arm's config: a kept checkpoint every ``interval`` iterations."""
    return dict(type='CheckpointHook', by_epoch=False, interval=interval, max_keep_ckpts=-1)


def pilot_training(args, method: str, seed: int, setup: dict) -> Optional[str]:
    """The work dir of a finished pilot of ``method`` / ``seed`` trained with this run's settings, else None.

    A pilot's config is its arm's config plus :func:`pilot_checkpoint_hook`, so a pilot whose last checkpoint
    was evaluated with equal settings (flags, SSMLL scores, config digest) already is the arm's training run.
    """
    pilot_dir = osp.join(args.work_dir, f'pilot_{method}_seed{seed}')
    last = osp.join(pilot_dir, f'pilot_iter{args.iters}.json')
    if not osp.isfile(last):
        return None
    with open(last) as f:
        saved = json.load(f).get('settings', {})
    cfg = derive_config(args, method, pilot_dir, seed, setup)
    cfg.default_hooks.checkpoint = pilot_checkpoint_hook(saved.get('pilot_interval'))
    expected = dict(
        run_settings(args, method, seed, cfg),
        pilot_interval=saved.get('pilot_interval'),
        iteration=args.iters,
        gate_recall=saved.get('gate_recall'),
    )
    return pilot_dir if saved == expected else None


def run_pilot(args, setup: dict, classes: list[str]) -> dict:
    """Train ``--pilot-arm`` with a checkpoint every ``--pilot-interval`` iterations; evaluate the gate.

    At each checkpoint the teacher's pseudo-labels after filter stage 1 (the stage every arm on ACRST's recipe
    shares) are matched against the composited ground truth of the unlabeled images; the classes with recall
    >= ``--gate-recall`` are counted. The gate is read at the last checkpoint. When it fails, a least-squares
    line through the checkpoints after burn-in gives the iteration where it would reach ``--gate-classes``
    (an extrapolation, labelled so). Per-checkpoint JSONs are reused with equal settings; writes
    ``<work-dir>/pilot_<arm>_seed<S>.json`` and ``.png``.
    """
    seed, arm = args.seeds[0], args.pilot_arm
    ml_scores = args.ml_scores or (train_ssmll(args, setup, seed) if args.ssmll_iters else None)
    seed_args = argparse.Namespace(**{**vars(args), 'ml_scores': ml_scores})
    name = f'pilot_{arm}_seed{seed}'
    work_dir = osp.join(args.work_dir, name)
    cfg = derive_config(seed_args, arm, work_dir, seed, setup)
    cfg.default_hooks.checkpoint = pilot_checkpoint_hook(args.pilot_interval)
    os.makedirs(work_dir, exist_ok=True)
    config_file = work_dir + '.py'
    cfg.dump(config_file)
    its = pilot_checkpoints(args.iters, args.pilot_interval)
    settings = dict(run_settings(seed_args, arm, seed, cfg), pilot_interval=args.pilot_interval)
    ckpts = [osp.join(work_dir, f'iter_{it}.pth') for it in its]
    if not all(osp.isfile(c) for c in ckpts):
        run_train(args, config_file, work_dir, f'pilot {arm} (seed {seed})')
    points = []
    for it, ckpt in zip(its, ckpts):
        done = osp.join(work_dir, f'pilot_iter{it}.json')
        point = saved_run(done, dict(settings, iteration=it, gate_recall=args.gate_recall))
        if point is None:
            quality = pseudo_quality(config_file, ckpt, ml_scores, classes)
            point = {
                'iteration': it,
                'after_burn_in': it > args.burn_in,
                'gate': recall_gate(quality['stage1']['recall'], args.gate_recall, args.gate_classes),
                'pseudo_quality': quality,
                'settings': dict(settings, iteration=it, gate_recall=args.gate_recall),
            }
            with open(done, 'w') as f:
                json.dump(point, f, indent=1, default=float)
        point['gate'] = recall_gate(
            point['pseudo_quality']['stage1']['recall'], args.gate_recall, args.gate_classes
        )
        points.append(point)
        print(
            f'[acrst_bench] pilot {arm} iteration {it}: {point["gate"]["covered"]} classes with pseudo-label '
            f'recall >= {args.gate_recall} ({point["gate"]["covered_classes"]})',
            flush=True,
        )
    final = points[-1]['gate']
    summary = {
        'arm': arm,
        'seed': seed,
        'regime': regime(args),
        'provenance': provenance_of(device_name()),
        'gate': dict(final, iteration=its[-1]),
        'points': [
            {
                'iteration': p['iteration'],
                'after_burn_in': p['after_burn_in'],
                **p['gate'],
                'recall': p['pseudo_quality']['stage1']['recall'],
            }
            for p in points
        ],  # fmt: skip
    }
    if not final['passed']:
        after = [p for p in points if p['after_burn_in']]
        fit = after if len(after) >= 2 else points
        crossing = extrapolate_crossing(
            [p['iteration'] for p in fit], [p['gate']['covered'] for p in fit], args.gate_classes
        )
        which = 'after burn-in' if fit is after else '(fewer than 2 after burn-in: all)'
        summary['extrapolation'] = {
            'what': f'linear extrapolation (least squares over {len(fit)} checkpoints {which}), not a '
            'measurement',
            'iterations_fitted': [p['iteration'] for p in fit],
            'crossing_iteration': crossing,
        }
    outlook = ''
    if not final['passed']:
        crossing = summary['extrapolation']['crossing_iteration']
        outlook = (
            '; linear extrapolation: the fitted line does not rise, no crossing'
            if crossing is None
            else f'; linear extrapolation (not measured): crossing near iteration {crossing:.0f}'
        )
    print(
        f'[acrst_bench] pilot gate ({args.gate_classes} of {len(classes)} classes with recall >= '
        f'{args.gate_recall} at iteration {its[-1]}): {"passed" if final["passed"] else "NOT passed"}'
        + outlook,
        flush=True,
    )
    path = osp.join(args.work_dir, name + '.json')
    with open(path, 'w') as f:
        json.dump(summary, f, indent=1, default=float)
    summary['png'] = save_pilot_curve(args, summary, osp.join(args.work_dir, name + '.png'), len(classes))
    print(f'pilot -> {path}, {summary["png"]}')
    return summary


def save_pilot_curve(args, summary: dict, path: str, num_classes: int) -> str:
    """PNG: classes whose pseudo-label recall reaches the gate's recall, against the iteration."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    points = summary['points']
    its = [p['iteration'] for p in points]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.plot(its, [p['covered'] for p in points], marker='o', label='measured (teacher, filter stage 1)')
    ax.axhline(
        args.gate_classes, color='tab:red', ls='--', lw=0.8, label=f'gate: {args.gate_classes} classes'
    )
    ax.axvline(args.burn_in, color='gray', ls=':', lw=0.8, label='end of burn-in')
    crossing = summary.get('extrapolation', {}).get('crossing_iteration')
    if crossing is not None:
        fit = [p for p in points if p['iteration'] in summary['extrapolation']['iterations_fitted']]
        slope, intercept = least_squares_line([p['iteration'] for p in fit], [p['covered'] for p in fit])
        xs = np.array([fit[0]['iteration'], crossing])
        ax.plot(
            xs,
            slope * xs + intercept,
            ls='--',
            color='tab:orange',
            label='linear extrapolation (not measured)',
        )
    ax.set_ylim(0, num_classes + 0.5)
    ax.set_xlabel('iteration')
    ax.set_ylabel(f'classes with pseudo-label recall >= {args.gate_recall}')
    ax.set_title(
        f'{summary["arm"]}, seed {summary["seed"]}, {args.iters} iterations\n'
        '(composited from real images, CPU scale)',
        fontsize=9,
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def pilot_status(args) -> Optional[dict]:
    """The gate of a pilot in ``--work-dir`` run in this regime (any arm and seed), else None."""
    found = None
    for path in sorted(glob.glob(osp.join(args.work_dir, 'pilot_*_seed*.json'))):
        with open(path) as f:
            summary = json.load(f)
        if isinstance(summary, dict) and summary.get('regime') == regime(args):
            found = {'file': path, 'arm': summary['arm'], **summary['gate']}
            if found['passed']:
                return found
    return found


# ----- Soft Teacher selection grid ---------------------------------------------------------------------
def ensure_select_val(args) -> str:
    """Build the selection val set on first use: the bench set's generator and sizes with another seed
    (``--select-val-seed``), 20 train canvases; only its val canvases (Fashion-MNIST test items on the photos,
    as the reported val set, composited anew) are read."""
    from tools.benchmarks.composited import ensure_detection

    root = args.select_val_root if osp.isabs(args.select_val_root) else osp.join(ROOT, args.select_val_root)
    if args.select_val_seed == 0 and osp.realpath(root) != osp.realpath(osp.join(ROOT, args.bench_root)):
        print('[acrst_bench] warning: --select-val-seed 0 composites the reported val set again', flush=True)
    return ensure_detection(root, seed=args.select_val_seed, cfg=bench_data_config(args, 20, (), ()))


def grid_args(args, index: int) -> argparse.Namespace:
    """The run settings of grid point ``index``: arm c with the box-jitter filter at its score threshold and
    unsupervised weight, in ``<work-dir>/select/point<index>``."""
    thr, weight = SELECTION_GRID[index]
    return argparse.Namespace(
        **{
            **vars(args),
            'tau_cls': thr,
            'unsup_weight': weight,
            'box_jitter': True,
            'supervised_ema': False,
            'mechanism': False,
            'work_dir': osp.join(args.work_dir, 'select', f'point{index}'),
        }
    )


def run_select(args, setup: dict, classes: list[str], rare: list[str]) -> dict:
    """Train and score the grid points of ``--grid-points`` (one seed), then write selection.json.

    Each point is arm c (:data:`ISOLATED_LABELS`) at one (score threshold, unsupervised weight) of
    :data:`SELECTION_GRID`, scored on the selection val set (:func:`ensure_select_val`, never the reported val
    set); its pilot gate is read on the final teacher's pseudo-labels (filter stage 1 = the score threshold)
    on the unlabeled images. A finished point is saved beside selection.json (``point<i>.json`` in
    :func:`selection_dir`, a saved-runs folder) and reused with equal settings, so two processes may share the
    grid and a later run resumes it; each writes selection.json from every point finished.
    """
    seed = args.seeds[0]
    val_setup = dict(setup, val_root=ensure_select_val(args))
    points = args.grid_points if args.grid_points is not None else list(range(len(SELECTION_GRID)))
    for index in points:
        point_args = grid_args(args, index)
        thr, weight = SELECTION_GRID[index]
        done = osp.join(selection_dir(args), f'point{index}.json')
        cfg = derive_config(point_args, 'soft_teacher_base', point_args.work_dir, seed, val_setup)
        settings = dict(
            run_settings(point_args, 'soft_teacher_base', seed, cfg), gate_recall=args.gate_recall
        )
        if saved_run(done, settings) is not None:
            print(f'[acrst_bench] grid point {index}: reusing {done}', flush=True)
            continue
        res = run_arm(point_args, 'soft_teacher_base', seed, val_setup, classes, rare)
        train_dir = res.get('trained_in', osp.join(point_args.work_dir, f'seed{seed}', 'soft_teacher_base'))
        config_file = osp.join(point_args.work_dir, f'seed{seed}', 'soft_teacher_base.py')
        quality = pseudo_quality(config_file, osp.join(train_dir, f'iter_{args.iters}.pth'), None, classes)
        point = {
            'index': index,
            'score_thr': thr,
            'unsup_weight': weight,
            'seed': seed,
            'val_mAP': res['mAP'],
            'val_mAP_50': res['mAP_50'],
            'val_rare_AP': res['rare_AP'],
            'val_per_class_AP': res['per_class_AP'],
            'iter_time_s': res['iter_time_s'],
            'gate': recall_gate(quality['stage1']['recall'], args.gate_recall, args.gate_classes),
            'pseudo_quality': quality['stage1'],
            'settings': settings,
        }
        os.makedirs(selection_dir(args), exist_ok=True)
        with open(done, 'w') as f:
            json.dump(point, f, indent=1, default=float)
        print(
            f'[acrst_bench] grid point {index} (thr {thr:g}, w {weight:g}): selection-val mAP '
            f'{point["val_mAP"]:.2f}, gate {point["gate"]["covered"]} classes '
            f'({"passed" if point["gate"]["passed"] else "NOT passed"})',
            flush=True,
        )
    return write_selection(args, classes)


def selection_dir(args) -> str:
    """The folder of selection.json and the finished grid points: ``--select-out`` or
    ``<work-dir>/selection``."""
    return args.select_out or osp.join(args.work_dir, 'selection')


def write_selection(args, classes: list[str]) -> dict:
    """selection.json from the finished grid points in :func:`selection_dir` (see :func:`select_setting`)."""
    points = []
    for index in range(len(SELECTION_GRID)):
        path = osp.join(selection_dir(args), f'point{index}.json')
        if osp.isfile(path):
            with open(path) as f:
                points.append(json.load(f))
    choice = select_setting(points)
    selection = {
        'what': "arm c (Soft Teacher with mmdet's box-jitter regression filter, ACRST's burn-in and teacher "
        'reset) per grid point of pseudo-label score threshold x unsupervised weight, one seed, scored on '
        'the selection val set',
        'selection_val': {
            'root': args.select_val_root,
            'seed': args.select_val_seed,
            'num_val': args.bench_num_val,
        },  # fmt: skip
        'regime': regime(args),
        'box_jitter_rule': BOX_JITTER_RULE,
        'gate': {'min_recall': args.gate_recall, 'min_classes': args.gate_classes},
        'provenance': provenance_of(device_name()),
        'classes': classes,
        'grid': [list(p) for p in SELECTION_GRID],
        'points': [{k: v for k, v in p.items() if k != 'settings'} for p in points],
        **choice,
    }
    os.makedirs(selection_dir(args), exist_ok=True)
    path = osp.join(selection_dir(args), 'selection.json')
    with open(path, 'w') as f:
        json.dump(selection, f, indent=1, default=float)
    sel = choice['selected']
    if sel is None:
        print(f'[acrst_bench] selection: points {choice["missing"]} not finished yet -> {path}', flush=True)
    else:
        fallback = choice['gate_fallback']
        print(
            f'[acrst_bench] selected: thr {sel["score_thr"]:g}, w {sel["unsup_weight"]:g} (val mAP '
            f'{sel["val_mAP"]:.2f}, gate {"passed" if choice["selected_passes_gate"] else "NOT passed"})'
            + (
                ''
                if choice['selected_passes_gate']
                else f'; best gate-passing: {fallback and fallback["index"]}'
            )
            + f' -> {path}',
            flush=True,
        )
    return selection


# ----- report -----------------------------------------------------------------------------------------
def normalise_results(results: dict) -> dict:
    """``{seed: {arm: result}}`` with former arm names read as the arms they name now."""
    return {str(seed): {canonical_arm(arm): res for arm, res in per.items()} for seed, per in results.items()}


def merge(args) -> None:
    """Report the seeds of several results files (same data and classes) as one run."""
    runs = []
    for path in args.merge:
        with open(path) as f:
            runs.append(json.load(f))
    first = runs[0]
    for path, run in zip(args.merge, runs):
        if run['labeled_instances'] != first['labeled_instances']:
            raise SystemExit(f'--merge: {path} ran on data other than {args.merge[0]} (class counts)')
    results: dict = {}
    for run in runs:
        for seed, per in normalise_results(run['results']).items():
            results.setdefault(seed, {}).update(per)
    out = args.out or args.merge[0].replace('.json', '_merged.json')
    run_args = argparse.Namespace(**{**first['args'], 'out': out, 'max_time_ratio': args.max_time_ratio})
    freq = first['labeled_instances']
    report(
        run_args, results, list(freq), first['rare_classes'], freq, first['device'], first.get('pilot_gate')
    )


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.merge:
        merge(args)
        return
    import mmssod  # noqa: F401

    os.makedirs(args.work_dir, exist_ok=True)
    setup = data_setup(args)
    first = derive_config(args, 'acrst', args.work_dir, args.seeds[0], setup)
    labeled = first.train_dataloader.dataset.datasets[0]
    with open(osp.join(labeled.data_root, labeled.ann_file)) as f:
        ann = json.load(f)
    cats = sorted(ann['categories'], key=lambda c: c['id'])
    freq = {c['name']: sum(a['category_id'] == c['id'] for a in ann['annotations']) for c in cats}
    classes = [c['name'] for c in cats]
    rare = sorted(classes, key=lambda c: freq[c])[: math.ceil(len(classes) / 3)]
    print(f'[acrst_bench] labeled instances per class: {freq}; rarest third: {rare}', flush=True)
    if args.pilot:
        run_pilot(args, setup, classes)
        return
    if args.select:
        run_select(args, setup, classes, rare)
        return
    if 'acrst_no_stage2' in args.methods and not (args.ml_scores or args.ssmll_iters):
        raise SystemExit(
            'acrst_no_stage2 differs from acrst only in filter stage 2, which needs SSMLL scores: pass '
            '--ml-scores FILE or --ssmll-iters N, or leave acrst_no_stage2 out of --methods'
        )
    gate = pilot_status(args)
    if any(m in ACRST_RECIPE_ARMS + ('soft_teacher_mmdet',) for m in args.methods):
        print(
            '[acrst_bench] pilot gate of this regime: '
            + ('none in --work-dir (run --pilot first)' if gate is None else f'{gate}'),
            flush=True,
        )

    results: dict = {}
    for seed in args.seeds:
        ml_scores = args.ml_scores
        if args.ssmll_iters and not ml_scores:
            ml_scores = train_ssmll(args, setup, seed)
        seed_args = argparse.Namespace(**{**vars(args), 'ml_scores': ml_scores})
        for method in args.methods:
            res = run_arm(seed_args, method, seed, setup, classes, rare)
            results.setdefault(str(seed), {})[method] = res
        report(args, results, classes, rare, freq, device_name(), gate)


GATED_RUNS = 'acrst/gated_1200it_tau0.5'
PILOT_RUNS = 'acrst/pilot_1200it_tau0.5'


def saved_results(folder: str) -> dict:
    """``{seed: {arm: result}}`` merged from the report JSONs ``results*.json`` in ``folder`` (every seed and
    arm the runs of one regime saved); an arm saved twice with other numbers raises, naming the file."""
    merged: dict = {}
    for path in sorted(glob.glob(osp.join(folder, 'results*.json'))):
        with open(path) as f:
            for seed, per_arm in normalise_results(json.load(f)['results']).items():
                for arm, res in per_arm.items():
                    kept = merged.setdefault(int(seed), {}).setdefault(arm, res)
                    if (kept['mAP'], kept['rare_AP']) != (res['mAP'], res['rare_AP']):
                        raise ValueError(
                            f'{path}: seed {seed} arm {arm} differs from the same run in {folder}'
                        )
    return dict(sorted(merged.items()))


def regime_info(folder: str) -> dict:
    """The classes, rarest third and labeled instances per class of the regime's 3-seed report JSON."""
    with open(osp.join(folder, 'results_3seeds.json')) as f:
        saved = json.load(f)
    return dict(
        classes=list(saved['labeled_instances']),
        rare=saved['rare_classes'],
        freq=saved['labeled_instances'],
    )


def letter(arm: str) -> str:
    """The ablation's letter of ``arm`` (``c`` for ``soft_teacher_base``); the name of an arm without one."""
    return ARMS[arm].split('. ')[0] if ARMS[arm][1:3] == '. ' else arm


def pilot_table(folder: str) -> str:
    """Markdown: teacher pseudo-label recall per class after filter stage 1 at each pilot checkpoint, the
    classes at or above the gate's recall, and pooled precision / recall."""
    points = []
    for path in glob.glob(osp.join(folder, 'pilot_iter*.json')):
        with open(path) as f:
            points.append(json.load(f))
    points.sort(key=lambda p: p['iteration'])
    classes = list(points[0]['pseudo_quality']['stage1']['recall'])
    rows = []
    for p in points:
        q = p['pseudo_quality']['stage1']
        rows.append(
            (
                p['iteration'],
                *(number(q['recall'][c]) for c in classes),
                p['gate']['covered'],
                f'{q["precision_all"]:.3f} / {q["recall_all"]:.3f}',
            )
        )
    gate = points[-1]['gate']
    return markdown_table(
        ('iteration', *classes, f'classes >= {gate["min_recall"]:g}', 'precision / recall, all'), rows
    )


def class_table(results: dict, rows: Sequence[tuple], classes: Sequence[str]) -> str:
    """Markdown: box AP x100 of each ``(arm, seed)`` in ``rows``: mAP, mAP_50, rarest third, per class."""
    cells = []
    for arm, seed in rows:
        r = results[seed][arm]
        cells.append(
            (
                ARMS[arm],
                seed,
                f'{r["mAP"]:.1f}',
                f'{r["mAP_50"]:.1f}',
                f'{r["rare_AP"]:.2f}',
                *(number(r.get('per_class_AP', {}).get(c), '.1f') for c in classes),
            )
        )
    return markdown_table(('arm', 'seed', 'mAP', 'mAP_50', 'AP rarest third', *classes), cells)


def arms_table(results: dict, arms: Sequence[str]) -> str:
    """Markdown: per arm, mAP and rarest-third AP per seed and mean +- sd, mAP_50 mean +- sd, s/iter."""
    seeds = list(results)
    cells = []
    for arm in arms:
        per = [results[s][arm] for s in seeds]
        cells.append(
            (
                ARMS[arm],
                seeds_text((r['mAP'] for r in per), '.1f'),
                mean_sd_text(r['mAP'] for r in per),
                mean_sd_text(r['mAP_50'] for r in per),
                seeds_text(r['rare_AP'] for r in per),
                mean_sd_text(r['rare_AP'] for r in per),
                seeds_text((r['iter_time_s'] for r in per), '.3f'),
            )
        )
    s = seeds_text(seeds, 'd')
    header = (
        'arm',
        f'mAP, seeds {s}',
        'mAP mean +- sd',
        'mAP_50 mean +- sd',
        f'AP rarest third, seeds {s}',
        'AP rarest third mean +- sd',
        f's/iter, seeds {s}',
    )
    return markdown_table(header, cells)


def differences_table(results: dict, pairs: Sequence[tuple]) -> str:
    """Markdown: per ``(arm, comparator)`` pair, the paired differences of rarest-third AP and mAP per seed,
    mean +- sd, and what the 2-sd rule makes of each (over the seeds that ran both arms); with one seed, the
    differences alone."""
    one = len(results) == 1
    cells = []
    for arm, base in pairs:
        seeds = [s for s in results if arm in results[s] and base in results[s]]
        row = [f'{letter(arm)} - {letter(base)}']
        verdicts = []
        for key, spec in (('rare_AP', '+.2f'), ('mAP', '+.1f')):
            g = paired_differences(
                [results[s][base][key] for s in seeds], [results[s][arm][key] for s in seeds]
            )
            row += [seeds_text(g, spec)] if one else [seeds_text(g, spec), mean_sd_text(g, '+.2f')]
            verdicts.append('effect' if is_effect(g) else 'not resolved')
        cells.append(row if one else (*row, ' / '.join(verdicts)))
    if one:
        return markdown_table(('difference', 'rarest third', 'mAP'), cells)
    header = (
        'difference',
        'rarest third, per seed',
        'rarest third mean +- sd',
        'mAP, per seed',
        'mAP mean +- sd',
        '2-sd rule: rarest third / mAP',
    )
    return markdown_table(header, cells)


def class_differences_table(results: dict, pairs: Sequence[tuple], freq: dict) -> str:
    """Markdown: per class (labeled instances), the AP differences of each pair per seed, (mean +- sd)."""
    seeds = list(results)
    cells = []
    for c, n in freq.items():
        diffs = [
            paired_differences(*([results[s][a]['per_class_AP'][c] for s in seeds] for a in (base, arm)))
            for arm, base in pairs
        ]
        cells.append((f'{c} ({n})', *(seeds_mean_sd_text(g, '+.1f') for g in diffs)))
    return markdown_table(
        ('class (labeled instances)', *(f'{letter(a)} - {letter(b)}' for a, b in pairs)), cells
    )


def histogram_table(results: dict, pseudo: Sequence[str], pasted: Sequence[str]) -> str:
    """Markdown: per seed, the pseudo-labels the student trained on (classes ``pseudo``) and the crops pasted
    on the unlabeled images (classes ``pasted``) of arms d and e."""
    arms = ('soft_teacher_fbr', 'acrst')
    cells = [
        (
            seed,
            *(' / '.join(str(results[seed][a]['pseudo_hist'][c]) for c in pseudo) for a in arms),
            *(' / '.join(str(results[seed][a]['pasted_hist'][c]) for c in pasted) for a in arms),
        )
        for seed in results
    ]
    return markdown_table(('seed', 'd: pseudo-labels', 'e: pseudo-labels', 'd: pasted', 'e: pasted'), cells)


FAIR_ARMS = ('supervised', 'supervised_fbr', 'soft_teacher_base', 'soft_teacher_fbr', 'acrst')
FAIR_DIFFERENCES = (
    ('soft_teacher_base', 'supervised'),
    ('acrst', 'soft_teacher_base'),
    ('acrst', 'supervised_fbr'),
    ('acrst', 'soft_teacher_fbr'),
)


def gated(render):
    """A table function of the results folder from ``render(results, info)`` on the gated regime's runs."""
    return lambda root: render(
        saved_results(osp.join(root, GATED_RUNS)), regime_info(osp.join(root, GATED_RUNS))
    )


def summary_row(root: str) -> tuple:
    """README's row: ACRST (e) against Soft Teacher on its recipe (c) and supervised + paste (b), 3 seeds."""
    results = saved_results(osp.join(root, GATED_RUNS))
    cells = []
    for base, name in (
        ('soft_teacher_base', 'Soft Teacher (same recipe)'),
        ('supervised_fbr', 'supervised + paste'),
    ):
        seeds = [s for s in results if base in results[s]]
        diffs = []
        for key, what in (('rare_AP', 'rarest-third AP'), ('mAP', 'mAP')):
            g = paired_differences(*([results[s][a][key] for s in seeds] for a in (base, 'acrst')))
            diffs.append(f'{what} {mean_sd_text(g, "+.2f")} ({"effect" if is_effect(g) else "not resolved"})')
        cells.append(f'ACRST - {name}: ' + ', '.join(diffs))
    return (
        'ACRST',
        'semi-supervised Faster R-CNN (EfficientNet-Lite0), long-tailed composited detection set, '
        '20% labeled, 1,200 iterations, 3 seeds',
        '; '.join(cells),
        '[acrst.md](docs/benchmarks/acrst.md)',
    )


ISOLATED_RUNS = 'acrst/isolated_1200it'
#: The seeds the isolated ablation is planned with (a missing one reads "not run").
ISOLATED_SEEDS = (0, 1, 2)
NOT_RUN = 'not run'


def read_selection(folder: str) -> Optional[dict]:
    """selection.json of a results folder (``<folder>/selection/selection.json``), None when not saved."""
    path = osp.join(folder, 'selection', 'selection.json')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def selection_table(selection: Optional[dict]) -> str:
    """Markdown: per grid point, its settings, selection-val AP, pilot gate and what the selection made of
    it; ``not run`` for a point without saved results."""
    points = {int(p['index']): p for p in (selection or {}).get('points', [])}
    chosen = {}
    for key, what in (('gate_fallback', 'best gate-passing'), ('selected', 'selected (best val mAP)')):
        if (selection or {}).get(key):
            chosen[int(selection[key]['index'])] = what
    rows = []
    for index, (thr, weight) in enumerate(SELECTION_GRID):
        p = points.get(index)
        if p is None:
            rows.append((index, f'{thr:g}', f'{weight:g}', *([NOT_RUN] * 5), ''))
            continue
        gate = p['gate']
        rows.append(
            (
                index,
                f'{thr:g}',
                f'{weight:g}',
                number(p['val_mAP'], '.1f'),
                number(p['val_mAP_50'], '.1f'),
                number(p['val_rare_AP']),
                f'{gate["covered"]} of {len(p["pseudo_quality"]["recall"])}',
                'passed' if gate['passed'] else 'not passed',
                chosen.get(index, ''),
            )
        )
    header = ('point', 'score thr', 'unsup weight', 'val mAP', 'val mAP_50', 'val AP rarest third',
              'classes with recall >= 0.3', 'gate', 'choice')  # fmt: skip
    return markdown_table(header, rows)


def isolated_arms_table(results: dict, seeds: Sequence[int] = ISOLATED_SEEDS) -> str:
    """Markdown: per arm of :data:`ISOLATED_ARMS`, mAP and rarest-third AP per planned seed (``not run`` where
    missing) and mean +- sd over the seeds that ran."""
    cells = []
    for arm in ISOLATED_ARMS:
        per = [results.get(s, {}).get(arm) for s in seeds]
        ran = [r for r in per if r is not None]
        row = [ISOLATED_LABELS[arm]]
        for key, spec in (('mAP', '.1f'), ('rare_AP', '.2f')):
            row.append(' / '.join(NOT_RUN if r is None else number(r[key], spec) for r in per))
            row.append(mean_sd_text(r[key] for r in ran) if ran else NOT_RUN)
        cells.append(row)
    s = seeds_text(seeds, 'd')
    header = ('arm', f'mAP, seeds {s}', 'mAP mean +- sd', f'AP rarest third, seeds {s}',
              'AP rarest third mean +- sd')  # fmt: skip
    return markdown_table(header, cells)


def two_sd_verdict(differences: Sequence[float], min_seeds: int = 3) -> str:
    """'resolved' when the mean of >= ``min_seeds`` paired differences passes 2 sd, 'not resolved' otherwise;
    'fewer than N seeds' / 'not run' when too few seeds ran both arms."""
    if not differences:
        return NOT_RUN
    if len(differences) < min_seeds:
        return f'fewer than {min_seeds} seeds'
    return 'resolved' if is_effect(differences, min_seeds) else 'not resolved'


def isolated_differences_table(results: dict, seeds: Sequence[int] = ISOLATED_SEEDS) -> str:
    """Markdown: per :data:`ISOLATED_DIFFERENCES` pair, the paired differences of rarest-third AP and mAP per
    planned seed (``not run`` where a seed lacks either arm), mean +- sd and the 2-sd rule."""
    cells = []
    for name, arm, base in ISOLATED_DIFFERENCES:
        both = [s for s in seeds if arm in results.get(s, {}) and base in results.get(s, {})]
        row = [name, f'{ISOLATED_LABELS[arm].split(". ")[0]} - {ISOLATED_LABELS[base].split(". ")[0]}']
        verdicts = []
        for key, spec in (('rare_AP', '+.2f'), ('mAP', '+.1f')):
            g = paired_differences(*([results[s][a][key] for s in both] for a in (base, arm)))
            per_seed = dict(zip(both, g))
            row.append(' / '.join(number(per_seed[s], spec) if s in per_seed else NOT_RUN for s in seeds))
            row.append(mean_sd_text(g, '+.2f') if g else NOT_RUN)
            verdicts.append(two_sd_verdict(g))
        cells.append((*row, ' / '.join(verdicts)))
    s = seeds_text(seeds, 'd')
    header = ('difference', 'arms', f'rarest third, seeds {s}', 'rarest third mean +- sd', f'mAP, seeds {s}',
              'mAP mean +- sd', '2-sd rule: rarest third / mAP')  # fmt: skip
    return markdown_table(header, cells)


TABLES = {
    'acrst/isolated-selection': lambda root: selection_table(read_selection(osp.join(root, ISOLATED_RUNS))),
    'acrst/isolated-arms': lambda root: isolated_arms_table(saved_results(osp.join(root, ISOLATED_RUNS))),
    'acrst/isolated-differences': lambda root: isolated_differences_table(
        saved_results(osp.join(root, ISOLATED_RUNS))
    ),
    'acrst/pilot-gate': lambda root: pilot_table(osp.join(root, PILOT_RUNS)),
    'acrst/fair-arms-seed0': gated(lambda r, i: class_table(r, [(a, 0) for a in FAIR_ARMS], i['classes'])),
    'acrst/fair-arms': gated(lambda r, i: arms_table(r, FAIR_ARMS)),
    'acrst/fair-differences': gated(lambda r, i: differences_table(r, FAIR_DIFFERENCES)),
    'acrst/fair-differences-seed0': gated(lambda r, i: differences_table({0: r[0]}, FAIR_DIFFERENCES)),
    'acrst/class-differences': gated(
        lambda r, i: class_differences_table(r, [FAIR_DIFFERENCES[k] for k in (0, 2, 3)], i['freq'])
    ),
    'acrst/histograms': gated(
        lambda r, i: histogram_table(
            r,
            ('T-shirt/top', 'Coat', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'),
            ('T-shirt/top', 'Bag', 'Ankle boot'),
        )
    ),
    'acrst/arm-f': gated(
        lambda r, i: class_table(
            r, [(a, s) for s in r for a in ('supervised_fbr', 'acrst', 'acrst_no_stage2')], i['classes']
        )
    ),
    'acrst/arms-g-h': gated(
        lambda r, i: class_table(
            r,
            [(a, 0) for a in ('acrst', 'acrst_regress_all', 'acrst_label_bank', 'acrst_pseudo_bank')],
            i['classes'],
        )
    ),
    'acrst/cropbank-cost': lambda root: cropbank_cost.table(osp.join(root, 'acrst', 'cropbank_cost.json')),
}


def report(
    args, results: dict, classes: list, rare: list, freq: dict, device: str, gate: Optional[dict] = None
) -> None:
    """Print the tables (per seed, mean +- sd, differences, mechanism) and write the JSON."""
    results = normalise_results(results)
    provenance = provenance_of(device)
    data = 'demo set' if args.demo else 'composited LT' if args.lt else f'bench set ({args.bench_root})'
    print(
        f'\nACRST benchmark ({device}, {args.backbone}, {args.iters} iterations, burn-in {args.burn_in}, '
        f'batch {args.batch_size}, seeds {list(results)}; {data}, {provenance}); rarest third: {rare}'
    )
    if gate is not None:
        print(f'pilot gate of this regime ({gate["arm"]}): {"passed" if gate["passed"] else "NOT passed"}')
    seeded = {int(seed): per for seed, per in results.items()}
    print(class_table(seeded, [(m, s) for s, per in seeded.items() for m in METHODS if m in per], classes))
    methods = [m for m in METHODS if all(m in r for r in results.values())]
    summary: dict = {
        m: {k: mean_sd([results[s][m][k] for s in results]) for k in ('mAP', 'mAP_50', 'rare_AP')}
        for m in methods
    }
    print('\n' + arms_table(seeded, methods))
    differences = {}
    for minuend, subtrahend in DIFFERENCES:
        diff = arm_differences(results, minuend, subtrahend)
        if diff is not None:
            differences[f'{minuend} - {subtrahend}'] = diff
    if differences:
        pairs = [(a, b) for a, b in DIFFERENCES if f'{a} - {b}' in differences]
        print('\n' + differences_table(seeded, pairs))
    summary['differences'] = differences
    if getattr(args, 'box_jitter', False):  # the isolated ablation's differences, over this run's seeds
        print('\n' + isolated_differences_table(seeded, tuple(seeded)))
    goal_diff = differences.get('acrst - soft_teacher_base')
    if goal_diff is not None:
        seeds = goal_diff['seeds']
        ratio = [
            results[s]['acrst']['iter_time_s'] / results[s]['soft_teacher_base']['iter_time_s'] for s in seeds
        ]
        goal = goal_met(goal_diff, ratio, args.max_time_ratio)
        summary['goal'] = {'time_ratio': ratio, 'met': goal}
        print(
            f'time ratio acrst / soft_teacher_base {[round(v, 2) for v in ratio]}; target: >= 3 seeds, '
            f'rare-third gain > 2 sd on every seed, mAP not lower by > sd, time ratio <= '
            f'{args.max_time_ratio}: {"met" if goal else "NOT met"}'
        )
    for seed, per_method in results.items():
        if 'acrst' in per_method and 'pseudo_quality' in per_method['acrst']:
            q = per_method['acrst']['pseudo_quality']
            print(f'\nseed {seed}: final ACRST teacher pseudo-labels on the unlabeled images vs ground truth')
            stages = [
                (
                    c,
                    freq[c],
                    [(st['precision'][c], st['recall'][c], st['num_pseudo'][c]) for st in q.values()],
                )
                for c in classes
            ]
            stages.append(
                (
                    'all',
                    sum(freq.values()),
                    [
                        (st['precision_all'], st['recall_all'], sum(st['num_pseudo'].values()))
                        for st in q.values()
                    ],
                )
            )
            cells = [
                (c, n, *(v for p, r, k in per for v in (number(p), number(r), k))) for c, n, per in stages
            ]
            header = ('class', 'labeled inst.', *(f'{s} {k}' for s in q for k in ('P', 'R', 'n')))
            print(markdown_table(header, cells))
        if 'acrst' in per_method and 'acrst_beta0' in per_method and 'pasted_hist' in per_method['acrst']:
            print(
                f'\nseed {seed}: class histograms after burn-in (pasted instances / pseudo-labels), '
                'beta 0 vs 0.6'
            )
            b0, b6 = per_method['acrst_beta0'], per_method['acrst']
            mu = b6.get('final_mu') or {}
            cells = [
                (c, freq[c], b0['pasted_hist'][c], b6['pasted_hist'][c], b0['pseudo_hist'][c],
                 b6['pseudo_hist'][c], number(mu.get(c), '.3f'))
                for c in classes
            ]  # fmt: skip
            header = ('class', 'labeled inst.', 'pasted beta 0', 'pasted beta 0.6', 'pseudo beta 0',
                      'pseudo beta 0.6', 'final mu beta 0.6')  # fmt: skip
            print(markdown_table(header, cells))
    out = args.out or osp.join(args.work_dir, 'results.json')
    with open(out, 'w') as f:
        json.dump(
            {
                'args': vars(args),
                'device': device,
                'provenance': provenance,
                'rare_classes': rare,
                'labeled_instances': freq,
                'pilot_gate': gate,
                'results': results,
                'summary': summary,
            },
            f,
            indent=1,
            default=float,
        )
    print(f'results -> {out}')


if __name__ == '__main__':
    main()
elif 'mmssod.models' in sys.modules:  # imported by a training process's custom_imports (--box-jitter)
    register_box_jitter()
