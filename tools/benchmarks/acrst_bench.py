"""ACRST benchmark: supervised vs Soft Teacher vs ACRST on composited long-tailed data, same schedule, seeds.

Each arm is trained with ``tools/train.py`` in its own process (CUDA when available, else CPU) from configs
derived from one ACRST config, so data, detector, schedule, batch and seed are shared:

* supervised - the same Faster R-CNN on the labeled split only (the labeled half of each batch);
* soft_teacher - mmdet's ``SoftTeacher`` with its default semi_train_cfg, no CropBank / paste;
* acrst - the ACRST config (beta 0.6); acrst_beta0 - the same with beta = 0 (plain FBR, uniform classes).

The detector is the ImageNet-pretrained EfficientNet-Lite0 Faster R-CNN FPN
(``configs/_base_/models/faster-rcnn_efficientnet-lite0_fpn.py``) unless ``--backbone r18-scratch`` (the
demo's from-scratch half-width ResNet-18). The data: by default a bench set built on first use with
``tools/dataset_converters/composited_det.py`` (``--bench-*`` flags), or ``--demo`` / ``--config``.

Reported per seed and as mean +- sd over seeds: mAP, mAP_50, the AP of the rarest third of classes (by
labeled-set frequency), the median per-iteration time after burn-in, and the differences ACRST - Soft Teacher.
``--mechanism`` adds, against the composited ground truth of the unlabeled images: the final ACRST teacher's
pseudo-label precision / recall per class after filter stage 1 alone and after both stages (needs SSMLL
scores: ``--ml-scores`` or ``--ssmll-iters``), and the class histograms of pasted instances and of
pseudo-labels for beta 0 vs 0.6 (the ``acrst_beta0`` arm is added). Results on these data are "composited
from real images", never COCO numbers.

    python tools/benchmarks/acrst_bench.py --seeds 0 1 2 --mechanism --ssmll-iters 1000   # CPU evidence
    python tools/benchmarks/acrst_bench.py --iters 4 --burn-in 2 --refresh-interval 2 --val-images 8 \\
        --bench-num-train 60 --bench-num-val 20 --mechanism --ssmll-iters 2                # smoke
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import os.path as osp
import statistics
import subprocess
import sys
import time
from typing import Optional

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
LT_CONFIG = osp.join(ROOT, 'configs/acrst/acrst_faster-rcnn_r18_fpn_20k_semi-0.1-composited-lt.py')
DEMO_CONFIG = osp.join(
    ROOT, 'configs/acrst/acrst_faster-rcnn_efficientnet-lite0_fpn_semi-0.25-composited-demo.py'
)
SSMLL_CONFIG = osp.join(ROOT, 'configs/acrst/ssmll/ssmll_r18_semi-0.1-composited-lt.py')
LITE0_BASE = osp.join(ROOT, 'configs/_base_/models/faster-rcnn_efficientnet-lite0_fpn.py')
METHODS = ('supervised', 'soft_teacher', 'acrst', 'acrst_beta0')


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
    parser.add_argument('--ml-scores', help='SSMLL scores file of the unlabeled set (filter stage 2)')
    parser.add_argument(
        '--ssmll-iters', type=int, default=0, help='train SSMLL for N iterations first and use its scores'
    )
    parser.add_argument('--val-images', type=int, default=None, help='evaluate on the first N val images')
    parser.add_argument(
        '--methods', nargs='+', default=['supervised', 'soft_teacher', 'acrst'], choices=METHODS
    )
    parser.add_argument('--mechanism', action='store_true', help='pseudo-label quality and class histograms')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--seed', type=int, default=None, help='one seed (same as --seeds S)')
    parser.add_argument('--work-dir', default='work_dirs/acrst_bench')
    parser.add_argument(
        '--max-time-ratio',
        type=float,
        default=1.15,
        help='target: ACRST / Soft Teacher iteration time at most this (with the accuracy criteria)',
    )
    parser.add_argument('--out', help='JSON with all numbers (default: <work-dir>/results.json)')
    parser.add_argument(
        '--merge',
        nargs='+',
        metavar='JSON',
        help='no training: report the union of these results files '
        '(e.g. seeds run as separate processes) and write it to --out',
    )
    args = parser.parse_args(argv)
    if args.seed is not None:
        args.seeds = [args.seed]
    if args.mechanism and 'acrst_beta0' not in args.methods:
        args.methods = list(args.methods) + ['acrst_beta0']
    if args.mechanism and 'acrst' not in args.methods:
        args.methods = list(args.methods) + ['acrst']
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


# ----- data and configs -------------------------------------------------------------------------------
def ensure_bench_data(args) -> str:
    """Build the bench set on first use (deterministic: same flags and seed give the same files)."""
    root = osp.join(ROOT, args.bench_root) if not osp.isabs(args.bench_root) else args.bench_root
    if not osp.isfile(osp.join(root, 'meta.json')):
        cmd = [
            sys.executable,
            osp.join(ROOT, 'tools/dataset_converters/composited_det.py'),
            '--out', root, '--seed', '0', '--no-progress', '--no-corrupt',
            '--num-train', str(args.bench_num_train), '--num-val', str(args.bench_num_val),
            '--height', str(args.bench_size), '--width', str(args.bench_size),
            '--objects', '1', '6', '--object-size', '32', str(max(args.bench_size // 2, 40)),
            '--imbalance-ratio', str(args.bench_imbalance), '--val-imbalance-ratio', '3',
            '--percents', str(args.bench_percent), '--folds', '1',
        ]  # fmt: skip
        subprocess.run(cmd, check=True, cwd=ROOT, env={**os.environ, 'PYTHONPATH': ROOT})
    return root


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


def _strip_paste(pipeline: list) -> list:
    """A pipeline without ACRSTPaste and without the pasted_* meta keys (for the baselines)."""
    out = []
    for t in pipeline:
        t = dict(t)
        if t['type'] == 'ACRSTPaste':
            continue
        if 'meta_keys' in t:
            t['meta_keys'] = tuple(k for k in t['meta_keys'] if not k.startswith('pasted_'))
        for key in ('unsup_teacher', 'unsup_student'):
            if key in t:
                t[key] = _strip_paste(t[key])
        out.append(t)
    return out


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


def derive_config(args, method: str, work_dir: str, seed: int, setup: dict):
    """The config of one arm, derived from the ACRST config."""
    from mmengine.config import Config, ConfigDict

    cfg = Config.fromfile(setup['config'])
    labeled, unlabeled = cfg.train_dataloader.dataset.datasets
    if setup.get('root'):
        old = labeled.data_root
        _retarget(cfg._cfg_dict, old, setup['root'].rstrip('/') + '/')
        labeled, unlabeled = cfg.train_dataloader.dataset.datasets
        labeled.ann_file, unlabeled.ann_file = setup['splits']
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=seed, deterministic=False)
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
    bank_hook = [h for h in cfg.custom_hooks if h.type == 'CropBankHook'][0]
    bank_hook.refresh_interval = args.refresh_interval
    bank_hook.update(label_cap=None, pseudo_cap=1000)  # the paper's bank: the whole labeled set, a wide range
    if method == 'acrst':
        bank_hook.beta = 0.6
        return cfg
    if method == 'acrst_beta0':
        bank_hook.beta = 0.0
        return cfg

    labeled.pipeline = _strip_paste(labeled.pipeline)
    unlabeled.pipeline = _strip_paste(unlabeled.pipeline)
    cfg.custom_hooks = [h for h in cfg.custom_hooks if h.type != 'CropBankHook']
    if method == 'soft_teacher':
        cfg.model = ConfigDict(
            type='SoftTeacher',
            detector=cfg.model.detector,
            data_preprocessor=cfg.model.data_preprocessor,
            semi_train_cfg=dict(
                freeze_teacher=True,
                sup_weight=1.0,
                unsup_weight=semi.unsup_weight,
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
        return cfg
    # supervised: the detector alone on the labeled split, the labeled share of each batch
    ratio = cfg.train_dataloader.sampler.source_ratio
    batch = max(cfg.train_dataloader.batch_size * ratio[0] // sum(ratio), 1)
    sup = [t for t in labeled.pipeline if t['type'] != 'MultiBranch'] + [dict(type='PackDetInputs')]
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
    cfg.custom_hooks = []
    return cfg


# ----- runs -------------------------------------------------------------------------------------------
def run_train(config_file: str, work_dir: str, what: str) -> None:
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools/train.py'), config_file, '--work-dir', work_dir],
        cwd=ROOT,
        env={**os.environ, 'PYTHONPATH': ROOT},
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
    cfg.randomness = dict(seed=seed)
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
    run_train(config_file, work_dir, 'SSMLL')
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
        env={**os.environ, 'PYTHONPATH': ROOT},
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


def mechanism(args, config_file: str, work_dir: str, ml_scores: Optional[str], classes: list[str]) -> dict:
    """Pseudo-label precision / recall per class: filter stage 1 alone vs both stages."""
    from mmengine.config import Config

    from mmssod.models.acrst.functional import two_stage_filter

    cfg = Config.fromfile(config_file)
    semi = cfg.model.semi_train_cfg
    ckpt = osp.join(work_dir, f'iter_{args.iters}.pth')
    dets, gts, ids, _ = teacher_detections(config_file, ckpt, semi.pseudo_label_initial_score_thr)
    scores = None
    if ml_scores:
        with open(ml_scores) as f:
            scores = json.load(f)['scores']
    import torch

    out = {}
    for stage, tau_ml in (('stage1', None), ('both', semi.tau_ml)):
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
    results = {seed: per for run in runs for seed, per in run['results'].items()}
    out = args.out or args.merge[0].replace('.json', '_merged.json')
    run_args = argparse.Namespace(**{**first['args'], 'out': out, 'max_time_ratio': args.max_time_ratio})
    freq = first['labeled_instances']
    report(run_args, results, list(freq), first['rare_classes'], freq, first['device'])


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.merge:
        merge(args)
        return
    import torch

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

    results: dict = {}
    for seed in args.seeds:
        ml_scores = args.ml_scores
        if args.ssmll_iters and not ml_scores:
            ml_scores = train_ssmll(args, setup, seed)
        seed_args = argparse.Namespace(**{**vars(args), 'ml_scores': ml_scores})
        for method in args.methods:
            work_dir = osp.join(args.work_dir, f'seed{seed}', method)
            cfg = derive_config(seed_args, method, work_dir, seed, setup)
            config_file = osp.join(args.work_dir, f'seed{seed}', f'{method}.py')
            os.makedirs(osp.dirname(config_file), exist_ok=True)
            cfg.dump(config_file)
            start = time.time()
            run_train(config_file, work_dir, f'{method} (seed {seed})')
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
            }
            stats_file = osp.join(work_dir, 'cropbank', 'stats.json')
            if osp.isfile(stats_file):
                with open(stats_file) as f:
                    stats = json.load(f)
                res['pasted_hist'] = dict(zip(classes, stats['pasted_class_counts']))
                res['pseudo_hist'] = dict(zip(classes, stats['pseudo_class_counts']))
                res['final_mu'] = (
                    dict(zip(classes, stats['refreshes'][-1]['mu'])) if stats['refreshes'] else None
                )
            if args.mechanism and method == 'acrst':
                res['pseudo_quality'] = mechanism(seed_args, config_file, work_dir, ml_scores, classes)
            results.setdefault(str(seed), {})[method] = res
            print(
                f'[acrst_bench] seed {seed} {method}: mAP {m_ap:.2f}, mAP_50 {m_ap50:.2f}, rare-third AP '
                f'{res["rare_AP"]:.2f}, {run["iter_time"]:.3f} s/iter, {res["wall_s"]:.0f} s',
                flush=True,
            )
        report(args, results, classes, rare, freq, 'cuda' if torch.cuda.is_available() else 'cpu')


def report(args, results: dict, classes: list, rare: list, freq: dict, device: str) -> None:
    """Print the tables (per seed, mean +- sd, mechanism) and write the JSON."""
    from tools.benchmarks.stats import mean_sd

    data = 'demo set' if args.demo else 'composited LT' if args.lt else f'bench set ({args.bench_root})'
    print(
        f'\nACRST benchmark ({device}, {args.backbone}, {args.iters} iterations, burn-in {args.burn_in}, '
        f'batch {args.batch_size}, seeds {list(results)}; {data}, composited from real images); '
        f'rarest third: {rare}'
    )
    print('| method | seed | mAP | mAP_50 | AP rarest third | s/iter |')
    print('| --- | --- | --- | --- | --- | --- |')
    for seed, per_method in results.items():
        for method, r in per_method.items():
            print(
                f'| {method} | {seed} | {r["mAP"]:.2f} | {r["mAP_50"]:.2f} | {r["rare_AP"]:.2f} | '
                f'{r["iter_time_s"]:.3f} |'
            )
    summary = {}
    methods = [m for m in METHODS if all(m in r for r in results.values())]
    print('\n| method | mAP | mAP_50 | AP rarest third (mean +- sd over seeds) |')
    print('| --- | --- | --- | --- |')
    for method in methods:
        row = {k: mean_sd([results[s][method][k] for s in results]) for k in ('mAP', 'mAP_50', 'rare_AP')}
        summary[method] = row
        print(f'| {method} | ' + ' | '.join(f'{row[k][0]:.2f} +- {row[k][1]:.2f}' for k in row) + ' |')
    if 'acrst' in methods and 'soft_teacher' in methods:
        diff = {
            k: [results[s]['acrst'][k] - results[s]['soft_teacher'][k] for s in results]
            for k in ('mAP', 'rare_AP')
        }
        ratio = [
            results[s]['acrst']['iter_time_s'] / results[s]['soft_teacher']['iter_time_s'] for s in results
        ]
        (d_rare, sd_rare), (d_map, sd_map) = mean_sd(diff['rare_AP']), mean_sd(diff['mAP'])
        summary['acrst_minus_soft_teacher'] = {'per_seed': diff, 'time_ratio': ratio}
        max_ratio = args.max_time_ratio
        print(
            f'\nACRST - Soft Teacher per seed: rare-third AP {[round(v, 2) for v in diff["rare_AP"]]}, mAP '
            f'{[round(v, 2) for v in diff["mAP"]]}; mean rare {d_rare:+.2f} +- {sd_rare:.2f}, mean mAP '
            f'{d_map:+.2f} +- {sd_map:.2f}; time ratio {[round(v, 2) for v in ratio]}'
        )
        goal = (
            len(diff['rare_AP']) >= 3
            and all(v > 2 * sd_rare for v in diff['rare_AP'])
            and d_map >= -sd_map
            and max(ratio) <= max_ratio
        )
        print(
            f'target: >= 3 seeds, rare-third gain > 2 sd on every seed, mAP not lower by > sd, time ratio <= '
            f'{max_ratio}: {"met" if goal else "NOT met"}'
        )
    for seed, per_method in results.items():
        if 'acrst' in per_method and 'pseudo_quality' in per_method['acrst']:
            q = per_method['acrst']['pseudo_quality']
            print(f'\nseed {seed}: final ACRST teacher pseudo-labels on the unlabeled images vs ground truth')
            print('| class | labeled inst. | ' + ' | '.join(f'{s} P | {s} R | {s} n' for s in q) + ' |')
            print('| --- | --- | ' + ' | '.join('--- | --- | ---' for _ in q) + ' |')
            for c in classes:
                cells = ' | '.join(
                    f'{q[s]["precision"][c]:.2f} | {q[s]["recall"][c]:.2f} | {q[s]["num_pseudo"][c]}'
                    for s in q
                )
                print(f'| {c} | {freq[c]} | {cells} |')
            cells = ' | '.join(
                f'{q[s]["precision_all"]:.2f} | {q[s]["recall_all"]:.2f} | {sum(q[s]["num_pseudo"].values())}'
                for s in q
            )
            print(f'| all | {sum(freq.values())} | {cells} |')
        if 'acrst' in per_method and 'acrst_beta0' in per_method and 'pasted_hist' in per_method['acrst']:
            print(
                f'\nseed {seed}: class histograms after burn-in (pasted instances / pseudo-labels), '
                'beta 0 vs 0.6'
            )
            print(
                '| class | labeled inst. | pasted beta 0 | pasted beta 0.6 | pseudo beta 0 '
                '| pseudo beta 0.6 | final mu beta 0.6 |'
            )
            print('| --- | --- | --- | --- | --- | --- | --- |')
            b0, b6 = per_method['acrst_beta0'], per_method['acrst']
            for c in classes:
                mu = (b6.get('final_mu') or {}).get(c, float('nan'))
                print(
                    f'| {c} | {freq[c]} | {b0["pasted_hist"][c]} | {b6["pasted_hist"][c]} | '
                    f'{b0["pseudo_hist"][c]} | {b6["pseudo_hist"][c]} | {mu:.3f} |'
                )
    out = args.out or osp.join(args.work_dir, 'results.json')
    with open(out, 'w') as f:
        json.dump(
            {
                'args': vars(args),
                'device': device,
                'provenance': 'composited from real images',
                'rare_classes': rare,
                'labeled_instances': freq,
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
