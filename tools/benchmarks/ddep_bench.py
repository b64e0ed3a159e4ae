"""DDeP benchmark on the ImageNet-pretrained EfficientNet-Lite0 encoder (composited data, CPU scale).

What it measures ("composited from real images": Fashion-MNIST items pasted on scikit-image photos, built by
the composited segmentation generator):

1. **Pretraining step time**: a DDeP step with the frozen ImageNet encoder vs a whole-network step (encoder +
   decoder trained, the paper's whole-network variant from random init), same batch, median after warm-up.
2. **Decoder denoising pretraining** (one run, ``--pretrain-seed``, shared by every fine-tuning seed):
   the ``EfficientNetLite`` encoder (``out_indices=(0, 1, 2, 3, 4)``, strides 2-32, ImageNet weights, frozen)
   + the UNet decoder (1x widths 256/128/64/32/16 by default) predict the noise added to the unlabeled
   canvases (scaled additive noise, ``--sigma`` 0.22 on [-1, 1] images), ``--pretrain-iters`` Adam steps at a
   constant lr (or cosine over the whole run) so the loss can level off. The per-step loss is saved and
   plotted (``pretrain_loss.png``) with two references: predicting zero (1.0) and a 3x3 box-blur high-pass of
   the noisy image with one least-squares gain (:func:`fit_box_blur_gain`, fitted on the same data).
3. **Label efficiency** per seed and label fraction (``--percents``; seed ``s`` uses the labeled fold
   ``s mod --folds + 1``): the segmentor (encoder + UNet decoder + 1x1 classifier) is fine-tuned twice with
   the same seed, labeled images, data order, augmentation and schedule: from the denoising-pretrained decoder
   (converted with ``ddep_to_segmentor``, the decoder layout recorded and checked on load) and from a randomly
   initialised decoder. The whole network is fine-tuned (``--finetune-encoder train``, the paper's recipe,
   Adam with cosine decay at the paper's lr 1e-4); ``--finetune-encoder frozen`` keeps the encoder frozen.
   mIoU on the val canvases after each of ``--budgets`` steps of the ``--finetune-iters``-step run
   (``label_efficiency.png``).
4. **Linear probes** (``--stage probe``) per seed and label fraction, without fine-tuning, for the DDeP
   decoder and the random-init decoder of the seed over the same ImageNet encoder: a per-pixel logistic
   regression fitted on the labeled fold and scored on the val canvases. ``--probe last``: on the decoder
   output (what the 1x1 classifier sees; the last-layer probe). ``--probe stages``: on each decoder stage and
   on their concatenation, after the decoder's BN statistics of both arms are recomputed on the train
   canvases (:func:`recompute_bn_stats`). ``both`` (default) runs the two.
5. **Pretraining variance**: ``--pretrain-seeds`` pairs each pretraining seed with every fine-tuning seed
   (the random-init runs, which read no pretraining, are shared).
6. **Pretraining data size**: ``--pretrain-unlabeled N`` pretrains on N unlabeled canvases (a set built for
   the pretraining only, when N is not ``--num-unlabeled``); the labeled and val data do not change.

Every finished pretraining and fine-tuning run writes a small JSON (its settings + metrics) into
``--work-dir``; a rerun with the same settings reuses it, one with other settings stops with an error naming
the file. ``--stage`` runs one part: ``pretrain`` (data, box-blur reference, pretraining, loss plot),
``finetune`` (the runs of ``--seeds`` x ``--percents``, pretraining first if missing; several processes with
disjoint ``--seeds`` or ``--arms`` can share a work dir), ``probe`` (the linear probes), ``report`` (tables
and plots from the saved JSONs only) or ``all``.
Example::

    OMP_NUM_THREADS=1 python tools/benchmarks/ddep_bench.py --work-dir work_dirs/ddep_bench --stage pretrain
    OMP_NUM_THREADS=1 python tools/benchmarks/ddep_bench.py --work-dir work_dirs/ddep_bench \\
        --stage finetune --seeds 0 1
    python tools/benchmarks/ddep_bench.py --work-dir work_dirs/ddep_bench --stage report

Results: ``<work-dir>/ddep_bench.json`` (every number), ``pretrain_loss.png``, ``label_efficiency.png`` and a
markdown table on stdout.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import os.path as osp
import re
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # run from a source checkout
from mmengine.config import Config  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.runner import Runner, set_random_seed  # noqa: E402

import mmssod  # noqa: E402,F401  (compat fixes, registers DDeP and EfficientNetLite)
from mmssod.models.ddep import add_noise, ddep_to_segmentor  # noqa: E402
from tools.benchmarks.determinism import (  # noqa: E402
    add_determinism_args,
    randomness,
    run_record,
    thread_count,
)
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
#: the paper's noise level (on [-1, 1] images); run files of other levels carry it in their names
PAPER_SIGMA = 0.22
#: fine-tuning lr (Adam, cosine) when ``--finetune-lr`` is not given: the paper's 1e-4 for the whole network;
#: a frozen encoder leaves only the decoder to train, which takes a larger step
DEFAULT_FINETUNE_LR = {'train': 1e-4, 'frozen': 3e-3}
LABEL = 'composited from real images, CPU scale'


def box_blur_highpass(x: torch.Tensor) -> torch.Tensor:
    """Image minus its 3x3 box blur (replicate padding), channel by channel.

    Args:
        x (torch.Tensor): (N, C, H, W) images.

    Returns:
        torch.Tensor: (N, C, H, W) ``x - box3x3(x)``.
    """
    blur = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode='replicate'), 3, stride=1)
    return x - blur


def fit_box_blur_gain(highpass: torch.Tensor, noise: torch.Tensor) -> Tuple[float, float]:
    """Least-squares gain ``g`` of the noise predictor ``g * highpass`` and its mean squared error.

    ``g = <h, eps> / <h, h>`` minimises ``mean((eps - g h)^2)`` (closed form, one parameter).

    Args:
        highpass (torch.Tensor): (N, C, H, W) box-blur high-pass of the noisy images (any shape, same as
            ``noise``).
        noise (torch.Tensor): (N, C, H, W) the noise ``eps`` that was added.

    Returns:
        tuple[float, float]: The gain and the mean squared error of ``g * highpass`` against ``noise`` (the
        DDeP loss of that predictor; predicting zero scores ``mean(eps^2)``, about 1).
    """
    if highpass.shape != noise.shape:
        raise ValueError(f'highpass {tuple(highpass.shape)} and noise {tuple(noise.shape)} differ in shape')
    h, e = highpass.double(), noise.double()
    hh = float((h * h).sum())
    if hh <= 0:
        raise ValueError('the high-pass is zero everywhere: the images are constant, no gain can be fitted')
    gain = float((h * e).sum()) / hh
    return gain, float(((e - gain * h) ** 2).mean())


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
        sigma=args.sigma,
        freeze_encoder=freeze,
        encoder_norm=dict(mean=IMAGENET_MEAN, std=IMAGENET_STD),
        backbone=encoder_cfg(args, pretrained=freeze, input_skip=input_skip),
        neck=dict(type='UNetDecoder', **decoder_cfg(args, input_skip)),
        head=dict(type='DDePDenoisingHead', in_channels=args.decoder_channels[-1]),
    )


def finetune_lr(args) -> float:
    """The fine-tuning lr: ``--finetune-lr`` or the default of the ``--finetune-encoder`` mode."""
    return args.finetune_lr if args.finetune_lr is not None else DEFAULT_FINETUNE_LR[args.finetune_encoder]


def fold_of(args, seed: int) -> int:
    """Labeled fold (1-based) that fine-tuning seed ``seed`` uses."""
    return seed % args.folds + 1


def data_config(args):
    """Sizes of the benchmark's composited segmentation set."""
    from tools.benchmarks.composited.segmentation import SegmentationConfig

    return SegmentationConfig(
        num_train=args.num_train,
        num_val=args.num_val,
        num_unlabeled=args.num_unlabeled,
        height=args.canvas,
        width=args.canvas,
        objects_per_image=(1, 3),
        size_range=(args.canvas // 4, args.canvas * 2 // 3),
        percents=tuple(float(p) for p in args.data_percents),
        folds=tuple(range(1, args.folds + 1)),
    )


def build_data(args) -> str:
    """Build (or reuse, when built with the same sizes) the composited segmentation set of the benchmark;
    several bench processes may start together: one builds, the others wait and reuse its set."""
    from tools.benchmarks.composited.files import ensure_built
    from tools.benchmarks.composited.segmentation import GENERATOR, GENERATOR_VERSION, build_segmentation

    root = osp.join(args.work_dir, 'composited_seg')
    cfg = data_config(args)
    print(f'composited segmentation set (built on first use): {root} ({cfg.to_dict()})', flush=True)
    return ensure_built(root, GENERATOR, GENERATOR_VERSION, build_segmentation, 0, cfg) + '/'


def sigma_tag(args) -> str:
    """File-name suffix of a noise level other than the paper's."""
    return '' if args.sigma == PAPER_SIGMA else f'_sigma{args.sigma:g}'


def pretrain_unlabeled(args) -> int:
    """Unlabeled canvases the pretraining reads: ``--pretrain-unlabeled``, else all ``--num-unlabeled``."""
    return args.num_unlabeled if args.pretrain_unlabeled is None else args.pretrain_unlabeled


def unlabeled_tag(args) -> str:
    """File-name suffix of a pretraining on another number of unlabeled canvases than ``--num-unlabeled``."""
    n = pretrain_unlabeled(args)
    return '' if n == args.num_unlabeled else f'_unl{n}'


def ddep_tag(args) -> str:
    """Run-name tag of the DDeP arm: ``ddep`` + the noise level, the pretraining data size and, for a
    pretraining seed other than 0, ``_p<seed>`` (seed 0 keeps the names of the runs saved before pretraining
    seeds were varied, so they are reused)."""
    seed = '' if args.pretrain_seed == 0 else f'_p{args.pretrain_seed}'
    return f'ddep{sigma_tag(args)}{unlabeled_tag(args)}{seed}'


def with_pretraining(args, seed: Optional[int] = None) -> argparse.Namespace:
    """A copy of ``args`` whose pretraining seed is ``seed`` (``--pretrain-seed`` when None)."""
    return argparse.Namespace(**{**vars(args), 'pretrain_seed': args.pretrain_seed if seed is None else seed})


def pretrain_data_config(args):
    """The composited set the pretraining reads: the benchmark's set with ``pretrain_unlabeled(args)``
    unlabeled canvases. The generator draws the train and val canvases the same whatever the number of
    unlabeled ones; the unlabeled canvases of two sizes are separate draws (the class plan of a split depends
    on its size), not one set and its first canvases."""
    from tools.benchmarks.composited.segmentation import SegmentationConfig

    return SegmentationConfig(**{**data_config(args).to_dict(), 'num_unlabeled': pretrain_unlabeled(args)})


def build_pretrain_data(args, data_root: str) -> str:
    """``data_root`` when the pretraining reads all its unlabeled canvases, else (built on first use) the set
    ``<work-dir>/composited_seg_unl<N>`` with ``--pretrain-unlabeled`` unlabeled canvases."""
    from tools.benchmarks.composited.files import ensure_built
    from tools.benchmarks.composited.segmentation import GENERATOR, GENERATOR_VERSION, build_segmentation

    if not unlabeled_tag(args):
        return data_root
    root = osp.join(args.work_dir, 'composited_seg' + unlabeled_tag(args))
    cfg = pretrain_data_config(args)
    print(f'pretraining set (built on first use): {root} ({cfg.to_dict()})', flush=True)
    return ensure_built(root, GENERATOR, GENERATOR_VERSION, build_segmentation, 0, cfg) + '/'


def pretrain_settings(args, input_skip: bool = False) -> Dict:
    """The settings a pretraining run depends on (stored in its JSON, compared on reuse)."""
    return dict(
        arch=args.arch,
        decoder_channels=list(args.decoder_channels),
        sigma=args.sigma,
        iters=args.pretrain_iters,
        lr=args.pretrain_lr,
        schedule=args.pretrain_schedule,
        seed=args.pretrain_seed,
        crop=args.crop,
        batch=args.batch,
        data=pretrain_data_config(args).to_dict(),
        input_skip=input_skip,
    )


def load_run(path: str, settings: Dict) -> Optional[Dict]:
    """A saved run's JSON if it exists; raise when it was made with other settings."""
    if not osp.isfile(path):
        return None
    res = json.load(open(path))
    if res.get('settings') != settings:
        raise ValueError(
            f'{path} holds a run with settings {res.get("settings")}, the options ask for {settings}: use '
            f'another --work-dir or delete the file to rerun it'
        )
    return res


def pretrain_loader(args, data_root: str, seed: int):
    """Infinite, shuffled loader of random crops of the unlabeled canvases (the pretraining pipeline)."""
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(PRETRAIN_CFG)
    loader_cfg = cfg.train_dataloader
    loader_cfg.dataset.data_root = data_root
    loader_cfg.dataset.pipeline[1].scale = args.crop
    loader_cfg.update(batch_size=args.batch, num_workers=0, persistent_workers=False)
    return Runner.build_dataloader(loader_cfg.to_dict(), seed=seed)


@torch.no_grad()
def box_blur_reference(args, data_root: str, model, batches: int) -> Dict:
    """Fit the box-blur noise predictor on ``batches`` pretraining batches (own noise draws, fixed seed)."""
    loader = iter(pretrain_loader(args, data_root, seed=10_000 + args.pretrain_seed))
    gen = torch.Generator().manual_seed(10_000 + args.pretrain_seed)
    hs, es = [], []
    for _ in range(batches):
        x = model.data_preprocessor(next(loader), training=False)['inputs']
        x = x[0] if isinstance(x, (list, tuple)) else x
        eps = torch.randn(x.shape, generator=gen)
        hs.append(box_blur_highpass(add_noise(x, eps, args.sigma, model.noise_type)))
        es.append(eps)
    gain, mse = fit_box_blur_gain(torch.cat(hs), torch.cat(es))
    return dict(gain=gain, loss=mse, batches=batches)


def run_pretrain(args, data_root: str, device: str, input_skip: bool = False) -> Dict:
    """DDeP decoder pretraining on the unlabeled canvases; saves the converted checkpoint and loss curve."""
    from mmengine.optim import build_optim_wrapper
    from mmpretrain.registry import MODELS

    skip = '_inputskip' if input_skip else ''
    tag = f'pretrain{skip}{sigma_tag(args)}{unlabeled_tag(args)}_s{args.pretrain_seed}'
    ckpt, curve = osp.join(args.work_dir, tag + '.pth'), osp.join(args.work_dir, tag + '.json')
    settings = pretrain_settings(args, input_skip)
    done = load_run(curve, settings)
    if done is not None and osp.isfile(ckpt):
        return dict(ckpt=ckpt, **done)
    set_random_seed(args.pretrain_seed, deterministic=args.deterministic)
    data_root = build_pretrain_data(args, data_root)
    loader = pretrain_loader(args, data_root, seed=args.pretrain_seed)
    model = MODELS.build(ddep_cfg(args, input_skip=input_skip)).to(device)
    model.train()
    reference = box_blur_reference(args, data_root, model, args.box_blur_batches)
    print(
        f'[pretrain {tag}] 3x3 box-blur reference: gain {reference["gain"]:.3f}, '
        f'loss {reference["loss"]:.4f} ({reference["batches"]} batches)',
        flush=True,
    )
    optim = build_optim_wrapper(model, dict(optimizer=dict(type='Adam', lr=args.pretrain_lr)))
    sched = None
    if args.pretrain_schedule == 'cosine':
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(optim.optimizer, T_max=args.pretrain_iters)
    losses: List[float] = []
    t = time.perf_counter()
    batches = iter(loader)
    for step in range(args.pretrain_iters):
        losses.append(float(model.train_step(next(batches), optim)['loss']))
        if sched is not None:
            sched.step()
        if (step + 1) % 250 == 0:
            print(
                f'[pretrain {tag}] step {step + 1}: loss (mean of the last 250) '
                f'{np.mean(losses[-250:]):.4f}, '
                f'{(time.perf_counter() - t) / (step + 1):.3f} s/step',
                flush=True,
            )
    seconds = time.perf_counter() - t
    final = float(np.mean(losses[-250:]))
    print(
        f'[pretrain {tag}] {args.pretrain_iters} steps in {seconds:.0f} s, loss first 50 '
        f'{np.mean(losses[:50]):.4f} -> last 250 {final:.4f} (predict-zero 1.0, box blur '
        f'{reference["loss"]:.4f})',
        flush=True,
    )
    layout = model.neck.layout()
    torch.save(
        {'state_dict': ddep_to_segmentor(model.state_dict(), layout), 'meta': {'ddep_decoder': layout}}, ckpt
    )
    out = dict(
        settings=settings,
        label=LABEL,
        losses=[round(v, 5) for v in losses],
        final_loss=final,
        window_means=window_means(losses, 500),
        box_blur=reference,
        seconds=seconds,
        s_per_step=seconds / max(1, args.pretrain_iters),
    )
    json.dump(out, open(curve, 'w'))
    return dict(ckpt=ckpt, **out)


def window_means(values: Sequence[float], window: int) -> List[float]:
    """Means of consecutive windows of ``window`` values (the last window may be shorter)."""
    return [float(np.mean(values[i : i + window])) for i in range(0, len(values), window)]


class BudgetEval(Hook):
    """Validate after each budget (number of finished training steps) and keep the mIoU.

    Args:
        budgets (Sequence[int]): Step counts after which the val loop runs.
        partial_file (str, optional): JSON that holds the mIoU of the budgets reached so far (with
            ``partial: true``), rewritten after each budget but the last. Defaults to None (not written).
        settings (dict, optional): Run settings stored in ``partial_file``. Defaults to None.
    """

    priority = 'LOWEST'

    def __init__(
        self, budgets: Sequence[int], partial_file: Optional[str] = None, settings: Optional[Dict] = None
    ):
        self.budgets = sorted({int(b) for b in budgets})
        self.partial_file, self.settings = partial_file, settings
        self.miou: Dict[str, float] = {}
        self.seconds: Dict[str, float] = {}
        self._t0 = time.perf_counter()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        """Run the val loop when ``runner.iter + 1`` steps are done and that count is a budget."""
        done = runner.iter + 1
        if done in self.budgets:
            metrics = runner.val_loop.run()
            self.miou[str(done)] = float(metrics['mIoU'])
            self.seconds[str(done)] = time.perf_counter() - self._t0
            runner.model.train()
            if self.partial_file and done < self.budgets[-1]:  # the budgets so far, should the run be stopped
                partial = dict(settings=self.settings, label=LABEL, miou=self.miou, partial=True)
                json.dump(partial, open(self.partial_file, 'w'))


def labeled_settings(args, percent: float, seed: int) -> Dict:
    """The settings every run on the labeled fold of ``seed`` depends on (fine-tuning and linear probe)."""
    return dict(
        percent=float(percent),
        seed=seed,
        fold=fold_of(args, seed),
        arch=args.arch,
        decoder_channels=list(args.decoder_channels),
        data=data_config(args).to_dict(),
    )


def finetune_settings(args, percent: float, seed: int, arm: str) -> Dict:
    """The settings a fine-tuning run depends on (stored in its JSON, compared on reuse)."""
    out = dict(
        labeled_settings(args, percent, seed),
        arm=arm,
        encoder=args.finetune_encoder,
        lr=finetune_lr(args),
        iters=args.finetune_iters,
        budgets=sorted(args.budgets),
        crop=args.crop,
        batch=args.batch,
    )
    if arm != 'random':
        out['pretrain'] = pretrain_settings(args, input_skip=arm == 'ddep-inputskip')
    return out


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
    cfg.randomness = randomness(args, seed)
    cfg.log_level = 'WARNING'
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=50)
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
    cfg.train_dataloader.dataset.ann_file = f'splits/train.{fold_of(args, seed)}@{percent:g}.txt'
    cfg.train_dataloader.batch_size = args.batch
    cfg.val_dataloader.dataset.data_root = data_root
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_cfg.max_iters = args.finetune_iters
    cfg.train_cfg.val_begin = args.finetune_iters + 1  # validation at the budgets, by BudgetEval
    cfg.param_scheduler = [dict(type='CosineAnnealingLR', T_max=args.finetune_iters, by_epoch=False)]
    cfg.optim_wrapper.optimizer.lr = finetune_lr(args)
    cfg.load_from = load_from
    return cfg


def run_finetune(
    args,
    data_root: str,
    load_from,
    percent: float,
    seed: int,
    tag: str,
    device: str,
    arm: Optional[str] = None,
    **kw,
) -> Dict:
    """Fine-tune on ``percent`` % of the labels; return val mIoU per budget and the seconds taken. ``arm``
    (stored in the settings) defaults to ``tag`` without the noise-level suffix."""
    out = osp.join(args.work_dir, f'ft_{tag}_{percent:g}pct_s{seed}.json')
    settings = finetune_settings(args, percent, seed, arm or tag.replace(sigma_tag(args), ''))
    done = load_run(out, settings)
    if done is not None:
        return done
    cfg = finetune_config(args, data_root, load_from, percent, seed, tag, device, **kw)
    init_default_scope('mmseg')
    t = time.perf_counter()
    runner = Runner.from_cfg(cfg)
    budgets = BudgetEval(args.budgets, out.replace('.json', '.partial.json'), settings)
    runner.register_hook(budgets)
    runner.train()
    # training loss (means of 25 steps; does the pretrained decoder give fine-tuning a head start?), from the
    # runner's own message hub (the visualizer is a process-wide singleton: its scalars file mixes all runs)
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    res = dict(
        settings=settings,
        label=LABEL,
        miou=budgets.miou,
        seconds_at=budgets.seconds,
        seconds=time.perf_counter() - t,
        train_loss_25=[round(v, 4) for v in window_means([float(v) for v in losses], 25)],
    )
    json.dump(res, open(out, 'w'))
    print(
        f'[finetune {tag} {percent:g}% s{seed}] mIoU '
        + ', '.join(f'{k} steps {v:.2f}' for k, v in res['miou'].items())
        + f' ({res["seconds"]:.0f} s)',
        flush=True,
    )
    return res


def miou_percent(pred: np.ndarray, gt: np.ndarray, num_classes: int, ignore_index: int = 255) -> float:
    """mIoU (%) as mmseg's ``IoUMetric`` computes it: per-class IoU over all pixels, averaged over the classes
    present in the prediction or the labels.

    Args:
        pred (np.ndarray): (P,) predicted class per pixel.
        gt (np.ndarray): (P,) label per pixel (``ignore_index`` pixels are left out).
        num_classes (int): number of classes.
        ignore_index (int): label of ignored pixels.
    """
    from mmseg.evaluation import IoUMetric

    inter, union, _, _ = IoUMetric.intersect_and_union(
        torch.from_numpy(pred), torch.from_numpy(gt), num_classes, ignore_index
    )
    return float(100 * np.nanmean((inter / union).numpy()))


def linear_probe_miou(
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    num_classes: int,
    max_pixels: int,
    seed: int,
) -> float:
    """Val mIoU (%) of a per-pixel linear classifier (multinomial logistic regression on standardised
    features, classes weighted inversely to their pixel counts) fitted on at most ``max_pixels`` random
    labeled pixels. Without the class weights the classifier predicts the background (84% of the pixels)
    almost everywhere, whatever the features.

    Args:
        train_x (np.ndarray): (P, C) features of the labeled pixels; ``train_y`` (P,) their classes.
        val_x (np.ndarray): (Q, C) features of the val pixels; ``val_y`` (Q,) their classes.
        num_classes (int): number of classes.
        max_pixels (int): labeled pixels the classifier is fitted on (a random subset when there are more).
        seed (int): seed of that subset.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if len(train_y) > max_pixels:
        pick = np.random.default_rng(seed).choice(len(train_y), max_pixels, replace=False)
        train_x, train_y = train_x[pick], train_y[pick]
    scaler = StandardScaler().fit(train_x)
    clf = LogisticRegression(max_iter=500, class_weight='balanced').fit(scaler.transform(train_x), train_y)
    return miou_percent(clf.predict(scaler.transform(val_x)), val_y, num_classes)


@torch.no_grad()
def decoder_features(model, loader, device: str) -> Tuple[np.ndarray, np.ndarray]:
    """What the segmentor's 1x1 classifier sees (the decoder output, bilinearly resized to the label size)
    at every labeled pixel of ``loader``: (P, C) float32 features and (P,) int64 labels (ignore pixels left
    out)."""
    seen: List[torch.Tensor] = []
    handle = model.decode_head.conv_seg.register_forward_hook(lambda m, inputs, out: seen.append(inputs[0]))
    feats, labels = [], []
    try:
        for batch in loader:
            data = model.data_preprocessor(batch, False)
            model.decode_head(model.extract_feat(data['inputs'].to(device)))
            out = seen.pop()
            for k, sample in enumerate(data['data_samples']):
                gt = sample.gt_sem_seg.data[0]
                x = F.interpolate(out[k : k + 1], size=gt.shape, mode='bilinear', align_corners=False)[0]
                keep = gt != 255
                feats.append(x[:, keep.to(x.device)].T.float().cpu().numpy())
                labels.append(gt[keep].cpu().numpy().astype(np.int64))
    finally:
        handle.remove()
    return np.concatenate(feats), np.concatenate(labels)


def probe_path(args, percent: float, seed: int) -> str:
    """JSON of the last-layer probe of ``seed`` at ``percent`` % labels (named like the DDeP arm's runs)."""
    return osp.join(args.work_dir, f'probe{ddep_tag(args)[4:]}_{percent:g}pct_s{seed}.json')


def probe_settings(args, percent: float, seed: int) -> Dict:
    """The settings a linear-probe run depends on (stored in its JSON, compared on reuse)."""
    return dict(
        labeled_settings(args, percent, seed),
        probe_pixels=args.probe_pixels,
        probe='logistic regression, balanced class weights',
        pretrain=pretrain_settings(args),
    )


def probe_loaders(args, data_root: str, percent: float, seed: int, device: str):
    """The probe's segmentor config (of the fine-tuning recipe) and the labeled fold's loader config with the
    val pipeline (no augmentation)."""
    cfg = finetune_config(args, data_root, None, percent, seed, 'probe', device)
    labeled = cfg.val_dataloader.copy()
    labeled.dataset = dict(cfg.train_dataloader.dataset, pipeline=cfg.val_dataloader.dataset.pipeline)
    return cfg, labeled


def probe_model(cfg, seed: int, ckpt: Optional[str] = None):
    """The segmentor a probe reads: built and initialised under ``seed`` (the random-init decoder of that
    seed), with the DDeP decoder of ``ckpt`` (converted with ``ddep_to_segmentor``) loaded when given."""
    from mmengine.runner import load_checkpoint
    from mmseg.registry import MODELS

    set_random_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    if ckpt is not None:
        state = load_checkpoint(model, ckpt, map_location='cpu', strict=False, logger='current')
        if not any(k.startswith('decode_head.decoder.') for k in state.get('state_dict', state)):
            raise ValueError(
                f'{ckpt} holds no decoder weights (decode_head.decoder.*): the probe needs the '
                'DDeP checkpoint converted with ddep_to_segmentor'
            )
    return model


def run_probes(args, data_root: str, ckpt: str, device: str) -> None:
    """Linear probe of the decoder without fine-tuning, per seed and fraction: the DDeP decoder (``ckpt``) and
    the random-init decoder of the same seed over the same ImageNet encoder; a per-pixel linear classifier is
    fitted on the decoder output of the labeled fold and scored (mIoU) on the val canvases. Saved as
    ``probe_<percent>pct_s<seed>.json``."""
    init_default_scope('mmseg')
    for seed in args.seeds:
        val: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}  # per arm, shared by the fractions of this seed
        for percent in args.percents:
            out = probe_path(args, percent, seed)
            settings = probe_settings(args, percent, seed)
            if load_run(out, settings) is not None:
                continue
            t = time.perf_counter()
            cfg, labeled = probe_loaders(args, data_root, percent, seed, device)
            miou, classes = {}, cfg.model.decode_head.num_classes
            for arm in ('random', 'ddep'):
                model = probe_model(cfg, seed, ckpt if arm == 'ddep' else None)
                model.to(device).eval()
                if arm not in val:
                    val[arm] = decoder_features(model, Runner.build_dataloader(cfg.val_dataloader), device)
                x, y = decoder_features(model, Runner.build_dataloader(labeled), device)
                miou[arm] = linear_probe_miou(x, y, *val[arm], classes, args.probe_pixels, seed)
            res = dict(settings=settings, label=LABEL, miou=miou, seconds=time.perf_counter() - t)
            json.dump(res, open(out, 'w'))
            print(
                f'[probe {percent:g}% s{seed}] linear-probe mIoU random-init {miou["random"]:.2f}, '
                f'DDeP {miou["ddep"]:.2f} ({res["seconds"]:.0f} s)',
                flush=True,
            )


#: The stage probe's feature sets of the 1x decoder (stage strides 16 ... 1, then all stages concatenated)
PROBE_SETS = ('stride16', 'stride8', 'stride4', 'stride2', 'stride1', 'concat')
#: how the stage probe treats the decoder's BN statistics (stored in its settings)
PROBE_BN = 'decoder BN statistics of both arms recomputed on the train canvases (cumulative, no gradient)'


def probe_feature_sets(stage_channels: Sequence[int], stage_strides: Sequence[int]) -> Dict[str, slice]:
    """Column ranges of each decoder stage (``stride<s>``) and of all of them (``concat``) in the
    concatenation of the stage outputs, deepest stage first.

    Args:
        stage_channels (Sequence[int]): (K,) channels of the decoder stages, deepest first.
        stage_strides (Sequence[int]): (K,) their output strides.

    Returns:
        dict[str, slice]: K + 1 column slices of the (P, sum(stage_channels)) feature matrix.
    """
    if len(stage_channels) != len(stage_strides):
        raise ValueError(f'{len(stage_channels)} stage widths but {len(stage_strides)} stage strides')
    ends = np.cumsum([0, *stage_channels])
    sets = {f'stride{s}': slice(int(a), int(b)) for s, a, b in zip(stage_strides, ends[:-1], ends[1:])}
    sets['concat'] = slice(0, int(ends[-1]))
    return sets


def decoder_stage_features(decoder, feats: Sequence[torch.Tensor], size: Sequence[int]) -> torch.Tensor:
    """The output of every stage of a :class:`UNetDecoder` over the encoder features ``feats``, each resized
    bilinearly to ``size`` and concatenated, deepest stage first.

    Args:
        decoder (UNetDecoder): the decoder (its stages' outputs are read by forward hooks).
        feats (Sequence[torch.Tensor]): encoder features, finest first (what ``decoder`` takes).
        size (Sequence[int]): (H, W) of the result (the label size).

    Returns:
        torch.Tensor: (N, sum(decoder.stage_channels), H, W).
    """
    seen: List[torch.Tensor] = []
    handles = [st.register_forward_hook(lambda m, i, out: seen.append(out)) for st in decoder.stages]
    try:
        decoder(feats)
    finally:
        for h in handles:
            h.remove()
    size = tuple(int(d) for d in size)
    return torch.cat([F.interpolate(x, size=size, mode='bilinear', align_corners=False) for x in seen], 1)


@torch.no_grad()
def recompute_bn_stats(module: torch.nn.Module, run: Callable[[object], object], batches) -> int:
    """Recompute the running statistics of the BN layers of ``module`` from ``batches``: each layer's
    statistics are reset and then averaged over all batches (``momentum=None``, cumulative), in train mode,
    without gradients; the layers' momentum and mode are restored afterwards.

    Args:
        module (torch.nn.Module): the module whose ``_BatchNorm`` layers are recomputed (e.g. the decoder).
        run (Callable): called with each batch; runs the forward pass that reaches ``module``.
        batches (Iterable): the batches.

    Returns:
        int: number of BN layers recomputed.
    """
    from torch.nn.modules.batchnorm import _BatchNorm

    bns = [m for m in module.modules() if isinstance(m, _BatchNorm)]
    saved = [(m.momentum, m.training) for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    try:
        for batch in batches:
            run(batch)
    finally:
        for m, (momentum, training) in zip(bns, saved):
            m.momentum = momentum
            m.train(training)
    return len(bns)


def pick_pixels(keep: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """Flat indices of at most ``k`` random pixels where ``keep`` is true (all of them when fewer).

    Args:
        keep (torch.Tensor): (H, W) bool mask of the usable (not ignored) pixels.
        k (int): pixels wanted.
        gen (torch.Generator): random source.

    Returns:
        torch.Tensor: (min(k, keep.sum()),) int64 indices into ``keep.flatten()``.
    """
    idx = torch.nonzero(keep.flatten(), as_tuple=False)[:, 0]
    if len(idx) <= k:
        return idx
    return idx[torch.randperm(len(idx), generator=gen)[:k]]


def fit_probe(x: np.ndarray, y: np.ndarray):
    """A per-pixel multinomial logistic regression on standardised features, classes weighted inversely to
    their pixel counts: ``(scaler, classifier)``. ``x`` is (P, C), ``y`` (P,)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    return scaler, LogisticRegression(max_iter=500, class_weight='balanced').fit(scaler.transform(x), y)


def stage_probe_path(args, percent: float, seed: int) -> str:
    """JSON of the stage probe of fine-tuning seed ``seed`` at ``percent`` % labels (keyed by the pretraining
    seed too)."""
    name = f'probe-stages{sigma_tag(args)}{unlabeled_tag(args)}_{percent:g}pct_p{args.pretrain_seed}_s{seed}'
    return osp.join(args.work_dir, name + '.json')


def stage_probe_settings(args, percent: float, seed: int) -> Dict:
    """The settings a stage-probe run depends on (stored in its JSON, compared on reuse)."""
    return dict(
        labeled_settings(args, percent, seed),
        probe_pixels=args.probe_pixels,
        probe='logistic regression, balanced class weights, per decoder stage and concatenated',
        bn=PROBE_BN,
        pretrain=pretrain_settings(args),
    )


@torch.no_grad()
def stage_probe_arm(model, cfg, labeled_cfg, args, seed: int, device: str) -> Dict[str, float]:
    """Val mIoU (%) of the linear probe on each decoder stage and on their concatenation for one segmentor
    (no fine-tuning): the decoder's BN statistics recomputed on the train canvases, then a probe fitted on
    at most ``--probe-pixels`` labeled pixels (the same number drawn from each labeled canvas) and scored on
    every val pixel."""
    decoder = model.decode_head.decoder
    sets = probe_feature_sets(decoder.stage_channels, decoder.stage_strides)

    def features(batch):
        data = model.data_preprocessor(batch, False)
        return data, model.extract_feat(data['inputs'].to(device))

    every = dict(  # all train canvases (their labels unused), at the val scale, batches of 32
        labeled_cfg,
        batch_size=32,
        dataset=dict(labeled_cfg.dataset, ann_file='splits/train.txt'),
    )
    model.eval()
    recompute_bn_stats(decoder, lambda b: decoder(features(b)[1]), Runner.build_dataloader(every))
    model.eval()
    loader = Runner.build_dataloader(labeled_cfg)
    per_image = -(-args.probe_pixels // len(loader.dataset))
    gen = torch.Generator().manual_seed(seed)
    xs, ys = [], []
    for batch in loader:
        data, feats = features(batch)
        for k, sample in enumerate(data['data_samples']):
            gt = sample.gt_sem_seg.data[0]
            x = decoder_stage_features(decoder, [f[k : k + 1] for f in feats], gt.shape)[0]
            pick = pick_pixels(gt != 255, per_image, gen)
            xs.append(x.flatten(1)[:, pick.to(x.device)].T.float().cpu().numpy())
            ys.append(gt.flatten()[pick].cpu().numpy().astype(np.int64))
    x, y = np.concatenate(xs), np.concatenate(ys)
    probes = {name: fit_probe(x[:, cols], y) for name, cols in sets.items()}
    preds: Dict[str, List[np.ndarray]] = {name: [] for name in sets}
    labels = []
    for batch in Runner.build_dataloader(cfg.val_dataloader):
        data, feats = features(batch)
        for k, sample in enumerate(data['data_samples']):
            gt = sample.gt_sem_seg.data[0]
            x = decoder_stage_features(decoder, [f[k : k + 1] for f in feats], gt.shape)[0]
            keep = (gt != 255).flatten()
            x = x.flatten(1)[:, keep.to(x.device)].T.float().cpu().numpy()
            for name, cols in sets.items():
                scaler, clf = probes[name]
                preds[name].append(clf.predict(scaler.transform(x[:, cols])).astype(np.int64))
            labels.append(gt.flatten()[keep].cpu().numpy().astype(np.int64))
    classes, gt_all = cfg.model.decode_head.num_classes, np.concatenate(labels)
    return {name: miou_percent(np.concatenate(p), gt_all, classes) for name, p in preds.items()}


def run_stage_probes(args, data_root: str, ckpt: str, device: str) -> None:
    """Stage probe per seed and fraction: the DDeP decoder (``ckpt``, of pretraining seed ``--pretrain-seed``)
    and the random-init decoder of the fine-tuning seed over the same ImageNet encoder, without fine-tuning;
    for both, the decoder's BN statistics are recomputed on the train canvases (the random-init ones are at
    their 0 / 1 defaults, the DDeP ones come from noisy crops), then :func:`stage_probe_arm`. Saved as
    ``probe-stages_<percent>pct_p<pretrain seed>_s<seed>.json``."""
    init_default_scope('mmseg')
    for seed in args.seeds:
        for percent in args.percents:
            out = stage_probe_path(args, percent, seed)
            settings = stage_probe_settings(args, percent, seed)
            if load_run(out, settings) is not None:
                continue
            t = time.perf_counter()
            cfg, labeled = probe_loaders(args, data_root, percent, seed, device)
            miou = {}
            for arm in ('random', 'ddep'):
                model = probe_model(cfg, seed, ckpt if arm == 'ddep' else None)
                miou[arm] = stage_probe_arm(model.to(device), cfg, labeled, args, seed, device)
            res = dict(settings=settings, label=LABEL, miou=miou, seconds=time.perf_counter() - t)
            json.dump(res, open(out, 'w'))
            print(
                f'[probe-stages {percent:g}% p{args.pretrain_seed} s{seed}] mIoU random-init / DDeP: '
                + ', '.join(f'{k} {miou["random"][k]:.2f} / {miou["ddep"][k]:.2f}' for k in miou['random'])
                + f' ({res["seconds"]:.0f} s)',
                flush=True,
            )


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


def plot_losses(curves: Dict[str, List[float]], references: Dict[str, float], path: str) -> None:
    """Pretraining loss per step (moving average of 25) with the predict-zero and box-blur levels."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name, losses in curves.items():
        k = min(25, len(losses))
        smooth = np.convolve(losses, np.ones(k) / k, mode='valid')
        ax.plot(np.arange(len(smooth)) + k, smooth, label=name, lw=1.2)
    ax.axhline(1.0, color='k', ls='--', lw=0.8, label='predict zero (1.0)')
    for i, (name, level) in enumerate(references.items()):
        ax.axhline(level, color=f'C{i + 3}', ls=':', lw=1.0, label=f'{name} ({level:.3f})')
    ax.set_xlabel('pretraining step')
    ax.set_ylabel('L2 denoising loss (moving average of 25)')
    ax.set_ylim(0, 1.15)
    ax.set_title(f'DDeP pretraining (frozen EfficientNet-Lite0)\n{LABEL}', fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_label_efficiency(table: Dict, path: str) -> None:
    """mIoU (mean +- sd over seeds) against fine-tuning steps, one panel per label fraction with results.

    Args:
        table (dict): :func:`collect`'s ``{percent: {arm: {seed: {budget: mIoU}}}}``.
        path (str): the PNG written.
    """
    percents = [p for p, per in table.items() if per['random']]
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(percents), figsize=(4.2 * len(percents), 3.6), squeeze=False)
    for ax, percent in zip(axes[0], percents):
        per = table[percent]
        budgets = common_budgets(per['random'], per['ddep'])
        for i, (arm, name) in enumerate((('random', 'random-init decoder'), ('ddep', 'DDeP decoder'))):
            stats = [mean_sd([run[b] for run in per[arm].values()]) for b in budgets]
            m = np.array([v[0] for v in stats])
            sd = np.nan_to_num(np.array([v[1] for v in stats]))
            ax.errorbar(
                [int(b) for b in budgets],
                m,
                yerr=sd,
                marker='o',
                ms=3,
                capsize=3,
                color=f'C{i}',
                label=f'{name} (n={len(per[arm])})',
            )
        ax.set_xscale('log')
        ax.set_xlabel('fine-tuning steps')
        ax.set_ylabel('val mIoU (%)')
        ax.set_title(f'{percent}% labels', fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle(f'DDeP label efficiency (mean +- sd over seeds), {LABEL}', fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def collect(args) -> Dict[str, Dict[str, Dict[int, Dict[str, float]]]]:
    """mIoU per budget of the saved fine-tuning runs made with ``args``: ``{percent: {arm: {seed: {budget:
    mIoU}}}}`` with arms ``random`` and ``ddep``, over the seeds that have both."""
    table: Dict = {}
    for percent in args.percents:
        per = table.setdefault(f'{percent:g}', {'random': {}, 'ddep': {}})
        for seed in args.seeds:
            runs = {}
            for arm, tag in (('random', 'random'), ('ddep', ddep_tag(args))):
                path = osp.join(args.work_dir, f'ft_{tag}_{percent:g}pct_s{seed}.json')
                runs[arm] = load_run(path, finetune_settings(args, percent, seed, arm))
            if runs['random'] is not None and runs['ddep'] is not None:
                for arm in per:
                    per[arm][seed] = runs[arm]['miou']
    return table


def saved_mious(folder: str, prefix: str, percent: float) -> Dict[int, Dict[str, float]]:
    """The ``miou`` of the saved runs ``<prefix>_<percent>pct_s<seed>.json`` in ``folder``, by seed: mIoU per
    budget for fine-tuning (prefix ``ft_<arm>``), per decoder for the linear probe (prefix ``probe``)."""
    runs = {}
    for path in glob.glob(osp.join(folder, f'{prefix}_{percent:g}pct_s*.json')):
        runs[int(re.search(r'_s(\d+)\.json$', path)[1])] = json.load(open(path))['miou']
    return dict(sorted(runs.items()))


def saved_arms(folder: str, percent: float) -> Tuple[Dict, Dict]:
    """The saved fine-tuning mIoU of the random-init and the DDeP arm at ``percent`` % labels, by seed."""
    return saved_mious(folder, 'ft_random', percent), saved_mious(folder, 'ft_ddep', percent)


def common_budgets(*arms: Dict[int, Dict[str, float]]) -> List[str]:
    """The budgets (steps, as saved: str) every seed of every arm reached, in increasing order."""
    budgets = set.intersection(*(set(run) for arm in arms for run in arm.values()))
    return sorted(budgets, key=int)


def label_efficiency_table(random: Dict[int, Dict[str, float]], ddep: Dict[int, Dict[str, float]]) -> str:
    """Markdown: per budget, the mIoU of both arms and DDeP - random-init per seed, then (mean +- sd), over
    the seeds that ran both arms (``{seed: {budget: mIoU}}`` each)."""
    seeds = sorted(set(random) & set(ddep))
    random, ddep = {s: random[s] for s in seeds}, {s: ddep[s] for s in seeds}
    rows = []
    for b in common_budgets(random, ddep):
        a, d = [random[s][b] for s in seeds], [ddep[s][b] for s in seeds]
        g = paired_differences(a, d)
        rows.append(
            (f'{int(b):,}', seeds_mean_sd_text(a), seeds_mean_sd_text(d), seeds_mean_sd_text(g, '+.2f'))
        )
    header = (
        'steps',
        f'random-init decoder, seeds {seeds_text(seeds, "d")} (mean +- sd)',
        'DDeP decoder (mean +- sd)',
        'DDeP - random-init (mean +- sd)',
    )
    return markdown_table(header, rows)


def per_arm_table(random: Dict[int, Dict[str, float]], ddep: Dict[int, Dict[str, float]]) -> str:
    """Markdown: per budget, the mIoU of each arm per seed, for arms that ran different seeds."""
    rows = [
        (f'{int(b):,}', seeds_text(random[s][b] for s in random), seeds_text(ddep[s][b] for s in ddep))
        for b in common_budgets(random, ddep)
    ]
    header = (
        'steps',
        f'random-init, seeds {seeds_text(random, "d")}',
        f'DDeP, seeds {seeds_text(ddep, "d")}',
    )
    return markdown_table(header, rows)


def probe_table(probes: Dict[str, Dict[int, Dict[str, float]]]) -> str:
    """Markdown: per label fraction (``{'5%': {seed: {'random': mIoU, 'ddep': mIoU}}}``), the linear-probe
    mIoU of both decoders and DDeP - random-init per seed, then (mean +- sd)."""
    rows, seeds = [], []
    for label, runs in probes.items():
        seeds = list(runs)
        a, d = [r['random'] for r in runs.values()], [r['ddep'] for r in runs.values()]
        g = paired_differences(a, d)
        rows.append((label, seeds_mean_sd_text(a), seeds_mean_sd_text(d), seeds_mean_sd_text(g, '+.2f')))
    header = (
        'labels',
        f'random-init decoder, seeds {seeds_text(seeds, "d")} (mean +- sd)',
        'DDeP decoder (mean +- sd)',
        'DDeP - random-init (mean +- sd)',
    )
    return markdown_table(header, rows)


def gated_table(percent: float) -> Callable[[str], str]:
    """The docs' table of the gated regime (lr 1e-3, 4,000 steps) at ``percent`` % labels."""

    def render(results: str) -> str:
        folder = osp.join(results, 'ddep', GATED_RUNS)
        return label_efficiency_table(*saved_arms(folder, percent))

    return render


def recipe_table(results: str) -> str:
    """The docs' table of the first recipe (lr 1e-4, 1,000 steps) at 5 %: the arms ran different seeds."""
    folder = osp.join(results, 'ddep')
    return per_arm_table(*saved_arms(folder, 5))


def pilot_table(runs: Sequence[Dict], background: float, gain: float = 1.5) -> str:
    """Markdown of the fine-tuning pilot: per saved random-init run (its ``settings`` and ``miou`` by budget),
    the mIoU at each budget reached and whether the last budget of the schedule reaches ``gain`` x the
    ``background``-only mIoU (a run stopped early, ``partial``, is "not reached by" its last budget)."""
    cells = []
    for run in runs:
        cfg, miou = run['settings'], run['miou']
        reached = ', '.join(f'{b}: {miou[b]:.2f}' for b in sorted(miou, key=int))
        last = max(miou, key=int)
        if run.get('partial'):
            gate = f'not reached by {int(last):,} of {cfg["iters"]:,}'
        else:
            gate = '**passes**' if miou[last] >= gain * background else 'fails'
        cells.append((f'{cfg["lr"]:.0e}'.replace('e-0', 'e-') + f', {cfg["iters"]:,}', reached, gate))
    header = (
        'fine-tuning lr, steps',
        'random-init mIoU at the budgets',
        f'gate ({gain:g} x {background:.2f})',
    )
    return markdown_table(header, cells)


#: The fine-tuning pilot's runs (5 %, seed 0, random-init decoder), in the order tried, and the val set's
#: background-only mIoU that its gate multiplies.
PILOT_RUNS = (
    'ft_random_5pct_s0.json',
    'finetune_pilot/ft_random_5pct_s0_lr1e-3_1000it.json',
    'finetune_pilot/ft_random_5pct_s0_lr1e-4_4000it.partial.json',
    'lr1e-3_4000it/ft_random_5pct_s0.json',
)
BACKGROUND_MIOU = 7.60


def saved_pilot(results: str) -> List[Dict]:
    """The saved runs of :data:`PILOT_RUNS` under ``results``."""
    runs = []
    for name in PILOT_RUNS:
        with open(osp.join(results, 'ddep', name)) as f:
            runs.append(json.load(f))
    return runs


def summary_row(results: str) -> Tuple[str, str, str, str]:
    """README's row: DDeP - random-init at 1 % and 5 % labels, 4,000 steps, in the gated regime."""
    folder = osp.join(results, 'ddep', GATED_RUNS)
    cells = []
    for percent in (1, 5):
        a, d = ([run[str(GATED_STEPS)] for run in arm.values()] for arm in saved_arms(folder, percent))
        g = paired_differences(a, d)
        verdict = 'effect' if is_effect(g) else 'not resolved'
        cells.append(f'{percent}%: {mean_sd_text(g, "+.2f")} mIoU ({verdict})')
    return (
        'DDeP',
        'decoder denoising pretraining vs a random-init decoder, fine-tuned on 1% / 5% of a composited '
        'segmentation set, 4,000 steps, 5 seeds',
        'DDeP - random-init: ' + '; '.join(cells),
        '[ddep.md](docs/benchmarks/ddep.md)',
    )


def gated_means_table(results: str) -> str:
    """Markdown: the gated regime's mean +- sd over seeds per label fraction and budget, for the READMEs."""
    rows = []
    for percent in (1, 5):
        random, ddep = saved_arms(osp.join(results, 'ddep', GATED_RUNS), percent)
        for b in common_budgets(random, ddep):
            a, d = [random[s][b] for s in random], [ddep[s][b] for s in random]
            cells = (mean_sd_text(a), mean_sd_text(d), mean_sd_text(paired_differences(a, d), '+.2f'))
            rows.append((f'{percent}%, {len(a)} seeds', f'{int(b):,}', *cells))
    header = (
        'labels, seeds',
        'steps',
        'random-init decoder mIoU (mean +- sd)',
        'DDeP decoder mIoU (mean +- sd)',
        'DDeP - random-init (mean +- sd)',
    )
    return markdown_table(header, rows)


NOT_RUN = 'not run'
#: pretraining variance: pretraining seeds x fine-tuning seeds at 1 % in the gated regime, read at the budgets
PRETRAIN_SEEDS, PRETRAIN_FT_SEEDS, VARIANCE_BUDGETS = (0, 1, 2), (0, 1, 2, 3, 4), ('2000', '4000')
#: data-size curve: unlabeled canvases the pretraining reads (the default, 1,000, in the middle), pretraining
#: seed 0, fine-tuning seeds 0-2 at 1 % in the gated regime
DATA_SIZES, DATA_SIZE_FT_SEEDS, DEFAULT_UNLABELED = (250, 1000, 4000), (0, 1, 2), 1000
#: the stage probe's gate, fixed before its runs: the random-init concatenation must reach this many times the
#: background-only mIoU (the fine-tuning gate's 1.5x)
PROBE_GATE = 1.5


def saved_pairs(
    folders: Sequence[str], percent: float, lr: float = 1e-3, iters: int = 4000
) -> Tuple[Dict[int, Dict[str, float]], Dict[Tuple[int, int, int], Dict[str, float]]]:
    """The saved whole-network fine-tuning runs (``ft_*.json``, partial runs left out) in ``folders`` at
    ``percent`` % labels, lr ``lr`` and ``iters`` steps, keyed by their stored settings, not their names.

    Returns:
        tuple: random-init ``{fine-tuning seed: {budget: mIoU}}`` and DDeP (paper noise level) ``{(pretraining
        seed, unlabeled canvases of the pretraining, fine-tuning seed): {budget: mIoU}}``. A run found twice
        (e.g. a copy in two folders) must hold the same mIoU.
    """
    random: Dict = {}
    ddep: Dict = {}
    for folder in folders:
        for path in sorted(glob.glob(osp.join(folder, 'ft_*.json'))):
            if path.endswith('.partial.json'):
                continue
            with open(path) as f:
                run = json.load(f)
            cfg = run['settings']
            if (cfg['percent'], cfg['iters'], cfg.get('encoder')) != (float(percent), iters, 'train') or abs(
                cfg['lr'] - lr
            ) > 1e-12 * lr:
                continue
            if cfg['arm'] == 'random':
                key, into = cfg['seed'], random
            elif cfg['arm'] == 'ddep' and cfg['pretrain']['sigma'] == PAPER_SIGMA:
                pre = cfg['pretrain']
                key, into = (pre['seed'], pre['data']['num_unlabeled'], cfg['seed']), ddep
            else:
                continue
            if key in into and into[key] != run['miou']:
                raise ValueError(
                    f'{path}: the run {cfg["arm"]} {key} is saved twice with different mIoU ({into[key]} and '
                    f'{run["miou"]}): keep one of the two files'
                )
            into[key] = run['miou']
    return random, ddep


def verdict(differences: Sequence[float]) -> str:
    """``resolved`` when the paired differences pass the 2-sd rule over >= 3 seeds, else ``not resolved``."""
    return 'resolved' if is_effect(differences) else 'not resolved'


def pretrain_seeds_table(
    random: Dict[int, Dict[str, float]],
    ddep: Dict[Tuple[int, int, int], Dict[str, float]],
    pretrain_seeds: Sequence[int] = PRETRAIN_SEEDS,
    ft_seeds: Sequence[int] = PRETRAIN_FT_SEEDS,
    budgets: Sequence[str] = VARIANCE_BUDGETS,
    unlabeled: int = DEFAULT_UNLABELED,
) -> str:
    """Markdown: per (pretraining seed, fine-tuning seed) pair, the random-init mIoU (shared by the
    pretraining seeds: it reads no pretraining), the DDeP mIoU and their difference at each budget ("not run"
    where a run is missing); then the difference's mean +- sd over all pairs run and over the pretraining
    seeds (each the mean over its fine-tuning seeds run), each resolved or not by the 2-sd rule (over the
    pairs, which share their random-init runs, the rule treats them as independent).

    Args:
        random (dict): ``{fine-tuning seed: {budget: mIoU}}``.
        ddep (dict): ``{(pretraining seed, unlabeled canvases, fine-tuning seed): {budget: mIoU}}``.
        pretrain_seeds, ft_seeds (Sequence[int]): the pairs of the experiment.
        budgets (Sequence[str]): fine-tuning steps read (as saved: str).
        unlabeled (int): the pretraining data size of the runs compared.
    """
    rows = []
    gains: Dict[str, Dict[int, List[float]]] = {b: {} for b in budgets}
    for p in pretrain_seeds:
        for s in ft_seeds:
            cells: List[str] = []
            for b in budgets:
                a, d = random.get(s, {}).get(b), ddep.get((p, unlabeled, s), {}).get(b)
                if a is None or d is None:
                    cells += [number(a), number(d), NOT_RUN]
                    continue
                gains[b].setdefault(p, []).append(d - a)
                cells += [f'{a:.2f}', f'{d:.2f}', f'{d - a:+.2f}']
            rows.append((str(p), str(s), *cells))
    for name, pick in (
        ('all pairs', lambda per: [g for p in per for g in per[p]]),
        (
            'over pretraining seeds (mean over fine-tuning seeds)',
            lambda per: [statistics.mean(g) for g in per.values()],
        ),
    ):
        cells = []
        for b in budgets:
            vals = pick(gains[b])
            cells += [
                '',
                '',
                f'{mean_sd_text(vals, "+.2f")}, n={len(vals)} ({verdict(vals)})' if vals else NOT_RUN,
            ]
        rows.append((f'**{name}**', '', *cells))
    header = ['pretraining seed', 'fine-tuning seed']
    for b in budgets:
        header += [
            f'random-init, {int(b):,} steps',
            f'DDeP, {int(b):,} steps',
            f'DDeP - random-init, {int(b):,}',
        ]
    return markdown_table(header, rows)


def data_size_gains(
    random: Dict[int, Dict[str, float]],
    ddep: Dict[Tuple[int, int, int], Dict[str, float]],
    size: int,
    budget: str,
    ft_seeds: Sequence[int] = DATA_SIZE_FT_SEEDS,
    pretrain_seed: int = 0,
) -> Tuple[List[int], List[float], List[float]]:
    """The fine-tuning seeds of ``ft_seeds`` that ran both arms at pretraining size ``size`` (unlabeled
    canvases) and pretraining seed ``pretrain_seed``, with their random-init and DDeP mIoU at ``budget``."""
    seeds = [
        s
        for s in ft_seeds
        if budget in random.get(s, {}) and budget in ddep.get((pretrain_seed, size, s), {})
    ]
    return seeds, [random[s][budget] for s in seeds], [ddep[(pretrain_seed, size, s)][budget] for s in seeds]


def data_size_table(
    random: Dict[int, Dict[str, float]],
    ddep: Dict[Tuple[int, int, int], Dict[str, float]],
    sizes: Sequence[int] = DATA_SIZES,
    budgets: Sequence[str] = VARIANCE_BUDGETS,
    ft_seeds: Sequence[int] = DATA_SIZE_FT_SEEDS,
) -> str:
    """Markdown: per pretraining data size (unlabeled canvases) and budget, both arms' mIoU and DDeP -
    random-init per fine-tuning seed (mean +- sd), resolved or not by the 2-sd rule; "not run" without
    runs."""
    rows = []
    for size in sizes:
        for b in budgets:
            seeds, a, d = data_size_gains(random, ddep, size, b, ft_seeds)
            if not seeds:
                rows.append((f'{size:,}', f'{int(b):,}', '-', NOT_RUN, NOT_RUN, NOT_RUN))
                continue
            g = paired_differences(a, d)
            rows.append(
                (
                    f'{size:,}',
                    f'{int(b):,}',
                    seeds_text(seeds, 'd'),
                    seeds_mean_sd_text(a),
                    seeds_mean_sd_text(d),
                    f'{seeds_mean_sd_text(g, "+.2f")} ({verdict(g)})',
                )
            )
    header = (
        'unlabeled canvases pretrained on',
        'steps',
        'fine-tuning seeds',
        'random-init decoder (mean +- sd)',
        'DDeP decoder (mean +- sd)',
        'DDeP - random-init (mean +- sd)',
    )
    return markdown_table(header, rows)


def plot_data_size(
    random: Dict[int, Dict[str, float]],
    ddep: Dict[Tuple[int, int, int], Dict[str, float]],
    path: str,
    sizes: Sequence[int] = DATA_SIZES,
    budgets: Sequence[str] = VARIANCE_BUDGETS,
    ft_seeds: Sequence[int] = DATA_SIZE_FT_SEEDS,
    percent: float = 1,
) -> bool:
    """DDeP - random-init (per seed and mean +- sd) against the pretraining's unlabeled canvases, one line per
    budget; written to ``path`` only when some size has runs (returns whether it was written)."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    drawn = False
    for i, b in enumerate(budgets):
        xs, means, sds = [], [], []
        for size in sizes:
            seeds, a, d = data_size_gains(random, ddep, size, b, ft_seeds)
            if not seeds:
                continue
            g = paired_differences(a, d)
            ax.scatter([size * (1 + 0.03 * (i - 0.5))] * len(g), g, s=10, color=f'C{i}', alpha=0.5)
            m, sd = mean_sd(g)
            xs.append(size * (1 + 0.03 * (i - 0.5)))
            means.append(m)
            sds.append(0.0 if np.isnan(sd) else sd)
        if xs:
            drawn = True
            ax.errorbar(
                xs, means, yerr=sds, marker='o', ms=4, capsize=3, color=f'C{i}', label=f'{int(b):,} steps'
            )
    if not drawn:
        plt.close(fig)
        return False
    ax.axhline(0, color='k', lw=0.8, ls='--')
    ax.set_xscale('log')
    ax.minorticks_off()
    ax.set_xticks(list(sizes))
    ax.set_xticklabels([f'{s:,}' for s in sizes])
    ax.set_xlabel('unlabeled canvases in the DDeP pretraining')
    ax.set_ylabel('DDeP - random-init val mIoU (points)')
    ax.set_title(
        f'DDeP gain vs pretraining data, {percent:g}% labels (mean +- sd, dots: seeds)\n{LABEL}', fontsize=9
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def saved_stage_probes(
    folder: str, pretrain_seed: int = 0, unlabeled: int = DEFAULT_UNLABELED
) -> Dict[float, Dict[int, Dict[str, Dict[str, float]]]]:
    """The saved stage probes (``probe-stages_*.json``) in ``folder`` of one pretraining (seed, size, the
    paper's noise level), keyed by their settings: ``{percent: {fine-tuning seed: {arm: {set: mIoU}}}}``."""
    out: Dict = {}
    for path in sorted(glob.glob(osp.join(folder, 'probe-stages_*.json'))):
        with open(path) as f:
            run = json.load(f)
        cfg, pre = run['settings'], run['settings']['pretrain']
        if (pre['seed'], pre['data']['num_unlabeled'], pre['sigma']) != (
            pretrain_seed,
            unlabeled,
            PAPER_SIGMA,
        ):
            continue
        out.setdefault(cfg['percent'], {})[cfg['seed']] = run['miou']
    return {p: dict(sorted(r.items())) for p, r in sorted(out.items())}


def probe_stages_table(
    probes: Dict[float, Dict[int, Dict[str, Dict[str, float]]]],
    percents: Sequence[float] = (1, 5),
    background: float = BACKGROUND_MIOU,
    gate: float = PROBE_GATE,
) -> str:
    """Markdown: per label fraction and feature set (each decoder stage, then their concatenation), the
    stage-probe mIoU of both decoders and DDeP - random-init per seed (mean +- sd), and on the concatenation
    rows the gate (random-init mean >= ``gate`` x ``background``); "not run" where a fraction has no runs."""
    rows = []
    for percent in percents:
        runs = probes.get(float(percent), {})
        if not runs:
            rows.append((f'{percent:g}%', 'all', '-', NOT_RUN, NOT_RUN, NOT_RUN, NOT_RUN))
            continue
        seeds = list(runs)
        for name in PROBE_SETS:
            a = [runs[s]['random'][name] for s in seeds]
            d = [runs[s]['ddep'][name] for s in seeds]
            g = paired_differences(a, d)
            gate_cell = ''
            if name == 'concat':
                gate_cell = '**passes**' if mean_sd(a)[0] >= gate * background else 'fails'
            rows.append(
                (
                    f'{percent:g}%',
                    name,
                    seeds_text(seeds, 'd'),
                    seeds_mean_sd_text(a),
                    seeds_mean_sd_text(d),
                    f'{seeds_mean_sd_text(g, "+.2f")} ({verdict(g)})',
                    gate_cell,
                )
            )
    header = (
        'labels',
        'features (decoder stage by output stride)',
        'seeds',
        'random-init decoder (mean +- sd)',
        'DDeP decoder (mean +- sd)',
        'DDeP - random-init (mean +- sd)',
        f'gate (random-init concat >= {gate:g} x {background:.2f})',
    )
    return markdown_table(header, rows)


GATED_RUNS, GATED_STEPS = 'lr1e-3_4000it', 4000
TABLES: Dict[str, Callable[[str], str]] = {
    'ddep/recipe-1pct': lambda r: label_efficiency_table(*saved_arms(osp.join(r, 'ddep'), 1)),
    'ddep/recipe-5pct': recipe_table,
    'ddep/pilot': lambda r: pilot_table(saved_pilot(r), BACKGROUND_MIOU),
    'ddep/gated-5pct': gated_table(5),
    'ddep/gated-1pct': gated_table(1),
    'ddep/gated-means': gated_means_table,
    'ddep/probe': lambda r: probe_table(
        {f'{p}%': saved_mious(osp.join(r, 'ddep', 'probe'), 'probe', p) for p in (5, 1)}
    ),
    'ddep/probe-stages': lambda r: probe_stages_table(
        saved_stage_probes(osp.join(r, 'ddep', 'probe_stages'))
    ),
    'ddep/pretrain-seeds': lambda r: pretrain_seeds_table(
        *saved_pairs([osp.join(r, 'ddep', d) for d in (GATED_RUNS, 'pretrain_seeds')], 1)
    ),
    'ddep/data-size': lambda r: data_size_table(
        *saved_pairs([osp.join(r, 'ddep', d) for d in (GATED_RUNS, 'data_size')], 1)
    ),
}


def report(args, results: Dict) -> None:
    """Markdown tables (per seed and mean +- sd) of the saved runs made with ``args``, and the 2-sd check of
    DDeP - random-init, on stdout and in ``results``."""
    table = collect(args)
    results['summary'] = {}
    for percent, per in table.items():
        if not per['random']:
            continue
        print(f'\n{percent}% labels, val mIoU (%) per seed ({LABEL}):\n')
        print(label_efficiency_table(per['random'], per['ddep']))
        for b in common_budgets(per['random'], per['ddep']):
            a, d = [per['random'][s][b] for s in per['random']], [per['ddep'][s][b] for s in per['ddep']]
            g = paired_differences(a, d)
            results['summary'][f'{percent}pct_{b}steps'] = dict(
                seeds=list(per['random']), random=a, ddep=d, gain=g, effect=is_effect(g)
            )
    seeds = sorted({s for per in table.values() for s in per['random']})
    print(f'seeds {seeds}, folds {[fold_of(args, s) for s in seeds]}; {LABEL}')
    report_probes(args, results)
    report_variance(args, results)
    if results['summary']:
        plot_label_efficiency(table, osp.join(args.work_dir, 'label_efficiency.png'))


def report_probes(args, results: Dict) -> None:
    """Linear-probe mIoU of the decoders without fine-tuning (the saved ``probe_*.json`` made with ``args``),
    per seed and mean +- sd, on stdout and in ``results['probe']``."""
    probes = {}
    for percent in args.percents:
        runs = {}
        for seed in args.seeds:
            run = load_run(probe_path(args, percent, seed), probe_settings(args, percent, seed))
            if run is not None:
                runs[seed] = run['miou']
        if runs:
            probes[f'{percent:g}%'] = runs
    results['probe'] = {
        label.replace('%', 'pct'): {arm: [r[arm] for r in runs.values()] for arm in ('random', 'ddep')}
        for label, runs in probes.items()
    }
    if probes:
        print(f'\nlinear probe of the decoder output, val mIoU (%) ({LABEL}):\n')
        print(probe_table(probes))


def report_variance(args, results: Dict) -> None:
    """From the saved runs of ``--work-dir``: the stage probes of each pretraining seed, the pairs of
    (pretraining seed, fine-tuning seed) and the pretraining data sizes, for each fraction and the last two
    budgets of ``--budgets``, on stdout and in ``results``; the data-size plot
    ``data_size_gain_<percent>pct.png``."""
    pretrain_seeds = args.pretrain_seeds or [args.pretrain_seed]
    unl = pretrain_unlabeled(args)
    for p in pretrain_seeds:
        probes = saved_stage_probes(args.work_dir, p, unl)
        if probes:
            results.setdefault('probe_stages', {})[f'p{p}'] = {f'{k:g}pct': v for k, v in probes.items()}
            print(f'\nstage probe (pretraining seed {p}), val mIoU (%) ({LABEL}):\n')
            print(probe_stages_table(probes, sorted(probes)))
    budgets = [str(b) for b in sorted(args.budgets)[-2:]]
    for percent in args.percents:
        random, ddep = saved_pairs([args.work_dir], percent, finetune_lr(args), args.finetune_iters)
        if not ddep or not random:
            continue
        results.setdefault('pairs', {})[f'{percent:g}pct'] = [
            dict(pretrain_seed=k[0], unlabeled=k[1], seed=k[2], ddep=v, random=random.get(k[2]))
            for k, v in ddep.items()
        ]
        seeds = sorted({k[0] for k in ddep})
        if len(seeds) > 1:
            print(f'\n{percent:g}% labels, pretraining seeds x fine-tuning seeds, val mIoU (%) ({LABEL}):\n')
            print(pretrain_seeds_table(random, ddep, seeds, args.seeds, budgets, unl))
        sizes = sorted({k[1] for k in ddep})
        if len(sizes) > 1:
            print(f'\n{percent:g}% labels, pretraining data size, val mIoU (%) ({LABEL}):\n')
            print(data_size_table(random, ddep, sizes, budgets, args.seeds))
            plot_data_size(
                random,
                ddep,
                osp.join(args.work_dir, f'data_size_gain_{percent:g}pct.png'),
                sizes,
                budgets,
                args.seeds,
                percent,
            )


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line arguments (the defaults are the benchmark's recipe, see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--work-dir', default='work_dirs/ddep_bench')
    add_determinism_args(p)
    p.add_argument('--stage', choices=['all', 'pretrain', 'finetune', 'probe', 'report'], default='all')
    p.add_argument('--arch', choices=sorted(LITE_CHANNELS), default='lite0')
    p.add_argument(
        '--decoder-channels',
        type=int,
        nargs=5,
        default=[256, 128, 64, 32, 16],
        help='UNet decoder widths, deepest first (the 1x decoder: 256 128 64 32 16)',
    )
    p.add_argument('--percents', type=float, nargs='+', default=[1, 5], help='label fractions fine-tuned')
    p.add_argument(
        '--data-percents',
        type=float,
        nargs='+',
        default=[1, 5],
        help='label fractions the composited set is built with (--percents must be among them)',
    )
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4])
    p.add_argument(
        '--folds', type=int, default=5, help='labeled folds built; seed s uses fold s mod folds + 1'
    )
    p.add_argument('--num-train', type=int, default=1000)
    p.add_argument('--num-val', type=int, default=200)
    p.add_argument('--num-unlabeled', type=int, default=1000)
    p.add_argument('--canvas', type=int, default=96, help='canvas side of the composited set (px)')
    p.add_argument('--crop', type=int, default=48, help='train crop (px)')
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--sigma', type=float, default=PAPER_SIGMA, help='noise level on [-1, 1] images')
    p.add_argument('--pretrain-iters', type=int, default=4000)
    p.add_argument('--pretrain-lr', type=float, default=1e-3, help='DDeP decoder pretraining lr (Adam)')
    p.add_argument(
        '--pretrain-schedule',
        choices=['constant', 'cosine'],
        default='constant',
        help='pretraining lr schedule: constant, or cosine decay over all --pretrain-iters',
    )
    p.add_argument('--pretrain-seed', type=int, default=0, help='seed of the one shared pretraining run')
    p.add_argument(
        '--pretrain-seeds',
        type=int,
        nargs='+',
        default=None,
        help='pretraining seeds, each paired with every fine-tuning seed of --seeds (DDeP runs of seed '
        'p != 0 saved as ft_ddep_p<p>_<percent>pct_s<seed>.json; the random-init runs are shared); default '
        '--pretrain-seed',
    )
    p.add_argument(
        '--pretrain-unlabeled',
        type=int,
        default=None,
        help='unlabeled canvases the pretraining reads (another number than --num-unlabeled builds a set '
        'for the pretraining only, with the same train and val canvases); default --num-unlabeled',
    )
    p.add_argument(
        '--box-blur-batches', type=int, default=50, help='batches the box-blur reference gain is fitted on'
    )
    p.add_argument(
        '--finetune-encoder',
        choices=['train', 'frozen'],
        default='train',
        help='fine-tune the whole network (the paper) or keep the ImageNet encoder frozen',
    )
    p.add_argument(
        '--finetune-lr',
        type=float,
        default=None,
        help='fine-tuning lr (Adam, cosine); default 1e-4 (the paper) with --finetune-encoder train, '
        '3e-3 with frozen',
    )
    p.add_argument(
        '--arms',
        nargs='+',
        choices=['random', 'ddep'],
        default=['random', 'ddep'],
        help='fine-tuning arms this process runs (random-init decoder runs need no pretraining)',
    )
    p.add_argument('--finetune-iters', type=int, default=1000)
    p.add_argument(
        '--budgets',
        type=int,
        nargs='+',
        default=[100, 250, 500, 1000],
        help='steps at which val mIoU is taken',
    )
    p.add_argument(
        '--input-skip-percents',
        type=float,
        nargs='*',
        default=[],
        help='also pretrain a decoder with the input as a stride-1 skip and fine-tune it at these fractions',
    )
    p.add_argument(
        '--probe-pixels',
        type=int,
        default=50000,
        help='labeled pixels the linear probe of the decoder output is fitted on (stage probe)',
    )
    p.add_argument(
        '--probe',
        choices=['stages', 'last', 'both'],
        default='both',
        help='stage probe: a linear probe on each decoder stage and their concatenation, decoder BN '
        'statistics recomputed on the train canvases for both arms (stages), the earlier probe of the last '
        'stage only (last), or both',
    )
    p.add_argument('--steps', type=int, default=20, help='timed steps per throughput variant')
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--skip-timing', action='store_true', help='no pretraining step-time comparison')
    p.add_argument(
        '--target-speedup', type=float, default=1.3, help='target: frozen-encoder step this much faster'
    )
    args = p.parse_args(argv)
    bad = [b for b in args.budgets if not 0 < b <= args.finetune_iters]
    if bad:
        p.error(f'--budgets {bad} outside 1..--finetune-iters ({args.finetune_iters})')
    if not args.sigma > 0:
        p.error(f'--sigma must be positive, got {args.sigma}')
    missing = sorted(set(args.percents) - set(args.data_percents))
    if missing:
        p.error(f'--percents {missing} not among --data-percents {args.data_percents}: add them there')
    if args.folds < 1:
        p.error(f'--folds must be >= 1, got {args.folds}')
    if args.pretrain_unlabeled is not None and args.pretrain_unlabeled < 1:
        p.error(f'--pretrain-unlabeled must be >= 1 unlabeled canvas, got {args.pretrain_unlabeled}')
    if args.pretrain_seeds is not None and len(set(args.pretrain_seeds)) != len(args.pretrain_seeds):
        p.error(f'--pretrain-seeds {args.pretrain_seeds} repeats a seed')
    return args


def main(argv=None) -> int:
    """Command-line entry point."""
    args = parse_args(argv)
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    os.makedirs(args.work_dir, exist_ok=True)
    if args.deterministic:  # this bench trains in its own process: its thread count is the runs'
        torch.set_num_threads(thread_count(args))
    where = f'{device}' + (
        f' ({torch.cuda.get_device_name()})' if device == 'cuda' else f', {torch.get_num_threads()} threads'
    )
    print(
        f'DDeP benchmark on {where}, EfficientNet-{args.arch}, decoder {args.decoder_channels}, '
        f'crop {args.crop}, batch {args.batch}, stage {args.stage}',
        flush=True,
    )
    results: Dict = {
        'device': where,
        'args': vars(args),
        'label': LABEL,
        'reproducibility': run_record(args, in_process=True),
    }

    if args.stage == 'all' and not args.skip_timing:
        # pretraining step time (independent of the data): frozen encoder vs whole network, same process
        whole = time_steps(args, freeze=False, device=device)
        frozen = time_steps(args, freeze=True, device=device)
        results['throughput'] = dict(
            whole_network_step_s=whole, frozen_encoder_step_s=frozen, ratio=whole / frozen
        )
        print(
            f'[time] whole-network step {whole * 1e3:.1f} ms, frozen-encoder step {frozen * 1e3:.1f} ms: '
            f'ratio {whole / frozen:.2f}x (target >= {args.target_speedup:g}x '
            f'{"met" if whole / frozen >= args.target_speedup else "NOT met"})',
            flush=True,
        )

    data_root = build_data(args)
    pre = skip = None
    # one pretraining per --pretrain-seeds (default: --pretrain-seed), each paired with every fine-tuning seed
    pretrained = [with_pretraining(args, s) for s in (args.pretrain_seeds or [args.pretrain_seed])]
    if args.stage in ('all', 'pretrain', 'probe') or (args.stage == 'finetune' and 'ddep' in args.arms):
        pres = [run_pretrain(a, data_root, device) for a in pretrained]
        pre = pres[0]
    else:
        pres = []
        pre = load_run(
            osp.join(
                args.work_dir, f'pretrain{sigma_tag(args)}{unlabeled_tag(args)}_s{args.pretrain_seed}.json'
            ),
            pretrain_settings(args),
        )
    if args.stage in ('all', 'finetune'):
        for seed in args.seeds:
            for percent in args.percents:
                if 'random' in args.arms:  # shared by every pretraining seed (it reads no pretraining)
                    run_finetune(args, data_root, None, percent, seed, 'random', device)
                if 'ddep' in args.arms:
                    for a, p in zip(pretrained, pres):
                        run_finetune(a, data_root, p['ckpt'], percent, seed, ddep_tag(a), device, 'ddep')
        # optional: the decoder with the input as a stride-1 skip (after the main arms, so they finish first)
        if args.input_skip_percents:
            skip = run_pretrain(args, data_root, device, input_skip=True)
            for seed in args.seeds:
                for percent in args.input_skip_percents:
                    run_finetune(
                        args,
                        data_root,
                        skip['ckpt'],
                        percent,
                        seed,
                        'ddep-inputskip',
                        device,
                        input_skip=True,
                    )

    if args.stage in ('all', 'probe'):
        for a, p in zip(pretrained, pres):
            if args.probe in ('last', 'both'):
                run_probes(a, data_root, p['ckpt'], device)
            if args.probe in ('stages', 'both'):
                run_stage_probes(a, data_root, p['ckpt'], device)

    if pre is not None:
        curves = {f'DDeP, sigma {args.sigma:g}': pre['losses']}
        refs = {'3x3 box-blur high-pass, fitted gain': pre['box_blur']['loss']}
        if skip is not None:
            curves['DDeP + input skip'] = skip['losses']
        plot_losses(
            curves, refs, osp.join(args.work_dir, f'pretrain_loss{sigma_tag(args)}{unlabeled_tag(args)}.png')
        )
        results['pretrain'] = {k: v for k, v in pre.items() if k not in ('losses', 'ckpt')}
        print(
            f'pretraining ({LABEL}): loss means per 500 steps '
            + ', '.join(f'{v:.3f}' for v in pre['window_means'])
            + f'; box-blur reference {pre["box_blur"]["loss"]:.3f} (gain {pre["box_blur"]["gain"]:.3f}); '
            f'{pre["s_per_step"]:.3f} s/step'
        )
    if args.stage in ('all', 'finetune', 'probe', 'report'):
        report(args, results)
    json.dump(
        results,
        open(osp.join(args.work_dir, f'ddep_bench{sigma_tag(args)}{unlabeled_tag(args)}.json'), 'w'),
        indent=2,
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
