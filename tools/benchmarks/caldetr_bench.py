"""Cal-DETR benchmark: baseline vs Cal-DETR heads (DINO, Deformable-DETR) on the composited detection set.

For each family (``dino``, ``ddetr``) the baseline and the Cal-DETR config differ only in the head; both are
trained with ``tools/train.py`` in their own process (CUDA when available, else CPU) with the same data,
schedule, batch and seed, then tested with ``tools/test.py`` on the clean val set (in-domain) and on its
corrupted copy (out-of-domain). Reported: box AP, D-ECE (x100, score >= 0.3, IoU >= 0.5, 10 bins), and,
measured in this process on the same batches with interleaved steps, the median training-step and inference
times of Cal-DETR over the baseline (plus a check that inference outputs are identical for identical weights).

GPU targets (issue 5): D-ECE <= 0.75x the baseline's in- and out-of-domain, AP within 0.5 of the baseline or
better, training step <= 1.05x, inference unchanged. Results on these data are "composited from real images".

    python tools/benchmarks/caldetr_bench.py --scale lt --iters 20000                # full scale (GPU)
    python tools/benchmarks/caldetr_bench.py --scale demo --iters 100 --val-images 50  # small CPU scale
"""

from __future__ import annotations

import argparse
import json
import math
import os
import os.path as osp
import re
import statistics
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
CONFIGS = {
    ('demo', 'dino'): 'dino-4scale_tiny_cpu-smoke_composited-demo',
    ('demo', 'ddetr'): 'deformable-detr_tiny_cpu-smoke_composited-demo',
    ('lt', 'dino'): 'dino-4scale_r18_4xb4-24e_composited-lt-det',
    ('lt', 'ddetr'): 'deformable-detr_r18_4xb4-24e_composited-lt-det',
}
DATA_ROOTS = dict(demo='data/composited_det_demo/', lt='data/composited_lt_det/')
FAMILY_NAMES = dict(dino='DINO-4scale', ddetr='Deformable-DETR')


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument(
        '--scale', choices=['demo', 'lt'], default='demo', help='demo set + tiny models, or LT + R18'
    )
    p.add_argument('--families', nargs='+', choices=['dino', 'ddetr'], default=['dino', 'ddetr'])
    p.add_argument('--iters', type=int, default=100, help='training iterations of every run')
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--lr', type=float, default=None, help='AdamW learning rate (default: the config)')
    p.add_argument('--val-images', type=int, default=None, help='evaluate on the first N val images only')
    p.add_argument('--data-root', default=None, help='composited detection set (default per --scale)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--score-thr', type=float, default=0.3, help='D-ECE score threshold (paper: 0.3)')
    p.add_argument('--timing-steps', type=int, default=10, help='timed training / inference steps per head')
    p.add_argument('--timing-warmup', type=int, default=3)
    p.add_argument('--skip-training', action='store_true', help='only measure step times')
    p.add_argument('--work-dir', default='work_dirs/caldetr_bench')
    return p.parse_args(argv)


def derived_config(args, family: str, cal: bool, corrupted: bool = False) -> str:
    """Write a config that inherits the family's (Cal-)config and fixes data, schedule, batch and seed."""
    name = CONFIGS[(args.scale, family)]
    name = ('cal-' if cal else '') + name + ('-corrupted' if corrupted else '')
    root = args.data_root
    indices = f', indices={args.val_images}' if args.val_images else ''
    lines = [
        f"_base_ = [{osp.join(ROOT, 'configs/cal_detr', name + '.py')!r}]",
        f'data_root = {root!r}',
        f'train_dataloader = dict(batch_size={args.batch_size}, num_workers=2, persistent_workers=False,'
        f' dataset=dict(data_root={root!r}))',
        f'val_dataloader = dict(batch_size=4, num_workers=2, persistent_workers=False,'
        f' dataset=dict(data_root={root!r}{indices}))',
        f'test_dataloader = dict(batch_size=4, num_workers=2, persistent_workers=False,'
        f' dataset=dict(data_root={root!r}{indices}))',
        f"train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters={args.iters},"
        f' val_interval={args.iters + 1})',
        f"param_scheduler = [dict(type='MultiStepLR', by_epoch=False, begin=0, end={args.iters},"
        f' milestones=[{int(args.iters * 0.85)}], gamma=0.1)]',
        "default_hooks = dict(logger=dict(type='LoggerHook', interval=50),"
        f" checkpoint=dict(type='CheckpointHook', by_epoch=False, interval={args.iters}, max_keep_ckpts=1))",
        'log_processor = dict(by_epoch=False)',
        f'randomness = dict(seed={args.seed})',
    ]
    split = 'val_corrupted' if corrupted else 'val'
    ann = f'{root}annotations/instances_{split}.json'
    prefix = ", prefix='dece_corrupted'" if corrupted else ''
    prefix += f', score_thr={args.score_thr}'

    lines.append(
        f"test_evaluator = [dict(type='CocoMetric', ann_file={ann!r}, metric='bbox'),"
        f" dict(type='DECEMetric', ann_file={ann!r}{prefix})]"
    )
    if not corrupted:
        lines.append('val_evaluator = test_evaluator')
    if args.lr is not None:
        lines.append(f'optim_wrapper = dict(optimizer=dict(lr={args.lr}))')
    os.makedirs(args.work_dir, exist_ok=True)
    path = osp.abspath(osp.join(args.work_dir, f'{name}_bench.py'))
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path


def run_tool(cmd: list, log_path: str) -> str:
    env = {**os.environ, 'PYTHONPATH': ROOT}
    res = subprocess.run([sys.executable, *cmd], cwd=ROOT, env=env, capture_output=True, text=True)
    out = res.stdout + res.stderr
    with open(log_path, 'w') as f:
        f.write(out)
    if res.returncode != 0:
        raise RuntimeError(
            f'{" ".join(cmd[:2])} failed (exit {res.returncode}), log: {log_path}\n{out[-3000:]}'
        )
    return out


def parse_metric(out: str, key: str) -> float:
    found = re.findall(rf'{re.escape(key)}: (-?[0-9.]+|nan)', out)
    return float(found[-1]) if found else float('nan')


def train_and_test(args, family: str, cal: bool) -> dict:
    tag = f'{family}_{"cal" if cal else "baseline"}'
    work_dir = osp.abspath(osp.join(args.work_dir, tag))
    t0 = time.time()
    run_tool(
        ['tools/train.py', derived_config(args, family, cal), '--work-dir', work_dir], work_dir + '_train.log'
    )
    train_s = time.time() - t0
    ckpt = osp.join(work_dir, f'iter_{args.iters}.pth')
    res = dict(train_wall_s=train_s)
    for corrupted in (False, True):
        cfg = derived_config(args, family, cal, corrupted)
        sub = work_dir + ('_test_corrupted' if corrupted else '_test')
        out = run_tool(['tools/test.py', cfg, ckpt, '--work-dir', sub], sub + '.log')
        key = 'corrupted' if corrupted else 'clean'
        res[f'ap_{key}'] = 100 * parse_metric(out, 'coco/bbox_mAP')
        prefix = 'dece_corrupted' if corrupted else 'dece'
        res[f'dece_{key}'] = parse_metric(out, f'{prefix}/D-ECE')
        res[f'dets_{key}'] = parse_metric(out, f'{prefix}/num_dets')
    return res


def time_steps(args, family: str, device: str) -> dict:
    """Median train-step and inference time of Cal-DETR vs baseline, interleaved on the same batches."""
    import torch
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.runner import Runner

    from mmssod.utils import register_all_modules

    register_all_modules()
    from mmdet.registry import MODELS

    models, optims = {}, {}
    for variant in ('baseline', 'cal'):
        cfg = Config.fromfile(derived_config(args, family, variant == 'cal'))
        torch.manual_seed(args.seed)
        model = MODELS.build(cfg.model).to(device)
        model.init_weights()
        models[variant], optims[variant] = model, build_optim_wrapper(model, cfg.optim_wrapper)
    models['cal'].load_state_dict(models['baseline'].state_dict())  # Cal heads add no parameters
    loader_cfg = dict(cfg.train_dataloader, num_workers=0, persistent_workers=False)
    loader = Runner.build_dataloader(loader_cfg, seed=args.seed)
    n = args.timing_warmup + args.timing_steps
    batches = []
    for batch in loader:
        batches.append(batch)
        if len(batches) == n:
            break

    def sync():
        if device.startswith('cuda'):
            torch.cuda.synchronize()

    times = {('train', v): [] for v in models} | {('infer', v): [] for v in models}
    for i, batch in enumerate(batches):  # interleave: the machine's load hits both heads alike
        for variant in ('baseline', 'cal') if i % 2 == 0 else ('cal', 'baseline'):
            models[variant].train()
            sync()
            t = time.perf_counter()
            models[variant].train_step(batch, optims[variant])
            sync()
            if i >= args.timing_warmup:
                times[('train', variant)].append(time.perf_counter() - t)
    models['cal'].load_state_dict(models['baseline'].state_dict())
    identical = True
    for i, batch in enumerate(batches):
        outs = {}
        for variant in ('baseline', 'cal') if i % 2 == 0 else ('cal', 'baseline'):
            models[variant].eval()
            sync()
            t = time.perf_counter()
            with torch.no_grad():
                outs[variant] = models[variant].test_step(batch)
            sync()
            if i >= args.timing_warmup:
                times[('infer', variant)].append(time.perf_counter() - t)
        for a, b in zip(outs['baseline'], outs['cal']):
            identical &= torch.equal(a.pred_instances.scores, b.pred_instances.scores)
            identical &= torch.equal(a.pred_instances.bboxes, b.pred_instances.bboxes)
    med = {k: statistics.median(v) for k, v in times.items()}
    return dict(
        train_step_s_baseline=med[('train', 'baseline')],
        train_step_s_cal=med[('train', 'cal')],
        train_step_ratio=med[('train', 'cal')] / med[('train', 'baseline')],
        infer_s_baseline=med[('infer', 'baseline')],
        infer_s_cal=med[('infer', 'cal')],
        infer_ratio=med[('infer', 'cal')] / med[('infer', 'baseline')],
        inference_identical=bool(identical),
    )


def fmt(x: float, digits: int = 2) -> str:
    return 'nan' if x is None or (isinstance(x, float) and math.isnan(x)) else f'{x:.{digits}f}'


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch

    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    args.data_root = (args.data_root or DATA_ROOTS[args.scale]).rstrip('/') + '/'
    if args.scale == 'demo':
        from mmssod.datasets.composited import ensure_demo_detection

        ensure_demo_detection(args.data_root.rstrip('/'), seed=0)
    elif not osp.isfile(osp.join(args.data_root, 'annotations', 'instances_val_corrupted.json')):
        raise FileNotFoundError(
            f'{args.data_root} has no composited detection set; build it with '
            'python tools/dataset_converters/composited_det.py --out data/composited_lt_det --seed 0'
        )
    results = dict(
        settings=dict(vars(args), device=device, torch=torch.__version__),
        provenance='composited from real images',
    )
    for family in args.families:
        fam = results[family] = dict(timing=time_steps(args, family, device))
        if not args.skip_training:
            for cal in (False, True):
                fam['cal' if cal else 'baseline'] = train_and_test(args, family, cal)
    with open(osp.join(args.work_dir, 'caldetr_bench.json'), 'w') as f:
        json.dump(results, f, indent=1)

    print(
        f'\nCal-DETR benchmark ({device}, scale={args.scale}, {args.iters} iters, batch {args.batch_size}, '
        f'seed {args.seed}; D-ECE at score >= {args.score_thr}; data composited from real images)'
    )
    print('| model | AP | D-ECE | AP corrupted | D-ECE corrupted | train step (s) | inference (s) |')
    print('| --- | --- | --- | --- | --- | --- | --- |')
    for family in args.families:
        fam, t = results[family], results[family]['timing']
        for variant in ('baseline', 'cal'):
            r = fam.get(variant, {})
            name = ('Cal-' if variant == 'cal' else '') + FAMILY_NAMES[family]
            print(
                f'| {name} | {fmt(r.get("ap_clean"), 1)} | {fmt(r.get("dece_clean"))} | '
                f'{fmt(r.get("ap_corrupted"), 1)} | {fmt(r.get("dece_corrupted"))} | '
                f'{fmt(t[f"train_step_s_{variant}"], 4)} | {fmt(t[f"infer_s_{variant}"], 4)} |'
            )
        line = (
            f'{FAMILY_NAMES[family]}: train-step ratio Cal/baseline {t["train_step_ratio"]:.3f}, '
            f'inference ratio {t["infer_ratio"]:.3f}, inference outputs identical: {t["inference_identical"]}'
        )
        if 'cal' in fam:
            b, c = fam['baseline'], fam['cal']
            with_ratio = [
                (k, c[f'dece_{k}'] / b[f'dece_{k}']) for k in ('clean', 'corrupted') if b[f'dece_{k}']
            ]
            line += ''.join(f', D-ECE ratio {k} {fmt(v, 3)}' for k, v in with_ratio)
            line += f', AP delta {fmt(c["ap_clean"] - b["ap_clean"], 1)}'
        print(line)
    if device != 'cuda':
        print(
            'Targets (D-ECE <= 0.75x, AP within 0.5, step <= 1.05x) are GPU targets at full scale: '
            'not judged here.'
        )
    return results


if __name__ == '__main__':
    main()
