"""Each method's tiny config with its data, for the host-sync count and the CUDA check.

:func:`prepare` builds the data (composited from real images, CPU scale) under ``<run_dir>/data/`` where the
tiny configs look for it (their ``data_root`` is relative to the working directory) and writes the derived
baseline configs under ``<run_dir>/configs/``; :func:`load_config` returns a config with a short schedule
and in-process data loading. The stock baselines are mmdet's models on the same data and schedule:
SoftTeacher on the ACRST config (no CropBank, mmdet's default recipe), DINO next to Cal-DINO.
"""

from __future__ import annotations

import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Callable, Optional

from mmengine.config import Config

from tools.benchmarks.acrst_bench import mmdet_soft_teacher, strip_paste

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@dataclass(frozen=True)
class TinyRun:
    """A method's tiny config (path relative to the repository), its data kind and its overrides.

    ``derive`` (optional) turns the loaded config into the run's config (written by :func:`prepare`).
    """

    name: str
    config: str
    data: str  # 'det', 'reid' or 'seg'
    options: dict = field(default_factory=dict)
    baseline_of: Optional[str] = None  # the method this stock model is the baseline of
    derive: Optional[Callable[[Config], Config]] = None


def soft_teacher(cfg: Config) -> Config:
    """mmdet's SoftTeacher with its default recipe on the ACRST config's detector, data and schedule."""
    cfg.model = mmdet_soft_teacher(cfg.model)
    for ds in cfg.train_dataloader.dataset.datasets:
        ds.pipeline = strip_paste(ds.pipeline)
    cfg.custom_hooks = [h for h in cfg.custom_hooks if h.type != 'CropBankHook']
    return cfg


_ACRST = 'configs/acrst/acrst_faster-rcnn_efficientnet-lite0_fpn_semi-0.25-composited-demo.py'
RUNS = (
    # the unlabeled branch from the second iteration, the CropBank refreshed every 2 iterations
    TinyRun(
        'ACRST',
        _ACRST,
        'det',
        {
            'model.semi_train_cfg.ml_scores_file': None,
            'model.semi_train_cfg.burn_in_iters': 1,
            'custom_hooks.1.refresh_interval': 2,
        },
    ),
    TinyRun('SoftTeacher', _ACRST, 'det', baseline_of='ACRST', derive=soft_teacher),
    TinyRun('SSMLL', 'configs/acrst/ssmll/ssmll_efficientnet-lite0_semi-0.25-composited-demo.py', 'det'),
    TinyRun('Cal-DETR', 'configs/cal_detr/cal-dino-4scale_tiny_cpu-smoke_composited-demo.py', 'det'),
    TinyRun(
        'DINO',
        'configs/cal_detr/dino-4scale_tiny_cpu-smoke_composited-demo.py',
        'det',
        baseline_of='Cal-DETR',
    ),
    TinyRun('SpCL', 'configs/spcl/spcl_r18-tiny_cpu-smoke_composited-reid.py', 'reid'),
    TinyRun('DDeP', 'configs/ddep/ddep_r18-tiny_cpu-smoke_pretrain_composited-seg.py', 'seg'),
)


def config_file(run: TinyRun, run_dir: str) -> str:
    """The config file of ``run``: the repository's, or the derived one :func:`prepare` wrote."""
    if run.derive is None:
        return osp.join(REPO_ROOT, run.config)
    return osp.join(run_dir, 'configs', f'{run.name}.py')


def prepare(run_dir: str, runs) -> None:
    """Build the data sets of ``runs`` under ``<run_dir>/data/`` (kept where already there) and write the
    derived configs under ``<run_dir>/configs/``."""
    kinds = {r.data for r in runs}
    data = osp.join(run_dir, 'data')
    if 'det' in kinds:
        from tools.benchmarks.composited import ensure_demo_detection

        ensure_demo_detection(osp.join(data, 'composited_det_demo'), seed=0)
    if 'reid' in kinds and not osp.isdir(osp.join(data, 'composited_reid_tiny')):
        from tools.benchmarks.composited.reid import ReIDConfig, build_reid

        # the sizes the SpCL smoke config's header gives
        cfg = ReIDConfig(
            train_ids=12, test_ids=10, num_cameras=4, num_distractors=6, num_junk=4, height=64, width=32
        )
        build_reid(osp.join(data, 'composited_reid_tiny'), seed=0, cfg=cfg)
    if 'seg' in kinds and not osp.isdir(osp.join(data, 'composited_seg_smoke')):
        from tools.benchmarks.composited.segmentation import SegmentationConfig, build_segmentation

        cfg = SegmentationConfig(
            num_train=20,
            num_val=4,
            num_unlabeled=8,
            height=96,
            width=96,
            objects_per_image=(1, 3),
            size_range=(16, 48),
            percents=(10, 50),
            folds=(1,),
        )
        build_segmentation(osp.join(data, 'composited_seg_smoke'), seed=0, cfg=cfg)
    for run in runs:
        if run.derive is not None:
            os.makedirs(osp.join(run_dir, 'configs'), exist_ok=True)
            run.derive(Config.fromfile(osp.join(REPO_ROOT, run.config))).dump(config_file(run, run_dir))


def schedule_options(run: TinyRun, iters: int, run_dir: str) -> dict:
    """Overrides for ``iters`` training iterations, a checkpoint at the end, no validation before it."""
    cfg = Config.fromfile(config_file(run, run_dir))
    opts = dict(run.options)
    if cfg.train_cfg.get('type') == 'IterBasedTrainLoop' or 'max_iters' in cfg.train_cfg:
        opts.update({'train_cfg.max_iters': iters, 'train_cfg.val_interval': iters})
        opts.update({'default_hooks.checkpoint.interval': iters, 'default_hooks.checkpoint.by_epoch': False})
    else:  # SpCL: epochs of a fixed number of iterations (its sampler's iters_per_epoch)
        opts.update({'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 1})
        opts.update(
            {'train_dataloader.sampler.iters_per_epoch': iters, 'default_hooks.checkpoint.interval': 1}
        )
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if loader in cfg:
            opts.update({f'{loader}.num_workers': 0, f'{loader}.persistent_workers': False})
    opts['default_hooks.logger.interval'] = 1
    return opts


def load_config(run: TinyRun, iters: int, run_dir: str, work_dir: str) -> Config:
    """The tiny config of ``run`` for ``iters`` iterations, writing to ``work_dir``."""
    cfg = Config.fromfile(config_file(run, run_dir))
    cfg.merge_from_dict(schedule_options(run, iters, run_dir))
    cfg.work_dir = work_dir
    return cfg


def cfg_options_args(options: dict) -> list:
    """``--cfg-options k=v ...`` for tools/train.py / tools/test.py (``None`` reads back as None)."""
    return ['--cfg-options', *(f'{k}={v}' for k, v in options.items())] if options else []
