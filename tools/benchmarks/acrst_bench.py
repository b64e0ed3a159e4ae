"""ACRST benchmark: supervised vs Soft Teacher vs ACRST on composited long-tailed data, same schedule/seed.

Prints mAP, the AP of the rarest third of classes (by labeled-set frequency) and the median per-iteration
time of each method, plus the ratios ACRST / Soft Teacher and ACRST / supervised. Each method is trained with
``tools/train.py`` in its own process (CUDA when available, else CPU) from configs derived from one ACRST
config, so data, detector, schedule, batch and seed are shared:

* supervised - the same Faster R-CNN on the labeled split only (the labeled half of each batch);
* soft_teacher - mmdet's ``SoftTeacher`` with its default semi_train_cfg, no CropBank / paste;
* acrst - the ACRST config as is (stage 2 of the filter off unless ``--ml-scores`` is given).

GPU targets (issue 4): ACRST above Soft Teacher in mAP, >= +2 AP on the rarest third, time ratio <= 1.15.
Results on these data are "composited from real images", never COCO numbers.

    python tools/benchmarks/acrst_bench.py --iters 20000                 # full scale (GPU)
    python tools/benchmarks/acrst_bench.py --demo --iters 30 --burn-in 10  # tiny CPU smoke scale
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

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
LT_CONFIG = osp.join(ROOT, 'configs/acrst/acrst_faster-rcnn_r18_fpn_20k_semi-0.1-composited-lt.py')
DEMO_CONFIG = osp.join(ROOT, 'configs/acrst/acrst_faster-rcnn_r18_fpn_semi-0.1-composited-demo.py')
METHODS = ('supervised', 'soft_teacher', 'acrst')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--config', help='ACRST config to derive all methods from (default: composited LT 10%%)'
    )
    parser.add_argument('--demo', action='store_true', help='use the small demo set and its config')
    parser.add_argument('--percent', type=int, default=10, help='labeled split (1, 5 or 10) of the LT set')
    parser.add_argument('--iters', type=int, default=20000)
    parser.add_argument(
        '--burn-in', type=int, default=None, help='ACRST burn-in iterations (default: config)'
    )
    parser.add_argument('--batch-size', type=int, default=None, help='labeled + unlabeled images per batch')
    parser.add_argument(
        '--refresh-interval', type=int, default=None, help='CropBank refresh (default: config)'
    )
    parser.add_argument(
        '--ml-scores', help='SSMLL scores file; without it ACRST runs with filter stage 2 off'
    )
    parser.add_argument(
        '--val-images', type=int, default=None, help='evaluate on the first N val images only'
    )
    parser.add_argument('--methods', nargs='+', default=list(METHODS), choices=METHODS)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--work-dir', default='work_dirs/acrst_bench')
    parser.add_argument('--out', help='JSON with all numbers (default: <work-dir>/results.json)')
    return parser.parse_args(argv)


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


def derive_config(args, method: str, work_dir: str):
    """The config of one method, derived from the ACRST config."""
    from mmengine.config import Config, ConfigDict

    cfg = Config.fromfile(args.config or (DEMO_CONFIG if args.demo else LT_CONFIG))
    if not args.demo and args.config is None and args.percent != 10:
        labeled, unlabeled = cfg.train_dataloader.dataset.datasets
        labeled.ann_file = f'semi_anns/instances_train.1@{args.percent}.json'
        unlabeled.ann_file = f'semi_anns/instances_train.1@{args.percent}-unlabeled.json'
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=args.seed, deterministic=False)
    cfg.train_cfg.max_iters = args.iters
    cfg.train_cfg.val_interval = args.iters
    for sched in cfg.param_scheduler:
        if sched.type == 'MultiStepLR':
            sched.end = args.iters
            sched.milestones = [int(args.iters * 0.75), int(args.iters * 0.9)]
        if sched.type == 'LinearLR':
            sched.end = min(sched.end, max(args.iters // 10, 1))
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
    semi = cfg.model.semi_train_cfg
    semi.ml_scores_file = args.ml_scores
    if args.burn_in is not None:
        semi.burn_in_iters = args.burn_in
    if args.refresh_interval:
        cfg.custom_hooks[1].refresh_interval = args.refresh_interval
    if method == 'acrst':
        return cfg

    labeled, unlabeled = cfg.train_dataloader.dataset.datasets
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


def cfg_burn_in(args) -> int:
    """ACRST's burn-in iterations in this run (timing excludes them for every method)."""
    return int(derive_config(args, 'acrst', args.work_dir).model.semi_train_cfg.get('burn_in_iters', 0))


def class_ap(metrics: dict, classes: list[str]) -> tuple[float, dict]:
    """mAP and per-class AP (teacher when present) from CocoMetric's classwise output, in percent."""
    prefix = 'teacher/coco/' if any(k.startswith('teacher/') for k in metrics) else 'coco/'
    per_class = {c: 100 * float(metrics.get(f'{prefix}{c}_precision', float('nan'))) for c in classes}
    return 100 * float(metrics.get(f'{prefix}bbox_mAP', float('nan'))), per_class


def main(argv=None) -> None:
    args = parse_args(argv)
    from mmengine.config import Config

    import mmssod  # noqa: F401

    os.makedirs(args.work_dir, exist_ok=True)
    base = Config.fromfile(args.config or (DEMO_CONFIG if args.demo else LT_CONFIG))
    labeled = derive_config(args, 'acrst', args.work_dir).train_dataloader.dataset.datasets[0]
    with open(osp.join(labeled.data_root, labeled.ann_file)) as f:
        ann = json.load(f)
    cats = sorted(ann['categories'], key=lambda c: c['id'])
    freq = {c['name']: sum(a['category_id'] == c['id'] for a in ann['annotations']) for c in cats}
    classes = [c['name'] for c in cats]
    rare = sorted(classes, key=lambda c: freq[c])[: math.ceil(len(classes) / 3)]
    del base

    results = {}
    for method in args.methods:
        work_dir = osp.join(args.work_dir, method)
        cfg = derive_config(args, method, work_dir)
        config_file = osp.join(args.work_dir, f'{method}.py')
        cfg.dump(config_file)
        start = time.time()
        proc = subprocess.run(
            [sys.executable, osp.join(ROOT, 'tools/train.py'), config_file, '--work-dir', work_dir],
            cwd=ROOT,
            env={**os.environ, 'PYTHONPATH': ROOT},
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise SystemExit(f'{method} failed:\n{proc.stderr[-4000:]}')
        # the same window for every method: after warm-up and after ACRST's supervised-only burn-in
        run = read_run(work_dir, skip=max(5, cfg_burn_in(args)))
        m_ap, per_class = class_ap(run['metrics'], classes)
        results[method] = {
            'mAP': m_ap,
            'rare_AP': statistics.mean(per_class[c] for c in rare),
            'per_class_AP': per_class,
            'iter_time_s': run['iter_time'],
            'iters_logged': run['iters'],
            'wall_s': time.time() - start,
        }
        print(
            f'[acrst_bench] {method}: mAP {m_ap:.2f}, rare-third AP {results[method]["rare_AP"]:.2f}, '
            f'{run["iter_time"]:.3f} s/iter',
            flush=True,
        )

    import torch

    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    print(
        f'\nACRST benchmark ({device}, {args.iters} iterations, seed {args.seed}; data composited from real '
        f'images: {"demo set" if args.demo else f"composited LT {args.percent}%"}); rarest third: {rare}'
    )
    print('| method | mAP | AP rarest third | s/iter |')
    print('| --- | --- | --- | --- |')
    for method, r in results.items():
        print(f'| {method} | {r["mAP"]:.2f} | {r["rare_AP"]:.2f} | {r["iter_time_s"]:.3f} |')
    if 'acrst' in results:
        for base_name in ('soft_teacher', 'supervised'):
            if base_name in results:
                r, b = results['acrst'], results[base_name]
                print(
                    f'ACRST - {base_name}: mAP {r["mAP"] - b["mAP"]:+.2f}, rare-third AP '
                    f'{r["rare_AP"] - b["rare_AP"]:+.2f}, '
                    f'time ratio {r["iter_time_s"] / b["iter_time_s"]:.2f}x'
                )
    out = args.out or osp.join(args.work_dir, 'results.json')
    with open(out, 'w') as f:
        json.dump(
            {'args': vars(args), 'device': device, 'rare_classes': rare, 'results': results}, f, indent=1
        )
    print(f'results -> {out}')


if __name__ == '__main__':
    main()
