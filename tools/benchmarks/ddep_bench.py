"""DDeP benchmark on the frozen ImageNet-pretrained EfficientNet-Lite0 encoder (composited data, CPU scale).

What it measures (all in one run, "composited from real images": Fashion-MNIST items pasted on scikit-image
photos, built by :mod:`tools.benchmarks.composited.segmentation`):

1. **Pretraining step time**: a DDeP step with the frozen ImageNet encoder vs a whole-network step (encoder +
   decoder trained, the paper's whole-network variant from random init), same batch, median after warm-up.
2. **Decoder denoising pretraining** per seed: the ``EfficientNetLite`` encoder (``out_indices=(0, 1, 2,
   3, 4)``, strides 2-32, ImageNet weights, frozen) + the UNet decoder predict the noise added to the
   benchmark's unlabeled canvases (scaled additive noise, sigma 0.22 on [-1, 1] images). The per-step loss is
   saved and plotted (``pretrain_loss.png``); the predict-zero level is 1.0.
3. **Label efficiency** per seed and label fraction (``--percents``): the segmentor (same frozen encoder +
   UNet decoder + 1x1 classifier) is fine-tuned twice with the same seed, data order and schedule: from the
   denoising-pretrained decoder (converted with ``ddep_to_segmentor``, the decoder layout recorded and
   checked on load) and from a randomly initialised decoder. mIoU on the val canvases.

The encoder stays frozen in fine-tuning too (``--finetune-encoder frozen``, the default): both arms then
differ only in the decoder's initialisation, and each arm takes minutes on one CPU thread. Example::

    OMP_NUM_THREADS=1 python tools/benchmarks/ddep_bench.py --work-dir work_dirs/ddep_bench --seeds 0 1 2

Results: ``<work-dir>/ddep_bench.json`` (every number), ``pretrain_loss.png`` and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import statistics
import sys
import time
from typing import Dict, List, Sequence

import numpy as np
import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # run from a source checkout
from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.runner import Runner, set_random_seed  # noqa: E402

import mmssod  # noqa: E402,F401  (compat fixes, registers DDeP and EfficientNetLite)
from mmssod.models.ddep import ddep_to_segmentor  # noqa: E402
from tools.benchmarks.stats import mean_sd  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PRETRAIN_CFG = osp.join(REPO, 'configs/ddep/ddep_r18-tiny_cpu-smoke_pretrain_composited-seg.py')
FINETUNE_CFG = osp.join(REPO, 'configs/ddep/ddep_r18-tiny_cpu-smoke_finetune_composited-seg.py')
IMAGENET_MEAN = [123.675, 116.28, 103.53]
IMAGENET_STD = [58.395, 57.12, 57.375]
#: EfficientNetLite channels of levels 0..4 (strides 2, 4, 8, 16, 32)
LITE_CHANNELS = {
    'lite0': (16, 24, 40, 112, 320),
    'lite1': (16, 24, 40, 112, 320),
    'lite2': (16, 24, 48, 120, 352),
}
STRIDES = (2, 4, 8, 16, 32)


def encoder_cfg(args, pretrained: bool = True, frozen: bool = False, input_skip: bool = False) -> Dict:
    """The EfficientNet-Lite encoder at strides 2-32 (optionally with the input as a stride-1 level)."""
    enc = dict(type='EfficientNetLite', arch=args.arch, out_indices=(0, 1, 2, 3, 4), pretrained=pretrained)
    if frozen:
        enc.update(frozen_stages=5, norm_eval=True)
    return dict(type='InputSkip', encoder=enc) if input_skip else enc


def decoder_cfg(args, input_skip: bool = False) -> Dict:
    """UNet decoder over the encoder levels (the paper's skips at strides 2-16, deepest level at 32)."""
    ch, st = LITE_CHANNELS[args.arch], STRIDES
    if input_skip:
        ch, st = (3, *ch), (1, *st)
    return dict(
        in_channels=ch,
        in_strides=st,
        decoder_channels=tuple(args.decoder_channels),
        norm_cfg=dict(type='BN', requires_grad=True),
    )


def ddep_cfg(args, freeze: bool = True, input_skip: bool = False) -> Dict:
    """DDeP model: frozen ImageNet encoder (or, ``freeze=False``, the whole network from random init)."""
    return dict(
        type='DDeP',
        sigma=0.22,
        freeze_encoder=freeze,
        encoder_norm=dict(mean=IMAGENET_MEAN, std=IMAGENET_STD),
        backbone=encoder_cfg(args, pretrained=freeze, input_skip=input_skip),
        neck=dict(type='UNetDecoder', **decoder_cfg(args, input_skip)),
        head=dict(type='DDePDenoisingHead', in_channels=args.decoder_channels[-1]),
    )


def build_data(args) -> str:
    """Build (or reuse) the composited segmentation set of the benchmark."""
    from tools.benchmarks.composited.segmentation import SegmentationConfig, build_segmentation

    root = osp.join(args.work_dir, 'composited_seg')
    meta = osp.join(root, 'meta.json')
    if osp.isfile(meta) and json.load(open(meta)).get('complete'):
        return root + '/'
    cfg = SegmentationConfig(
        num_train=args.num_train,
        num_val=args.num_val,
        num_unlabeled=args.num_unlabeled,
        height=args.canvas,
        width=args.canvas,
        objects_per_image=(1, 3),
        size_range=(args.canvas // 4, args.canvas * 2 // 3),
        percents=tuple(args.percents),
        folds=(1,),
    )
    build_segmentation(root, seed=0, cfg=cfg)
    return root + '/'


def run_pretrain(args, data_root: str, seed: int, device: str, input_skip: bool = False) -> Dict:
    """DDeP decoder pretraining on the unlabeled canvases; saves the converted checkpoint and loss curve."""
    from mmengine.optim import build_optim_wrapper
    from mmpretrain.registry import MODELS

    tag = f'pretrain{"_inputskip" if input_skip else ""}_s{seed}'
    ckpt, curve = osp.join(args.work_dir, tag + '.pth'), osp.join(args.work_dir, tag + '_loss.json')
    if osp.isfile(ckpt) and osp.isfile(curve):
        return dict(ckpt=ckpt, **json.load(open(curve)))
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(PRETRAIN_CFG)
    loader_cfg = cfg.train_dataloader
    loader_cfg.dataset.data_root = data_root
    loader_cfg.dataset.pipeline[1].scale = args.crop
    loader_cfg.update(batch_size=args.batch, num_workers=0, persistent_workers=False)
    set_random_seed(seed)
    loader = Runner.build_dataloader(loader_cfg.to_dict(), seed=seed)
    model = MODELS.build(ddep_cfg(args, input_skip=input_skip)).to(device)
    model.train()
    optim = build_optim_wrapper(model, dict(optimizer=dict(type='Adam', lr=args.pretrain_lr)))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(optim.optimizer, T_max=args.pretrain_iters)
    losses: List[float] = []
    t = time.perf_counter()
    batches = iter(loader)
    for _ in range(args.pretrain_iters):
        losses.append(float(model.train_step(next(batches), optim)['loss']))
        sched.step()
    seconds = time.perf_counter() - t
    final = float(np.mean(losses[-50:]))
    print(
        f'[pretrain{" input-skip" if input_skip else ""} s{seed}] {args.pretrain_iters} steps in '
        f'{seconds:.0f} s, '
        f'loss first 50 {np.mean(losses[:50]):.4f} -> last 50 {final:.4f} (predict-zero level 1.0)',
        flush=True,
    )
    layout = model.neck.layout()
    torch.save(
        {'state_dict': ddep_to_segmentor(model.state_dict(), layout), 'meta': {'ddep_decoder': layout}}, ckpt
    )
    out = dict(losses=losses, final_loss=final, seconds=seconds)
    json.dump(out, open(curve, 'w'))
    return dict(ckpt=ckpt, **out)


def finetune_config(
    args,
    data_root: str,
    load_from,
    percent: float,
    seed: int,
    tag: str,
    device: str,
    input_skip: bool = False,
) -> Config:
    """Config of one fine-tuning run on ``percent`` % of the labels (the recipe of ``--finetune-*``)."""
    cfg = Config.fromfile(FINETUNE_CFG)
    cfg.work_dir = osp.join(args.work_dir, f'ft_{tag}_{percent:g}pct_s{seed}')
    cfg.randomness = dict(seed=seed)
    cfg.log_level = 'WARNING'
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=25)
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=False, interval=10**9, save_last=False
    )
    cfg.env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='nccl' if device == 'cuda' else 'gloo'))
    frozen = args.finetune_encoder == 'frozen'
    cfg.model.backbone = encoder_cfg(args, pretrained=True, frozen=frozen, input_skip=input_skip)
    cfg.model.decode_head.decoder = decoder_cfg(args, input_skip)
    crop = (args.crop, args.crop)
    cfg.model.data_preprocessor.size = crop
    for t in cfg.train_dataloader.dataset.pipeline:
        if t.type == 'RandomCrop':
            t.crop_size = crop
        if t.type == 'RandomResize':
            t.scale = (args.canvas, args.canvas)  # items at the scale validation sees (full canvas)
    for t in cfg.val_dataloader.dataset.pipeline:
        if t.type == 'Resize':
            t.scale = (args.canvas, args.canvas)
    cfg.train_dataloader.dataset.data_root = data_root
    cfg.train_dataloader.dataset.ann_file = f'splits/train.1@{percent:g}.txt'
    cfg.train_dataloader.batch_size = args.batch
    cfg.val_dataloader.dataset.data_root = data_root
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_cfg.max_iters = args.finetune_iters
    cfg.train_cfg.val_begin = args.finetune_iters + 1  # validate once, below
    cfg.param_scheduler = [dict(type='CosineAnnealingLR', T_max=args.finetune_iters, by_epoch=False)]
    cfg.optim_wrapper.optimizer.lr = args.finetune_lr
    cfg.load_from = load_from
    return cfg


def run_finetune(
    args, data_root: str, load_from, percent: float, seed: int, tag: str, device: str, **kw
) -> Dict:
    """Fine-tune on ``percent`` % of the labels; return val mIoU (and per-class IoU) and the seconds taken."""
    out = osp.join(args.work_dir, f'ft_{tag}_{percent:g}pct_s{seed}.json')
    if osp.isfile(out):
        return json.load(open(out))
    cfg = finetune_config(args, data_root, load_from, percent, seed, tag, device, **kw)
    init_default_scope('mmseg')
    t = time.perf_counter()
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.val()
    res = dict(miou=float(metrics['mIoU']), seconds=time.perf_counter() - t)
    # training loss per step (does the pretrained decoder give fine-tuning a head start?); from the runner's
    # own message hub (the visualizer is a process-wide singleton: its scalars file mixes all runs)
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    res['train_loss'] = [float(v) for v in losses]
    json.dump(res, open(out, 'w'))
    return res


def time_steps(args, freeze: bool, device: str) -> float:
    """Median seconds of a pretraining step: DDeP (frozen ImageNet encoder) or the whole network."""
    from mmengine.optim import build_optim_wrapper
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample

    torch.manual_seed(0)
    model = MODELS.build(ddep_cfg(args, freeze=freeze)).to(device)
    model.train()
    optim = build_optim_wrapper(model, dict(optimizer=dict(type='Adam', lr=1e-4)))
    g = torch.Generator().manual_seed(0)
    data = {
        'inputs': torch.randint(
            0, 256, (args.batch, 3, args.crop, args.crop), generator=g, dtype=torch.uint8
        ),
        'data_samples': [DataSample() for _ in range(args.batch)],
    }
    times = []
    for i in range(args.warmup + args.steps):
        if device == 'cuda':
            torch.cuda.synchronize()
        t = time.perf_counter()
        model.train_step(data, optim)
        if device == 'cuda':
            torch.cuda.synchronize()
        if i >= args.warmup:
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def mean_sd_text(values: Sequence[float]) -> str:
    """``mean +- sd`` over seeds (sample sd)."""
    return '{:.2f} +- {:.2f}'.format(*mean_sd(values))


def plot_losses(curves: Dict[str, List[float]], path: str) -> None:
    """Pretraining loss per step (moving average of 25) for every run, with the predict-zero level."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name, losses in curves.items():
        k = min(25, len(losses))
        smooth = np.convolve(losses, np.ones(k) / k, mode='valid')
        ax.plot(np.arange(len(smooth)) + k, smooth, label=name, lw=1.2)
    ax.axhline(1.0, color='k', ls='--', lw=0.8, label='predict zero (1.0)')
    ax.set_xlabel('pretraining step')
    ax.set_ylabel('L2 denoising loss (moving average of 25)')
    ax.set_title('DDeP pretraining (frozen EfficientNet-Lite0), composited canvases', fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line arguments (the defaults are the benchmark's recipe, see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--work-dir', default='work_dirs/ddep_bench')
    p.add_argument('--arch', choices=sorted(LITE_CHANNELS), default='lite0')
    p.add_argument('--decoder-channels', type=int, nargs=5, default=[64, 32, 24, 16, 16])
    p.add_argument('--percents', type=float, nargs='+', default=[1, 5, 10])
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--num-train', type=int, default=200)
    p.add_argument('--num-val', type=int, default=40)
    p.add_argument('--num-unlabeled', type=int, default=300)
    p.add_argument('--canvas', type=int, default=96, help='canvas side of the composited set (px)')
    p.add_argument('--crop', type=int, default=48, help='train crop (px)')
    p.add_argument('--batch', type=int, default=8)
    p.add_argument(
        '--pretrain-lr', type=float, default=1e-3, help='DDeP decoder pretraining lr (Adam, cosine)'
    )
    p.add_argument('--finetune-lr', type=float, default=3e-3, help='fine-tuning lr (Adam, cosine)')
    p.add_argument(
        '--finetune-encoder',
        choices=['frozen', 'train'],
        default='frozen',
        help='keep the ImageNet encoder frozen in fine-tuning (both arms then differ only in the decoder)',
    )
    p.add_argument('--pretrain-iters', type=int, default=1000)
    p.add_argument('--finetune-iters', type=int, default=500)
    p.add_argument(
        '--input-skip-percents',
        type=float,
        nargs='*',
        default=[],
        help='also pretrain a decoder with the input as a stride-1 skip and fine-tune it at these fractions',
    )
    p.add_argument('--steps', type=int, default=20, help='timed steps per throughput variant')
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--skip-miou', action='store_true', help='throughput only')
    p.add_argument(
        '--target-percents',
        type=float,
        nargs='*',
        default=[1, 5],
        help='target checked at these fractions: DDeP above random-init on every seed by > 2 sd of the gain',
    )
    p.add_argument(
        '--target-speedup', type=float, default=1.3, help='target: frozen-encoder step this much faster'
    )
    return p.parse_args(argv)


def main(argv=None) -> int:
    """Command-line entry point."""
    args = parse_args(argv)
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    os.makedirs(args.work_dir, exist_ok=True)
    where = f'{device}' + (
        f' ({torch.cuda.get_device_name()})' if device == 'cuda' else f', {torch.get_num_threads()} threads'
    )
    print(
        f'DDeP benchmark on {where}, EfficientNet-{args.arch}, crop {args.crop}, batch {args.batch}',
        flush=True,
    )
    results: Dict = {'device': where, 'args': vars(args)}

    # pretraining step time first (independent of the data): frozen encoder vs whole network, same run
    whole = time_steps(args, freeze=False, device=device)
    frozen = time_steps(args, freeze=True, device=device)
    results['throughput'] = dict(
        whole_network_step_s=whole, frozen_encoder_step_s=frozen, ratio=whole / frozen
    )
    print(
        f'[time] whole-network step {whole * 1e3:.1f} ms, frozen-encoder step {frozen * 1e3:.1f} ms',
        flush=True,
    )

    rows: List[Dict] = []
    curves: Dict[str, List[float]] = {}
    if not args.skip_miou:
        data_root = build_data(args)
        results['pretrain'] = {}
        for seed in args.seeds:
            pre = run_pretrain(args, data_root, seed, device)
            curves[f'DDeP seed {seed}'] = pre['losses']
            results['pretrain'][f's{seed}'] = dict(final_loss=pre['final_loss'], seconds=pre['seconds'])
            for percent in args.percents:
                rand = run_finetune(args, data_root, None, percent, seed, 'random', device)
                ddep = run_finetune(args, data_root, pre['ckpt'], percent, seed, 'ddep', device)
                row = dict(percent=percent, seed=seed, random_init=rand['miou'], ddep=ddep['miou'])
                row['seconds'] = rand['seconds'] + ddep['seconds']
                for name, res in (('random_init', rand), ('ddep', ddep)):
                    row[f'{name}_train_loss'] = res.get('train_loss')
                rows.append(row)
                brief = {k: v for k, v in row.items() if not k.endswith('train_loss')}
                print(f'[finetune] {json.dumps(brief)}', flush=True)
                results['miou'] = rows
                json.dump(results, open(osp.join(args.work_dir, 'ddep_bench.json'), 'w'), indent=2)
        plot_losses(curves, osp.join(args.work_dir, 'pretrain_loss.png'))
        # optional: the decoder with the input as a stride-1 skip (after the main arms, so they finish first)
        for seed in args.seeds if args.input_skip_percents else []:
            skip = run_pretrain(args, data_root, seed, device, True)
            curves[f'DDeP + input skip, seed {seed}'] = skip['losses']
            results['pretrain'][f's{seed}_input_skip'] = dict(final_loss=skip['final_loss'])
            for row in rows:
                if row['seed'] == seed and row['percent'] in args.input_skip_percents:
                    res = run_finetune(
                        args,
                        data_root,
                        skip['ckpt'],
                        row['percent'],
                        seed,
                        'ddep-inputskip',
                        device,
                        input_skip=True,
                    )
                    row['ddep_input_skip'] = res['miou']
                    print(
                        f'[finetune input skip] {row["percent"]:g}% seed {seed}: {res["miou"]:.2f}',
                        flush=True,
                    )
            json.dump(results, open(osp.join(args.work_dir, 'ddep_bench.json'), 'w'), indent=2)
        plot_losses(curves, osp.join(args.work_dir, 'pretrain_loss.png'))

    json.dump(results, open(osp.join(args.work_dir, 'ddep_bench.json'), 'w'), indent=2)
    print()
    if rows:
        print(
            '| labels | random-init decoder mIoU per seed (mean +- sd) '
            '| DDeP decoder mIoU per seed (mean +- sd) '
            '| gain per seed (mean +- sd) |'
        )
        print('| --- | --- | --- | --- |')
        for percent in args.percents:
            r = [x for x in rows if x['percent'] == percent]
            a, b = [x['random_init'] for x in r], [x['ddep'] for x in r]
            g = [y - x for x, y in zip(a, b)]
            print(
                f'| {percent:g}% | {" / ".join(f"{v:.2f}" for v in a)} ({mean_sd_text(a)}) '
                f'| {" / ".join(f"{v:.2f}" for v in b)} ({mean_sd_text(b)}) '
                f'| {" / ".join(f"{v:+.2f}" for v in g)} ({mean_sd_text(g)}) |'
            )
            skip = [x['ddep_input_skip'] for x in r if 'ddep_input_skip' in x]
            if skip:
                values = ' / '.join(f'{v:.2f}' for v in skip)
                print(f'|   input-skip decoder at {percent:g}% | {values} ({mean_sd_text(skip)}) |')
        print('(composited from real images, CPU scale: Fashion-MNIST items on scikit-image photos)')
        for key, pre in results['pretrain'].items():
            print(f'pretraining {key}: final loss (mean of the last 50 steps) {pre["final_loss"]:.4f}')
        for percent in args.target_percents:
            r = [x for x in rows if x['percent'] == percent]
            if r:
                g = [x['ddep'] - x['random_init'] for x in r]
                mean, sd = mean_sd(g)  # sd nan for one seed: the target is not met
                ok = all(v > 0 for v in g) and mean > 2 * sd
                print(
                    f'target at {percent:g}%: DDeP above random-init on every seed by > 2 sd of the '
                    'difference: '
                    f'{"met" if ok else "NOT met"} (gains {", ".join(f"{v:+.2f}" for v in g)}, sd {sd:.2f})'
                )
    t = results['throughput']
    print(
        f'pretraining step ({where}): whole network {t["whole_network_step_s"] * 1e3:.1f} ms, frozen encoder '
        f'{t["frozen_encoder_step_s"] * 1e3:.1f} ms: ratio {t["ratio"]:.2f}x (median of {args.steps}; '
        f'target >= {args.target_speedup:g}x {"met" if t["ratio"] >= args.target_speedup else "NOT met"})'
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
