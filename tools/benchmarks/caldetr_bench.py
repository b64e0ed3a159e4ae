"""Cal-DETR benchmark: baseline vs Cal-DETR (paper) vs the release's behaviour, plus temperature scaling.

Arms, all on the same data, schedule, batch and seeds (only the head differs), on a small DINO
(``--family dino``, the default) or Deformable-DETR (``--family ddetr``) with 2 encoder / 3 decoder layers and
100 queries over the ImageNet-pretrained EfficientNet-Lite0 (timm features at strides 8-32), configs
``configs/cal_detr/*{dino-4scale,deformable-detr}-small*_efficientnet-lite0_1xb4-900it_composited-demo*.py``:

* ``baseline``: mmdet's ``DINOHead`` / ``DeformableDETRHead``;
* ``paper``: ``CalDINOHead`` / ``CalDeformableDETRHead`` as the paper describes it (modulation
  ``z_L * (1 - tanh(var))`` + logit mixing);
* ``released``: the Cal head with ``modulation_mode='released', logit_mixing=False``, what the release trains;
* variants, only when named in ``--arms``: ``modulation`` (the paper arm with ``logit_mixing=False``) and
  ``mixing`` (the mixing-only arm: the paper arm with ``logit_modulation=False``), to tell the two
  training-time pieces apart, and the test-only arms ``paper-modulated-test`` and ``released-modulated-test``
  (the paper / released arm's checkpoint, not retrained, tested with ``modulate_at_test=True``: predictions
  from the modulated last-layer logits that its training supervised, not from the raw ones; ``TEST_ONLY``
  names each one's source arm);
* ``ts``: post-hoc temperature scaling of the baseline's predictions (no training). In-domain, T is
  cross-fitted over the clean val set by image (fold = image id % 2: each half is scaled with a T fit on the
  other half); out-of-domain, T is fit on the whole clean val set and applied to the corrupted val set.

Each trained arm runs ``tools/train.py`` and ``tools/test.py --out`` (clean val, then its corrupted copy) in
its own process; the calibration numbers are then computed here from the dumped predictions with
``DECEMetric``'s conventions (raw score >= ``--score-thr``, IoU >= ``--iou-thr``, ``--num-bins`` equal bins;
the temperature only rescales the confidences of that set). Reported per seed and as mean +- sd over seeds,
clean and corrupted: box AP and AP_50 (x100), the number of detections >= the threshold and their precision,
D-ECE (x100) with the direction of miscalibration (signed gap: bin-weighted confidence minus precision, > 0
over-confident), the resolution of each D-ECE (its bootstrap sd over the detections, and the D-ECE a perfectly
calibrated detector with the same confidences would get by chance), per-class D-ECE; a reliability diagram
PNG of all arms for one seed; the median train-step and inference times of each Cal arm over the baseline
(interleaved steps on the same batches, same weights, plus a check that inference outputs are identical).
Results on these data are "composited from real images".

Each tested run also saves a compact prediction summary (``--summary-dir``, default
``docs/benchmarks/results/cal_detr/mechanism_<regime>/``): per kept detection its score, match, class, image
and the ``tanh(u)`` of its query (the Cal arms' test configs use the recording heads of
``caldetr_record.py``), with the AP, checkpoint and settings. The docs render from these the test of the
release's raw test logits (``mechanism_runs_table``, ``mechanism_predictions_table``: D-ECE, signed gap,
``logit_offset`` over the baseline, mean tanh(u), the predictions' verdicts); commands in
docs/benchmarks/cal_detr.md.

    # 3 seeds (about 20 min per arm on 2 CPU cores at 900 iterations)
    python tools/benchmarks/caldetr_bench.py --seeds 0 1 2
    python tools/benchmarks/caldetr_bench.py --family ddetr --seeds 0 --work-dir work_dirs/caldetr_bench_ddetr
    # which of the paper's two pieces does what: the variant arms beside the baseline and the paper arm
    python tools/benchmarks/caldetr_bench.py --family ddetr --arms baseline paper modulation mixing \
        --seeds 0 --work-dir work_dirs/caldetr_bench_ddetr
    # the paper's decoder depth (6 layers instead of the small configs' 3)
    python tools/benchmarks/caldetr_bench.py --family ddetr --arms baseline paper --decoder-layers 6 \
        --seeds 0 --work-dir work_dirs/caldetr_bench_ddetr6
    # the same on 2 cores in two processes of one thread each, then one report (finished runs are reused)
    OMP_NUM_THREADS=1 python tools/benchmarks/caldetr_bench.py --train-only --seeds 0 2 --num-workers 1 &
    OMP_NUM_THREADS=1 python tools/benchmarks/caldetr_bench.py --train-only --seeds 1 --num-workers 1
    python tools/benchmarks/caldetr_bench.py --seeds 0 1 2 --num-workers 1
    # the finished runs tested again on a larger held-out set (built once with another seed; no retraining)
    python tools/dataset_converters/composited_det.py --out data/composited_det_demo_test600 --seed 1 \
        --num-train 20 --num-val 600 --height 256 --width 256 --objects 1 4 --object-size 48 112 \
        --imbalance-ratio 10 --val-imbalance-ratio 3 --percents 10 --folds 1
    python tools/benchmarks/caldetr_bench.py --seeds 0 1 2 --test-root data/composited_det_demo_test600
    # pilot: is the baseline over-confident after long training on few images? (100 train images at 128 px,
    # 2,500 iterations, a checkpoint every 500 tested on the 600-image set: signed gap and D-ECE with 95%
    # image-bootstrap intervals, one JSON per checkpoint, a curve PNG; gate: signed gap > 0, interval above 0)
    OMP_NUM_THREADS=1 python tools/benchmarks/caldetr_bench.py --pilot --seeds 0 --num-workers 1 \
        --test-root data/composited_det_demo_test600 --work-dir work_dirs/cal_pilot
    # the arms in the pilot's over-confident regime (100 train images at 128 px, 1,500 iterations at a
    # constant learning rate), trained and tested on the demo val, then on the 600-image set; one report
    R="--iters 1500 --lr-drop-at 1 --train-images 100 --img-size 128 --num-workers 1"
    R="$R --work-dir work_dirs/cal_regime"
    OMP_NUM_THREADS=1 python tools/benchmarks/caldetr_bench.py --train-only --seeds 0 1 2 $R
    python tools/benchmarks/caldetr_bench.py --seeds 0 1 2 $R --test-root data/composited_det_demo_test600
    # a short single-seed probe that checks the pipeline end to end (its summaries kept out of the docs)
    python tools/benchmarks/caldetr_bench.py --seeds 0 --iters 60 --timing-steps 3 --timing-warmup 1 \
        --summary-dir work_dirs/caldetr_bench/summaries
"""

from __future__ import annotations

import argparse
import functools
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
    mean_sd_text,
    number,
    paired_differences,
    seeds_mean_sd_text,
)

DEMO_ROOT = 'data/composited_det_demo/'
CONFIG_STEM = 'efficientnet-lite0_1xb4-900it_composited-demo'
#: family -> (model name, arm -> config name prefix)
FAMILIES = dict(
    dino=(
        'DINO',
        dict(
            baseline='dino-4scale-small',
            paper='cal-dino-4scale-small',
            released='cal-dino-4scale-small-released',
        ),
    ),
    ddetr=(
        'Deformable-DETR',
        dict(
            baseline='deformable-detr-small',
            paper='cal-deformable-detr-small',
            released='cal-deformable-detr-small-released',
        ),
    ),
)
DEFAULT_ARMS = ('baseline', 'paper', 'released')
#: variant arm -> the head settings it changes in its base arm's config (:data:`VARIANT_BASES`). ``mixing``
#: is the mixing-only arm: the paper arm with ``logit_modulation=False``.
VARIANTS = {
    'modulation': dict(logit_mixing=False),
    'mixing': dict(logit_modulation=False),
    'paper-modulated-test': dict(modulate_at_test=True),
    'released-modulated-test': dict(modulate_at_test=True),
}
#: variant arm -> the arm whose config it changes (the paper arm unless named here)
VARIANT_BASES = {'released-modulated-test': 'released'}
#: variants that change inference only: test-only arm -> the trained arm whose checkpoint it tests
TEST_ONLY = {'paper-modulated-test': 'paper', 'released-modulated-test': 'released'}
ARMS = DEFAULT_ARMS + tuple(VARIANTS)
#: family -> the bench-only Cal head that also returns tanh(u) of each prediction (caldetr_record.py)
RECORDING_HEADS = dict(
    dino='UncertaintyRecordingCalDINOHead', ddetr='UncertaintyRecordingCalDeformableDETRHead'
)
RECORD_MODULE = 'tools.benchmarks.caldetr_record'
ARM_LABELS = dict(
    baseline='{} (baseline)',
    paper='Cal-{} (paper)',
    released='Cal-{} (release: z - tanh(var), no mixing)',
    modulation='Cal-{} (paper modulation only, no mixing)',
    mixing='Cal-{} (logit mixing only, no modulation)',
    **{
        'paper-modulated-test': 'Cal-{} (paper, tested on modulated logits)',
        'released-modulated-test': 'Cal-{} (release, tested on modulated logits)',
    },
    ts='{} + temperature scaling',
)
DOMAINS = ('clean', 'corrupted')
#: default target of ``--target-dece-ratio`` / ``--max-ap-drop``
TARGET_DECE_RATIO, MAX_AP_DROP = 0.8, 1.0
#: default of ``--lr-drop-at``: the configs' schedule drops the learning rate x0.1 at 85% of the iterations
LR_DROP_AT = 0.85


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--family', choices=list(FAMILIES), default='dino', help='DINO or Deformable-DETR')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--arms', nargs='+', choices=ARMS, default=list(DEFAULT_ARMS))
    p.add_argument('--no-ts', action='store_true', help='skip post-hoc temperature scaling of the baseline')
    p.add_argument('--iters', type=int, default=900, help='training iterations of every run')
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument(
        '--lr-drop-at',
        type=float,
        default=LR_DROP_AT,
        help='the learning rate drops x0.1 at this fraction of --iters (>= 1: constant learning rate)',
    )
    p.add_argument('--train-images', type=int, default=None, help='train on the first N train images only')
    p.add_argument(
        '--img-size', type=int, default=None, help="train and test image size (px; default: the config's)"
    )
    p.add_argument('--lr', type=float, default=None, help='AdamW learning rate (default: the config, 1e-4)')
    p.add_argument(
        '--decoder-layers',
        type=int,
        default=None,
        help="decoder layers of every arm (default: the config's 3; the paper's detectors use 6)",
    )
    p.add_argument('--val-images', type=int, default=None, help='evaluate on the first N val images only')
    p.add_argument('--data-root', default=DEMO_ROOT, help='composited detection set (built if the demo set)')
    p.add_argument(
        '--test-root',
        default=None,
        help='evaluate the finished runs (trained on --data-root) on the val / val_corrupted sets of this '
        "composited set instead of --data-root's (e.g. a larger held-out set built with another seed)",
    )
    p.add_argument('--num-workers', type=int, default=2)
    p.add_argument('--score-thr', type=float, default=0.3, help='D-ECE score threshold (paper: 0.3)')
    p.add_argument('--iou-thr', type=float, default=0.5)
    p.add_argument('--num-bins', type=int, default=10)
    p.add_argument(
        '--target-dece-ratio',
        type=float,
        default=TARGET_DECE_RATIO,
        help="target checked per seed: Cal arm D-ECE <= this x the baseline's, clean and corrupted",
    )
    p.add_argument(
        '--max-ap-drop', type=float, default=MAX_AP_DROP, help='target checked per seed: AP not lower by more'
    )
    p.add_argument('--timing-steps', type=int, default=10, help='timed training / inference steps per arm')
    p.add_argument('--timing-warmup', type=int, default=3)
    p.add_argument('--skip-training', action='store_true', help='only measure step times')
    p.add_argument('--train-only', action='store_true', help='train + test the arms and seeds, no report')
    p.add_argument(
        '--no-timing', action='store_true', help='skip the step timing (e.g. in runs that share the machine)'
    )
    p.add_argument('--work-dir', default='work_dirs/caldetr_bench')
    p.add_argument(
        '--summary-dir',
        default=None,
        help='folder of the per-run prediction summaries (default: docs/benchmarks/results/cal_detr/'
        'mechanism_<regime>/, see regime_folder)',
    )
    add_determinism_args(p)
    pilot = p.add_argument_group(
        'pilot',
        'look for an over-confident regime: one arm, few train images, long training, a calibration '
        'curve over checkpoints on the clean val set of --test-root (first seed of --seeds)',
    )
    pilot.add_argument('--pilot', action='store_true', help='run the pilot instead of the benchmark')
    pilot.add_argument('--pilot-arm', choices=DEFAULT_ARMS, default='baseline')
    pilot.add_argument('--pilot-iters', type=int, default=2500, help='training iterations of the pilot')
    pilot.add_argument('--pilot-interval', type=int, default=500, help='iterations between checkpoints')
    pilot.add_argument('--pilot-train-images', type=int, default=100, help='first N training images')
    pilot.add_argument('--pilot-img-size', type=int, default=128, help='train and test image size (px)')
    p.add_argument(
        '--bootstrap-samples', type=int, default=200, help='image-bootstrap resamples (signed-gap intervals)'
    )
    p.add_argument('--bootstrap-level', type=float, default=0.95, help='coverage of the intervals')
    args = p.parse_args(argv)
    checked = ('bootstrap_samples', 'train_images', 'img_size', 'decoder_layers')
    checked += ('pilot_iters', 'pilot_interval', 'pilot_train_images', 'pilot_img_size') if args.pilot else ()
    for name in checked:
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f'--{name.replace("_", "-")} must be at least 1')
    if not 0 < args.bootstrap_level < 1:
        p.error('--bootstrap-level must lie in (0, 1)')
    if args.lr_drop_at <= 0:
        p.error('--lr-drop-at must be > 0 (>= 1: no drop)')
    if 'baseline' not in args.arms and not args.train_only:
        p.error('--arms must include baseline (every comparison is against it)')
    args.data_root = args.data_root.rstrip('/') + '/'
    if args.test_root:
        args.test_root = args.test_root.rstrip('/') + '/'
    return args


def eval_root(args) -> str:
    """The composited set whose val / val_corrupted splits the runs are evaluated on."""
    return args.test_root or args.data_root


def eval_tag(args) -> str:
    """Suffix of a run's test outputs on a ``--test-root`` set ('' on the training set's own val)."""
    return f'_on-{osp.basename(args.test_root.rstrip("/"))}' if args.test_root else ''


def arm_name(args, arm: str) -> str:
    return ARM_LABELS[arm].format(FAMILIES[args.family][0])


def base_arm(arm: str) -> str:
    """The arm whose config ``arm`` uses: a variant's base arm (:data:`VARIANT_BASES`, else the paper arm), or
    ``arm`` itself."""
    return VARIANT_BASES.get(arm, 'paper') if arm in VARIANTS else arm


def source_arm(arm: str) -> str:
    """The arm whose training run ``arm`` uses: a test-only arm's source (:data:`TEST_ONLY`), else itself."""
    return TEST_ONLY.get(arm, arm)


def config_path(args, arm: str, corrupted: bool = False) -> str:
    prefix = FAMILIES[args.family][1][base_arm(arm)]
    name = f'{prefix}_{CONFIG_STEM}' + ('-corrupted' if corrupted else '')
    return osp.join(ROOT, 'configs', 'cal_detr', name + '.py')


def derived_config(args, arm: str, seed: int, corrupted: bool = False, record: bool = False) -> str:
    """Write a config inheriting the arm's config with the bench's data, schedule, batch and seed.

    ``record``: a test config whose Cal head (every arm but the baseline) is the bench's recording subclass
    (:data:`RECORDING_HEADS`): the same predictions, each with the ``tanh(u)`` of its query and class.
    """
    root, troot, nw = args.data_root, eval_root(args), args.num_workers
    indices = f', indices={args.val_images}' if args.val_images else ''
    loader = f'num_workers={nw}, persistent_workers={nw > 0}'
    train_extra = f', indices={args.train_images}' if args.train_images else ''
    if args.img_size:
        train_pipeline, test_pipeline = sized_pipelines(args.img_size)
        train_extra += f', pipeline={train_pipeline!r}'
        indices += f', pipeline={test_pipeline!r}'
    lines = [
        f'_base_ = [{config_path(args, arm, corrupted)!r}]',
        f'data_root = {root!r}',
        f'train_dataloader = dict(batch_size={args.batch_size}, {loader}, dataset=dict(data_root={root!r}'
        f'{train_extra}))',
        f'test_dataloader = dict(batch_size=4, {loader}, dataset=dict(data_root={troot!r}{indices}))',
        f"train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters={args.iters},"
        f' val_interval={args.iters + 1})',
        f"param_scheduler = [dict(type='MultiStepLR', by_epoch=False, begin=0, end={args.iters},"
        f' milestones=[{int(args.iters * args.lr_drop_at)}], gamma=0.1)]',
        "default_hooks = dict(logger=dict(type='LoggerHook', interval=50),"
        f" checkpoint=dict(type='CheckpointHook', by_epoch=False, interval={args.iters}, max_keep_ckpts=1))",
        f'randomness = {randomness(args, seed)!r}',
    ]
    # a variant: its base arm with other head settings
    model = dict(bbox_head=dict(VARIANTS[arm])) if arm in VARIANTS else {}
    if record and arm != 'baseline':
        model.setdefault('bbox_head', {})['type'] = RECORDING_HEADS[args.family]
        imports = ['mmssod', RECORD_MODULE]
        lines.append(f'custom_imports = dict(imports={imports!r}, allow_failed_imports=False)')
    if args.decoder_layers:  # the head's prediction layers follow the decoder's depth (mmdet sets them)
        model['decoder'] = dict(num_layers=args.decoder_layers)
    if model:
        lines.append(f'model = {model!r}')
    ann = ann_file(args, 'corrupted' if corrupted else 'clean')
    prefix = 'dece_corrupted' if corrupted else 'dece'
    lines.append(
        f"test_evaluator = [dict(type='CocoMetric', ann_file={ann!r}, metric='bbox'), dict(type='DECEMetric',"
        f' ann_file={ann!r}, prefix={prefix!r}, score_thr={args.score_thr}, iou_thr={args.iou_thr},'
        f' num_bins={args.num_bins}, save_diagram=False)]'
    )
    # no validation during training (the loop would run it after the last iteration): test.py evaluates
    lines += ['val_cfg = None', 'val_dataloader = None', 'val_evaluator = None']
    if args.lr is not None:
        lines.append(f'optim_wrapper = dict(optimizer=dict(lr={args.lr}))')
    os.makedirs(args.work_dir, exist_ok=True)
    path = osp.abspath(
        osp.join(
            args.work_dir,
            f'{args.family}_{arm}_seed{seed}{eval_tag(args)}{"_test" if record else ""}'
            f'{"_corrupted" if corrupted else ""}.py',
        )
    )
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path


def sized_pipelines(size: int) -> tuple:
    """Train and test pipelines of the composited set at ``size`` x ``size`` px (aspect kept)."""
    scale = (size, size)
    train = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=scale, keep_ratio=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackDetInputs'),
    ]
    test = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=scale, keep_ratio=True),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(
            type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')
        ),
    ]
    return train, test


def run_tool(cmd: list, log_path: str, env: dict | None = None) -> str:
    """Run a tool in its own process (``env``: its environment, default this one's); return its output."""
    env = {**(os.environ if env is None else env), 'PYTHONPATH': ROOT}
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


def run_settings(args, arm: str, seed: int) -> dict:
    """What decides a trained arm's result: a finished run with equal settings is reused, not retrained."""
    keys = ('family', 'iters', 'batch_size', 'lr', 'val_images', 'data_root', 'score_thr', 'iou_thr')
    settings = dict({k: getattr(args, k) for k in keys}, **run_identity(args), arm=arm, seed=seed)
    # the regime options enter only when they differ from the defaults (earlier saved runs stay reusable)
    regime = (
        ('lr_drop_at', LR_DROP_AT),
        ('train_images', None),
        ('img_size', None),
        ('decoder_layers', None),
    )
    for key, default in regime:
        if getattr(args, key) != default:
            settings[key] = getattr(args, key)
    return settings


def train_and_test(args, arm: str, seed: int) -> dict:
    """Train one arm with one seed, then dump its predictions on the clean and the corrupted val set.

    The result is saved beside the run (``<run>_result.json``); a later call with the same settings reuses it,
    so the arms and seeds can be trained by several processes and reported together by one. With
    ``--test-root`` the finished run's checkpoint is only tested, on that set
    (``<run>_on-<set>_result.json``); a ``TEST_ONLY`` arm only tests its source arm's finished run
    (:func:`source_arm`).
    """
    work_dir = run_dir(args, arm, seed)
    tag, settings = eval_tag(args), run_settings(args, arm, seed)
    if args.test_root:  # runs tested on the training set's own val keep the settings they were saved with
        settings = dict(settings, test_root=args.test_root)
    done = work_dir + tag + '_result.json'
    res = saved_run(done, settings)
    if res is not None and all(osp.isfile(res[d]['predictions']) for d in DOMAINS):
        print(f'reusing {arm} seed {seed}: {done}', flush=True)
        return res
    trained = source_arm(arm)
    ckpt = osp.join(run_dir(args, trained, seed), f'iter_{args.iters}.pth')
    if args.test_root or arm in TEST_ONLY:
        res = trained_run(args, trained, seed, ckpt)
    else:
        t0 = time.time()
        cmd = ['tools/train.py', derived_config(args, arm, seed), '--work-dir', work_dir]
        run_tool(cmd, work_dir + '_train.log', env=run_env(args))
        res = dict(train_wall_s=time.time() - t0, reproducibility=run_record(args))
    for domain in DOMAINS:
        corrupted = domain == 'corrupted'
        sub, pkl = f'{work_dir}{tag}_test_{domain}', f'{work_dir}{tag}_{domain}.pkl'
        cmd = [
            'tools/test.py',
            derived_config(args, arm, seed, corrupted, record=True),
            ckpt,
            '--work-dir',
            sub,
            '--out',
            pkl,
        ]
        out = run_tool(cmd, sub + '.log', env=run_env(args))
        res[domain] = dict(
            ap=100 * parse_metric(out, 'coco/bbox_mAP'),
            ap50=100 * parse_metric(out, 'coco/bbox_mAP_50'),
            predictions=pkl,
        )
    res['checkpoint'] = ckpt
    res['settings'] = settings
    with open(done, 'w') as f:
        json.dump(res, f, indent=1)
    return res


def run_dir(args, arm: str, seed: int) -> str:
    return osp.abspath(osp.join(args.work_dir, f'{args.family}_{arm}_seed{seed}'))


def trained_run(args, arm: str, seed: int, ckpt: str) -> dict:
    """The finished training run that ``--test-root`` or a ``TEST_ONLY`` arm evaluates: its checkpoint must
    exist and its saved settings must equal this call's training settings; otherwise a clear error."""
    done = run_dir(args, arm, seed) + '_result.json'
    res = saved_run(done, run_settings(args, arm, seed))
    if res is None or not osp.isfile(ckpt):
        raise FileNotFoundError(
            f'only finished runs are tested here (--test-root, --arms {" ".join(TEST_ONLY)}), but {arm} seed '
            f'{seed} has no run with these settings ({done}, {ckpt}); train it first: --arms {arm} without '
            '--test-root (runs saved before --deterministic existed are read with --no-deterministic)'
        )
    return dict(train_wall_s=res['train_wall_s'])


def ann_file(args, domain: str) -> str:
    split = 'val_corrupted' if domain == 'corrupted' else 'val'
    return osp.join(eval_root(args), 'annotations', f'instances_{split}.json')


def dece_metric(args, domain: str, classes):
    """A ``DECEMetric`` of the bench's settings (``--score-thr``, ``--iou-thr``, ``--num-bins``) on the
    ground truth of ``domain`` (clean / corrupted), without a diagram."""
    from mmssod.evaluation.metrics import DECEMetric

    metric = DECEMetric(
        ann_file=ann_file(args, domain),
        score_thr=args.score_thr,
        iou_thr=args.iou_thr,
        num_bins=args.num_bins,
        save_diagram=False,
    )
    metric.dataset_meta = dict(classes=classes)
    return metric


def calibration_set_by_fold(args, predictions: str, domain: str, classes) -> dict:
    """Matched detections (raw score >= thr) of dumped predictions, with their folds (image id % 2)."""
    import numpy as np
    from mmengine.fileio import load

    results = load(predictions)
    parts = []
    for fold in (0, 1):
        metric = dece_metric(args, domain, classes)
        metric.process({}, [r for r in results if int(r['img_id']) % 2 == fold])
        cal = metric.calibration_set(metric.results) if metric.results else None
        if cal is not None:
            parts.append(dict(cal, folds=np.full(cal['confidences'].size, fold)))
        names = metric.class_names()
    empty = dict(
        confidences=np.zeros(0),
        is_tp=np.zeros(0, bool),
        labels=np.zeros(0, np.int64),
        folds=np.zeros(0, np.int64),
    )
    out = {k: np.concatenate([empty[k]] + [p[k] for p in parts]) for k in empty}
    out['class_names'] = names
    return out


def calibration_stats(args, conf, is_tp, labels, class_names) -> dict:
    """D-ECE (x100), signed gap and direction, detections and precision, per-class D-ECE, reliability bins."""
    import numpy as np

    from mmssod.evaluation.functional import (
        bootstrap_detection_ece,
        calibrated_detection_ece,
        calibration_bins,
        classwise_detection_ece,
        detection_ece,
        miscalibration_direction,
        signed_calibration_gap,
    )

    gap = 100 * signed_calibration_gap(conf, is_tp, args.num_bins)
    # the resolution of one D-ECE: its bootstrap sd, and what a perfectly calibrated detector would score
    boot_sd = (
        100 * float(bootstrap_detection_ece(conf, is_tp, args.num_bins).std()) if conf.size else math.nan
    )
    floor = 100 * float(calibrated_detection_ece(conf, args.num_bins).mean()) if conf.size else math.nan
    per_class = 100 * classwise_detection_ece(conf, is_tp, labels, len(class_names), args.num_bins)
    bins = calibration_bins(conf, is_tp, args.num_bins)
    return dict(
        dece=100 * detection_ece(conf, is_tp, args.num_bins),
        dece_bootstrap_sd=boot_sd,
        dece_calibrated=floor,
        signed_gap=gap,
        direction=miscalibration_direction(gap),
        num_dets=int(conf.size),
        precision=float(is_tp.mean()) if conf.size else float('nan'),
        mean_confidence=float(conf.mean()) if conf.size else float('nan'),
        per_class={n: float(v) for n, v in zip(class_names, per_class)},
        per_class_dets={n: int((labels == i).sum()) for i, n in enumerate(class_names)},
        bins={k: np.asarray(v).tolist() for k, v in bins.items()},
    )


def evaluate_seed(args, trained: dict, classes) -> dict:
    """Calibration of every trained arm, plus temperature scaling of the baseline, for one seed."""
    from mmssod.evaluation.functional import apply_temperature, cross_fit_temperature, fit_temperature

    out, sets = {}, {}
    for arm, res in trained.items():
        out[arm] = {}
        for domain in DOMAINS:
            cal = sets[(arm, domain)] = calibration_set_by_fold(
                args, res[domain]['predictions'], domain, classes
            )
            stats = calibration_stats(
                args, cal['confidences'], cal['is_tp'], cal['labels'], cal['class_names']
            )
            out[arm][domain] = dict(
                ap=res[domain]['ap'],
                ap50=res[domain]['ap50'],
                signed_gap_interval=signed_gap_interval(args, res[domain]['predictions'], classes, domain),
                **stats,
            )
    if not args.no_ts:
        out['ts'] = {}
        clean, corrupted = sets[('baseline', 'clean')], sets[('baseline', 'corrupted')]
        if clean['confidences'].size and len(set(clean['folds'].tolist())) == 2:
            scaled, temps = cross_fit_temperature(clean['confidences'], clean['is_tp'], clean['folds'])
            t_all = fit_temperature(clean['confidences'], clean['is_tp'])
            scaled_ood = apply_temperature(corrupted['confidences'], t_all)
        else:  # nothing to fit a temperature on
            scaled, temps, t_all, scaled_ood = (
                clean['confidences'],
                {},
                float('nan'),
                corrupted['confidences'],
            )
        for domain, cal, conf, t in (
            ('clean', clean, scaled, {str(k): v for k, v in temps.items()}),
            ('corrupted', corrupted, scaled_ood, t_all),
        ):
            stats = calibration_stats(args, conf, cal['is_tp'], cal['labels'], cal['class_names'])
            base = out['baseline'][domain]
            out['ts'][domain] = dict(ap=base['ap'], ap50=base['ap50'], temperature=t, **stats)
    return out


def signed_gap_interval(args, predictions: str, classes, domain: str) -> list:
    """Image-bootstrap interval (x100, ``--bootstrap-level``) of the signed gap of dumped predictions: whether
    an arm is over- (interval above 0) or under-confident (below 0) beyond the sampling of test images."""
    from mmssod.evaluation.functional import signed_calibration_gap

    per_image = per_image_calibration_sets(args, predictions, classes, domain)
    lo, hi = image_bootstrap(
        per_image,
        lambda c, t: signed_calibration_gap(c, t, args.num_bins),
        num_samples=args.bootstrap_samples,
        level=args.bootstrap_level,
    )
    return [100 * lo, 100 * hi]


def time_steps(args, device: str) -> dict:
    """Median train-step and inference time of each Cal arm vs the baseline, interleaved on equal batches."""
    import torch
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.runner import Runner

    from mmssod.utils import register_all_modules

    register_all_modules()
    from mmdet.registry import MODELS

    arms = list(args.arms)
    models, optims = {}, {}
    for arm in arms:
        cfg = Config.fromfile(derived_config(args, arm, args.seeds[0]))
        torch.manual_seed(args.seeds[0])
        model = MODELS.build(cfg.model).to(device)
        model.init_weights()
        models[arm], optims[arm] = model, build_optim_wrapper(model, cfg.optim_wrapper)
    state = {k: v.clone() for k, v in models['baseline'].state_dict().items()}
    for arm in arms:
        models[arm].load_state_dict(state)  # the Cal heads add no parameters: identical starting weights
    loader_cfg = dict(cfg.train_dataloader, num_workers=0, persistent_workers=False)
    loader = Runner.build_dataloader(loader_cfg, seed=args.seeds[0])
    n = args.timing_warmup + args.timing_steps
    batches = []
    for batch in loader:
        batches.append(batch)
        if len(batches) == n:
            break

    def sync():
        if device.startswith('cuda'):
            torch.cuda.synchronize()

    times = {(kind, arm): [] for kind in ('train', 'infer') for arm in arms}
    for i, batch in enumerate(
        batches
    ):  # interleave (rotating order): the machine's load hits every arm alike
        for arm in arms[i % len(arms) :] + arms[: i % len(arms)]:
            models[arm].train()
            sync()
            t = time.perf_counter()
            models[arm].train_step(batch, optims[arm])
            sync()
            if i >= args.timing_warmup:
                times[('train', arm)].append(time.perf_counter() - t)
    for arm in arms:
        models[arm].load_state_dict(models['baseline'].state_dict())
    identical = True
    for i, batch in enumerate(batches):
        outs = {}
        for arm in arms[i % len(arms) :] + arms[: i % len(arms)]:
            models[arm].eval()
            sync()
            t = time.perf_counter()
            with torch.no_grad():
                outs[arm] = models[arm].test_step(batch)
            sync()
            if i >= args.timing_warmup:
                times[('infer', arm)].append(time.perf_counter() - t)
        for arm in arms[1:]:
            for a, b in zip(outs['baseline'], outs[arm]):
                identical &= torch.equal(a.pred_instances.scores, b.pred_instances.scores)
                identical &= torch.equal(a.pred_instances.bboxes, b.pred_instances.bboxes)
    med = {k: statistics.median(v) for k, v in times.items()}
    res = dict(steps=args.timing_steps, inference_identical=bool(identical))
    for arm in arms:
        res[arm] = dict(
            train_step_s=med[('train', arm)],
            infer_s=med[('infer', arm)],
            train_step_ratio=med[('train', arm)] / med[('train', 'baseline')],
            infer_ratio=med[('infer', arm)] / med[('infer', 'baseline')],
        )
    return res


def summarize(
    per_seed: dict, target_dece_ratio: float = TARGET_DECE_RATIO, max_ap_drop: float = MAX_AP_DROP
) -> dict:
    """Mean +- sd over seeds of every arm's numbers, and the target checked seed by seed."""
    from tools.benchmarks.stats import mean_sd

    seeds = list(per_seed)
    arms = list(per_seed[seeds[0]])
    summary = {}
    for arm in arms:
        summary[arm] = {}
        for domain in DOMAINS:
            summary[arm][domain] = {
                key: mean_sd([per_seed[s][arm][domain][key] for s in seeds])
                for key in ('ap', 'ap50', 'dece', 'signed_gap', 'num_dets', 'precision')
            }
    goal = {}
    for arm in [a for a in arms if a != 'baseline']:
        checks = {}
        for s in seeds:
            base, cal = per_seed[s]['baseline'], per_seed[s][arm]
            ratios = {
                d: cal[d]['dece'] / base[d]['dece'] if base[d]['dece'] else float('nan') for d in DOMAINS
            }
            ap_delta = cal['clean']['ap'] - base['clean']['ap']
            met = all(r <= target_dece_ratio for r in ratios.values()) and ap_delta >= -max_ap_drop
            if any(math.isnan(r) for r in ratios.values()):
                met = None  # D-ECE undefined (no detection above the threshold): no verdict
            checks[str(s)] = dict(dece_ratio=ratios, ap_delta=ap_delta, met=met)
        verdicts = [c['met'] for c in checks.values()]
        goal[arm] = dict(per_seed=checks, met_on_every_seed=None if None in verdicts else all(verdicts))
    summary['goal'] = goal
    return summary


def fmt(x, digits: int = 2) -> str:
    return 'nan' if x is None or (isinstance(x, float) and math.isnan(x)) else f'{x:.{digits}f}'


def regime_text(args) -> str:
    """The training regime options that differ from the configs' (for the report's first line)."""
    parts = [f'first {args.train_images} train images'] if args.train_images else []
    parts += [f'{args.img_size} px'] if args.img_size else []
    parts += [f'{args.decoder_layers} decoder layers'] if args.decoder_layers else []
    drop = f'lr x0.1 at {int(args.iters * args.lr_drop_at)}' if args.lr_drop_at < 1 else 'constant lr'
    return ', '.join(parts + [drop]) + '; '


def seed_table(per_seed: dict, family: str) -> str:
    """Markdown: per seed, arm and domain, AP, AP_50, detections above the score threshold, their precision,
    D-ECE (bootstrap sd), the D-ECE a calibrated detector would show, and the signed gap with its interval."""
    cells = []
    for seed, arms in per_seed.items():
        for arm, domains in arms.items():
            for domain, r in domains.items():
                interval = r.get('signed_gap_interval')
                cells.append(
                    (
                        seed,
                        ARM_LABELS[arm].format(FAMILIES[family][0]),
                        domain,
                        number(r['ap'], '.1f'),
                        number(r['ap50'], '.1f'),
                        r['num_dets'],
                        number(r['precision'], '.3f'),
                        f'{number(r["dece"])} ({number(r.get("dece_bootstrap_sd"))})',
                        number(r.get('dece_calibrated')),
                        f'{r["direction"]} ({number(r["signed_gap"])})',
                        fmt_interval(interval) if interval else '-',
                    )
                )
    header = (
        'seed', 'arm', 'domain', 'AP', 'AP_50', '#dets >= thr', 'precision', 'D-ECE (bootstrap sd)',
        'D-ECE if calibrated', 'direction (signed gap)', 'signed gap, image-bootstrap interval',
    )  # fmt: skip
    return markdown_table(header, cells)


def mean_table(per_seed: dict, family: str) -> str:
    """Markdown: per arm and domain, mean +- sd over seeds of AP, AP_50, detections, D-ECE and signed gap."""
    seeds, cells = list(per_seed), []
    for arm in per_seed[seeds[0]]:
        for domain in DOMAINS:
            runs = [per_seed[s][arm][domain] for s in seeds]
            cells.append(
                (ARM_LABELS[arm].format(FAMILIES[family][0]), domain)
                + tuple(mean_sd_text((r[k] for r in runs), spec) for k, spec in MEAN_COLUMNS.values())
            )
    return markdown_table(('arm', 'domain', *MEAN_COLUMNS), cells)


def paired_table(per_seed: dict, family: str) -> str:
    """Markdown: per arm and domain, the paired difference to the baseline of D-ECE, signed gap and AP per
    seed (mean +- sd), and what the 2-sd rule makes of each."""
    seeds, cells = list(per_seed), []
    for arm in [a for a in per_seed[seeds[0]] if a != 'baseline']:
        for domain in DOMAINS:
            diffs = [
                paired_differences(*([per_seed[s][a][domain][k] for s in seeds] for a in ('baseline', arm)))
                for k in PAIRED_KEYS.values()
            ]
            rules = ' / '.join('effect' if is_effect(g) else 'not resolved' for g in diffs)
            cells.append(
                (ARM_LABELS[arm].format(FAMILIES[family][0]), domain)
                + tuple(seeds_mean_sd_text(g, '+.2f') for g in diffs)
                + (rules,)
            )
    header = (
        'arm',
        'domain',
        *(f'{k} - baseline' for k in PAIRED_KEYS),
        f'2-sd rule: {" / ".join(PAIRED_KEYS)}',
    )
    return markdown_table(header, cells)


def pilot_table(points: list) -> str:
    """Markdown of the pilot's checkpoints (:func:`pilot_summary` points): AP, detections, their precision and
    mean confidence, signed gap and D-ECE with their image-bootstrap intervals, and the gate."""
    cells = [
        (
            f'{p["iteration"]:,}',
            f'{p["epochs"]:g}',
            number(p['ap'], '.1f'),
            number(p['ap50'], '.1f'),
            p['num_dets'],
            number(p['precision'], '.3f'),
            number(p['mean_confidence'], '.3f'),
            f'{number(p["signed_gap"], "+.2f")} {fmt_interval(p["signed_gap_interval"])}',
            f'{number(p["dece"])} {fmt_interval(p["dece_interval"])}',
            '**passed**' if p['gate'] else 'no',
        )
        for p in points
    ]
    header = (
        'iteration', 'epochs', 'AP', 'AP_50', '#dets >= thr', 'precision', 'mean confidence',
        'signed gap [95% interval]', 'D-ECE [95% interval]', 'gate',
    )  # fmt: skip
    return markdown_table(header, cells)


#: the mean table's columns: header -> (saved key, number format)
MEAN_COLUMNS = {
    'AP': ('ap', '.1f'),
    'AP_50': ('ap50', '.1f'),
    '#dets': ('num_dets', '.0f'),
    'D-ECE': ('dece', '.2f'),
    'signed gap': ('signed_gap', '.2f'),
}
#: the paired table's differences: header -> saved key
PAIRED_KEYS = {'D-ECE': 'dece', 'signed gap': 'signed_gap', 'AP': 'ap'}
#: the saved bench reports the docs' tables are rendered from
REGIME_REPORT = 'cal_detr/regime_100img_128px_1500it/caldetr_bench_on-composited_det_demo_test600.json'
DDETR6_REPORT = 'cal_detr/ddetr_6layers_900it/caldetr_bench.json'
PILOT_CURVE = 'cal_detr/pilot_dino_baseline_seed0.json'


def saved_report(root: str, name: str):
    """``(per_seed, family)`` of the saved bench report ``name`` under ``root``."""
    with open(osp.join(root, name)) as f:
        saved = json.load(f)
    return saved['per_seed'], saved['settings']['family']


def saved_pilot(root: str) -> list:
    """The points of the saved pilot curve (baseline DINO, seed 0)."""
    with open(osp.join(root, PILOT_CURVE)) as f:
        return json.load(f)['points']


def summary_row(root: str) -> tuple:
    """README's row: in-domain D-ECE of Cal-DINO (paper, release) against the baseline, 3 seeds."""
    per_seed, family = saved_report(root, REGIME_REPORT)
    seeds = list(per_seed)
    cells = []
    arms = (('paper', 'paper'), ('released', 'release'))
    for arm, name in arms:
        g = paired_differences(*([per_seed[s][a]['clean']['dece'] for s in seeds] for a in ('baseline', arm)))
        cells.append(f'{name} {mean_sd_text(g, "+.2f")} ({"effect" if is_effect(g) else "not resolved"})')
    base = mean_sd_text(per_seed[s]['baseline']['clean']['dece'] for s in seeds)
    goal = summarize(per_seed)['goal']
    met = ', '.join(f'{n} {"met" if goal[a]["met_on_every_seed"] else "not met"}' for a, n in arms)
    return (
        'Cal-DETR',
        'calibration (D-ECE) of Cal-DINO against DINO trained into over-confidence (100 composited images, '
        '128 px, 1,500 iterations), tested on 600 images and a corrupted copy, 3 seeds',
        f'Cal-DINO - DINO, in-domain D-ECE (lower is better; DINO {base}): '
        + ', '.join(cells)
        + f'; D-ECE <= 0.8x DINO on every seed: {met}',
        '[cal_detr.md](docs/benchmarks/cal_detr.md)',
    )


TABLES = {
    'cal_detr/regime-seeds': lambda root: seed_table(*saved_report(root, REGIME_REPORT)),
    'cal_detr/regime-mean': lambda root: mean_table(*saved_report(root, REGIME_REPORT)),
    'cal_detr/regime-paired': lambda root: paired_table(*saved_report(root, REGIME_REPORT)),
    'cal_detr/ddetr-6layers': lambda root: seed_table(*saved_report(root, DDETR6_REPORT)),
    'cal_detr/pilot': lambda root: pilot_table(saved_pilot(root)),
    'cal_detr/mechanism-predictions': lambda root: mechanism_predictions_table(root),
    'cal_detr/mechanism-runs': lambda root: mechanism_runs_table(root),
}


def report(args, results: dict) -> str:
    lines = [
        f'Cal-DETR benchmark, {FAMILIES[args.family][0]} ({results["settings"]["device"]}; '
        f'{args.iters} iterations, batch {args.batch_size}, {regime_text(args)}'
        f'seeds {args.seeds}; D-ECE x100 at raw score >= {args.score_thr}, IoU >= {args.iou_thr}, '
        f'{args.num_bins} bins; data composited from real images; trained on {args.data_root}, '
        f'tested on {eval_root(args)})',
        '',
    ]
    per_seed = results.get('per_seed', {})
    if per_seed:
        summary = results['summary']
        lines += [seed_table(per_seed, args.family), '', f'Mean +- sd over {len(per_seed)} seed(s):', '']
        lines += [mean_table(per_seed, args.family), '', 'Paired differences to the baseline:', '']
        lines += [paired_table(per_seed, args.family)]
        lines += [
            '',
            f'target: D-ECE <= {args.target_dece_ratio}x the baseline in and out of domain, '
            f'AP not lower by more than {args.max_ap_drop}:',
        ]
        for arm, g in summary['goal'].items():
            per = '; '.join(
                f'seed {s}: D-ECE ratio clean {fmt(c["dece_ratio"]["clean"], 3)} / corrupted '
                f'{fmt(c["dece_ratio"]["corrupted"], 3)}, AP delta {fmt(c["ap_delta"], 1)}'
                for s, c in g['per_seed'].items()
            )
            verdict = {True: 'met on every seed', False: 'NOT met on every seed', None: 'undefined'}
            lines.append(f'- {arm_name(args, arm)}: {verdict[g["met_on_every_seed"]]} ({per})')
        s0 = next(iter(per_seed))
        names = list(per_seed[s0]['baseline']['clean']['per_class'])
        lines += [
            '',
            f'Per-class D-ECE, seed {s0} (clean / corrupted; nan = no detection of that class):',
            '',
        ]
        runs = per_seed[s0].values()
        cells = [
            (n, *(f'{fmt(r["clean"]["per_class"][n])} / {fmt(r["corrupted"]["per_class"][n])}' for r in runs))
            for n in names
        ]
        lines += [markdown_table(('class', *(arm_name(args, a) for a in per_seed[s0])), cells)]
        if results.get('diagrams'):
            lines += ['', 'Reliability diagrams: ' + ', '.join(results['diagrams'])]
    t = results.get('timing')
    if t:
        lines += ['', f'Step times (median of {t["steps"]} interleaved steps, seed {args.seeds[0]} weights):']
        for arm in args.arms:
            r = t[arm]
            lines.append(
                f'- {arm_name(args, arm)}: train step {fmt(r["train_step_s"], 4)} s '
                f'(ratio {fmt(r["train_step_ratio"], 3)}), '
                f'inference {fmt(r["infer_s"], 4)} s (ratio {fmt(r["infer_ratio"], 3)})'
            )
        lines.append(f'- inference outputs identical for identical weights: {t["inference_identical"]}')
    return '\n'.join(lines)


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch
    from mmengine.config import Config

    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if osp.normpath(args.data_root) == osp.normpath(DEMO_ROOT):
        from tools.benchmarks.composited import ensure_demo_detection

        ensure_demo_detection(args.data_root.rstrip('/'), seed=0)
    classes = list(
        Config.fromfile(config_path(args, 'baseline')).train_dataloader.dataset.metainfo['classes']
    )
    if args.pilot:
        if not osp.isfile(ann_file(args, 'clean')):
            raise FileNotFoundError(
                f'{eval_root(args)} has no val set ({ann_file(args, "clean")}); build it with '
                'python tools/dataset_converters/composited_det.py --out DIR (see the module docstring)'
            )
        return run_pilot(args, classes)
    if not osp.isfile(ann_file(args, 'corrupted')):
        raise FileNotFoundError(
            f'{eval_root(args)} has no corrupted val set ({ann_file(args, "corrupted")}); build the set with '
            'python tools/dataset_converters/composited_det.py --out DIR --seed 0'
        )
    if args.train_only:  # saved beside each run, for a later report that reuses them
        done = {}
        for s in args.seeds:
            for a in args.arms:
                done[f'{s}/{a}'] = res = train_and_test(args, a, s)
                print(f'summary: {write_prediction_summary(args, a, s, res, classes)}', flush=True)
        return done
    results = dict(
        settings=dict(vars(args), device=device, torch=torch.__version__),
        reproducibility=run_record(args),
        provenance='composited from real images',
    )
    if not args.no_timing:
        results['timing'] = time_steps(args, device)
    if not args.skip_training:
        results['per_seed'] = {}
        for seed in args.seeds:
            trained = {}
            for arm in args.arms:
                trained[arm] = train_and_test(args, arm, seed)
                write_prediction_summary(args, arm, seed, trained[arm], classes)
                results.setdefault('trained', {})[f'{seed}/{arm}'] = trained[arm]
                with open(osp.join(args.work_dir, f'caldetr_bench{eval_tag(args)}.partial.json'), 'w') as f:
                    json.dump(results, f, indent=1, default=float)  # what is done so far, if the run is cut
            results.setdefault('train_wall_s', {})[str(seed)] = {
                a: r['train_wall_s'] for a, r in trained.items()
            }
            results['per_seed'][str(seed)] = evaluate_seed(args, trained, classes)
        results['summary'] = summarize(results['per_seed'], args.target_dece_ratio, args.max_ap_drop)
        results['diagrams'] = save_diagrams(args, results['per_seed'][str(args.seeds[0])], args.seeds[0])
    with open(osp.join(args.work_dir, f'caldetr_bench{eval_tag(args)}.json'), 'w') as f:
        json.dump(results, f, indent=1, default=float)
    text = report(args, results)
    with open(osp.join(args.work_dir, f'caldetr_bench{eval_tag(args)}.md'), 'w') as f:
        f.write(text + '\n')
    print('\n' + text)
    return results


def save_diagrams(args, seed_result: dict, seed: int) -> list:
    """One reliability diagram PNG per domain with every arm of one seed."""
    import numpy as np

    from mmssod.evaluation.functional.reliability_diagram import save_reliability_comparison

    paths = []
    for domain in DOMAINS:
        named = {
            arm_name(args, a): {k: np.asarray(v, dtype=float) for k, v in r[domain]['bins'].items()}
            for a, r in seed_result.items()
        }
        deces = {arm_name(args, a): r[domain]['dece'] for a, r in seed_result.items()}
        path = osp.join(args.work_dir, f'reliability_{args.family}_seed{seed}{eval_tag(args)}_{domain}.png')
        title = f'{domain} val, seed {seed}, score >= {args.score_thr} (composited from real images)'
        paths.append(save_reliability_comparison(named, path, title=title, deces=deces))
    return paths


# ---------------------------------------------------------------------------------------------------------
# The release's test-time logits: per-run prediction summaries, the logit offset at matched precision, and the
# mechanism's predictions checked against the saved summaries.
#
# The release trains the modulated logit z' = z - tanh(u) <= z and tests the raw z = z' + tanh(u). If that is
# what moves its calibration, its raw scores sit higher than the baseline's at matched precision by about the
# mean tanh(u) of its detections, and testing the same checkpoint on z' removes the shift.

#: the fields of one domain in a prediction summary, one entry per kept detection (raw score >= --score-thr)
#: except ``image_ids``, every test image in the order tested
SUMMARY_FIELDS = ('score', 'matched', 'label', 'image_id', 'tanh_u', 'image_ids')


def regime_folder(args) -> str:
    """The results subfolder of a training regime's prediction summaries: the family, iterations, and every
    regime option that differs from the configs' (train images, image size, learning-rate schedule, decoder
    layers, learning rate, val subset), e.g. ``mechanism_dino_1500it_100img_128px_constant-lr``."""
    parts = [f'mechanism_{args.family}_{args.iters}it']
    parts += [f'{args.train_images}img'] if args.train_images else []
    parts += [f'{args.img_size}px'] if args.img_size else []
    if args.lr_drop_at >= 1:
        parts.append('constant-lr')
    elif args.lr_drop_at != LR_DROP_AT:
        parts.append(f'lr-drop-at-{args.lr_drop_at:g}')
    parts += [f'{args.decoder_layers}dec'] if args.decoder_layers else []
    parts += [f'lr{args.lr:g}'] if args.lr is not None else []
    parts += [f'{args.val_images}val'] if args.val_images else []
    return '_'.join(parts)


def summary_dir(args) -> str:
    """``--summary-dir``, else ``docs/benchmarks/results/cal_detr/<regime_folder>``."""
    default = osp.join(ROOT, 'docs', 'benchmarks', 'results', 'cal_detr', regime_folder(args))
    return args.summary_dir or default


def summary_name(family: str, arm: str, seed: int, tag: str = '') -> str:
    """File name of one run's prediction summary (``tag``: :func:`eval_tag`)."""
    return f'{family}_{arm}_seed{seed}{tag}_summary.npz'


def checkpoint_path(args, arm: str, seed: int) -> str:
    """The checkpoint ``arm`` is tested with: its source arm's last one (:func:`source_arm`)."""
    return osp.join(run_dir(args, source_arm(arm), seed), f'iter_{args.iters}.pth')


def prediction_summary(args, predictions: str, classes, domain: str) -> dict:
    """The kept detections of dumped predictions, one entry each, with what their numbers derive from.

    Kept: raw score >= ``--score-thr``; matched: IoU >= ``--iou-thr`` to a same-class ground-truth box
    (``DECEMetric``'s matching, greedy by score). ``tanh_u`` is what the test head recorded
    (``pred_instances.tanh_u``, :mod:`tools.benchmarks.caldetr_record`), NaN where it recorded none (the
    baseline).

    Returns:
        dict: ``score`` (K,) float64, ``matched`` (K,) bool, ``label`` (K,) int64, ``image_id`` (K,) int64,
        ``tanh_u`` (K,) float32; ``image_ids`` (N,) int64, every tested image in order (the bootstrap unit).
    """
    import numpy as np
    from mmengine.fileio import load

    metric = dece_metric(args, domain, classes)
    raw = load(predictions)
    metric.process({}, raw)
    out = {k: [] for k in SUMMARY_FIELDS}
    for r, sample in zip(metric.results, raw):
        cal = metric.calibration_set([r])
        kept = r['scores'] >= args.score_thr
        if not np.array_equal(cal['raw_confidences'], r['scores'][kept]):
            raise ValueError(
                f'image {r["img_id"]} of {predictions}: detections matched to ignored ground truth were left '
                'out of the calibration set, so the summary cannot align tanh(u) with them'
            )
        tanh_u = sample['pred_instances'].get('tanh_u')
        tanh_u = (
            np.full(r['scores'].shape, np.nan)
            if tanh_u is None
            else np.asarray(tanh_u.cpu() if hasattr(tanh_u, 'cpu') else tanh_u, dtype=float).reshape(-1)
        )
        out['score'].append(cal['raw_confidences'])
        out['matched'].append(cal['is_tp'])
        out['label'].append(cal['labels'])
        out['image_id'].append(np.full(int(kept.sum()), int(r['img_id'])))
        out['tanh_u'].append(tanh_u[kept])
        out['image_ids'].append(np.array([int(r['img_id'])]))
    dtypes = dict(score=np.float64, matched=bool, label=np.int64, image_id=np.int64, tanh_u=np.float32)
    dtypes['image_ids'] = np.int64
    return {k: np.concatenate([np.zeros(0, dtypes[k])] + v).astype(dtypes[k]) for k, v in out.items()}


def save_prediction_summary(path: str, meta: dict, domains: dict) -> str:
    """Write a prediction summary: ``meta`` (JSON-able) and per domain the :data:`SUMMARY_FIELDS` arrays, as a
    compressed npz (no pickled objects; read back with :func:`load_prediction_summary`)."""
    import numpy as np

    arrays = {}
    for domain, fields in domains.items():
        missing = set(SUMMARY_FIELDS) - set(fields)
        if missing:
            raise ValueError(f'prediction summary of {domain}: fields {sorted(missing)} missing ({path})')
        arrays.update({f'{domain}__{k}': np.asarray(fields[k]) for k in SUMMARY_FIELDS})
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'wb') as f:
        np.savez_compressed(f, meta=np.array(json.dumps(meta)), **arrays)
    return path


def load_prediction_summary(path: str) -> dict:
    """``meta`` (dict) and, per domain, the arrays of a summary written by :func:`save_prediction_summary`."""
    import numpy as np

    with np.load(path, allow_pickle=False) as z:
        out = dict(meta=json.loads(str(z['meta'])))
        for key in z.files:
            if key != 'meta':
                domain, field = key.split('__', 1)
                out.setdefault(domain, {})[field] = z[key]
    return out


def write_prediction_summary(args, arm: str, seed: int, res: dict, classes) -> str:
    """Save one run's prediction summary (clean and corrupted) under :func:`summary_dir`, with its AP, the
    checkpoint and the settings; a summary of the same settings is kept, one of other settings is an error."""
    path = osp.join(summary_dir(args), summary_name(args.family, arm, seed, eval_tag(args)))
    settings = json.loads(json.dumps(res['settings']))
    if osp.isfile(path):
        if load_prediction_summary(path)['meta']['settings'] == settings:
            return path
        raise FileExistsError(
            f'{path} holds the summary of a run with other settings; pass --summary-dir DIR for this run '
            '(saved runs are never overwritten)'
        )
    meta = dict(
        family=args.family,
        arm=arm,
        seed=seed,
        checkpoint=checkpoint_path(args, arm, seed),
        test_set=eval_root(args),
        ap={d: res[d]['ap'] for d in DOMAINS},
        ap50={d: res[d]['ap50'] for d in DOMAINS},
        score_thr=args.score_thr,
        iou_thr=args.iou_thr,
        num_bins=args.num_bins,
        bootstrap_samples=args.bootstrap_samples,
        bootstrap_level=args.bootstrap_level,
        settings=settings,
        provenance='composited from real images',
    )
    domains = {d: prediction_summary(args, res[d]['predictions'], classes, d) for d in DOMAINS}
    return save_prediction_summary(path, meta, domains)


def logit_bias(confidences, is_tp) -> float:
    """The logit shift of a detector's confidences over its precision: the maximum-likelihood ``beta`` of
    ``P(matched | s) = sigmoid(logit(s) - beta)`` over its kept detections.

    At precision p the detector's logit is ``logit(p) + beta`` (beta > 0: over-confident by beta in logit
    space). A model of the match given the score, so keeping only scores above a threshold does not bias it.

    Args:
        confidences (ndarray): Scores in (0, 1), shape (K,).
        is_tp (ndarray): Matched flags, shape (K,).

    Returns:
        float: ``beta``; NaN with no detection, or when all or none are matched (no finite maximum).
    """
    import numpy as np

    conf = np.clip(np.asarray(confidences, dtype=np.float64).reshape(-1), 1e-12, 1 - 1e-12)
    tp = np.asarray(is_tp, dtype=bool).reshape(-1)
    if conf.shape != tp.shape:
        raise ValueError(f'confidences {conf.shape} and is_tp {tp.shape} differ in shape')
    hits = int(tp.sum())
    if hits in (0, tp.size):
        return float('nan')
    logits = np.log(conf) - np.log1p(-conf)
    lo, hi = -60.0, 60.0  # sum(sigmoid(logits - beta)) - hits falls from K - hits > 0 to -hits < 0
    for _ in range(200):  # bisection of the score equation: monotone, one root
        mid = 0.5 * (lo + hi)
        if (1.0 / (1.0 + np.exp(mid - logits))).sum() > hits:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def logit_offset(base_conf, base_tp, arm_conf, arm_tp) -> float:
    """Logit offset of an arm over the baseline at matched precision: ``logit_bias(arm) - logit_bias(base)``.

    The scalar b that, added to the baseline's logits, gives its confidence-vs-precision relation the arm's
    (both fitted as ``P(matched | s) = sigmoid(logit(s) - beta)``, :func:`logit_bias`): at any precision the
    arm's logit is the baseline's + b. If the arm's logits are the baseline's + b with the same matches, this
    returns b exactly.

    Args:
        base_conf (ndarray): (K_b,) the baseline's kept scores; base_tp (ndarray): (K_b,) their matched flags.
        arm_conf (ndarray): (K_a,) the arm's kept scores; arm_tp (ndarray): (K_a,) their matched flags.

    Returns:
        float: b (NaN when either fit is undefined).
    """
    return logit_bias(arm_conf, arm_tp) - logit_bias(base_conf, base_tp)


def summary_stats(domain: dict, meta: dict) -> dict:
    """The calibration numbers of one domain of a prediction summary: detections, precision, D-ECE and signed
    gap (x100), the signed gap's image-bootstrap interval (the summary's settings), mean tanh(u) of the kept
    detections (NaN if not recorded), and the fitted :func:`logit_bias`."""
    import numpy as np

    from mmssod.evaluation.functional import detection_ece, signed_calibration_gap

    conf, tp, nb = domain['score'], domain['matched'].astype(bool), int(meta['num_bins'])
    per_image = [
        dict(confidences=conf[domain['image_id'] == i], is_tp=tp[domain['image_id'] == i])
        for i in domain['image_ids']
    ]
    lo, hi = image_bootstrap(
        per_image,
        lambda c, t: signed_calibration_gap(c, t, nb),
        num_samples=int(meta['bootstrap_samples']),
        level=float(meta['bootstrap_level']),
    )
    tanh_u = domain['tanh_u'].astype(float)
    return dict(
        num_dets=int(conf.size),
        precision=float(tp.mean()) if conf.size else float('nan'),
        dece=100 * detection_ece(conf, tp, nb),
        signed_gap=100 * signed_calibration_gap(conf, tp, nb),
        signed_gap_interval=[100 * lo, 100 * hi],
        mean_tanh_u=float(tanh_u.mean()) if tanh_u.size and not np.isnan(tanh_u).any() else float('nan'),
        logit_bias=logit_bias(conf, tp),
    )


#: the regimes of the mechanism's test: results folder, test-set tag of the evaluated summaries, arms, and
#: the direction the release should move D-ECE in if the mechanism holds (+1: up, -1: down)
MECHANISM_REGIMES = {
    'over-confident': dict(
        folder='cal_detr/mechanism_dino_1500it_100img_128px_constant-lr',
        tag='_on-composited_det_demo_test600',
        family='dino',
        arms=('baseline', 'paper', 'released', 'released-modulated-test', 'paper-modulated-test', 'mixing'),
        dece_direction=+1,
    ),
    'under-confident': dict(
        folder='cal_detr/mechanism_dino_900it',
        tag='',
        family='dino',
        arms=('baseline', 'released', 'released-modulated-test'),
        dece_direction=-1,
    ),
}
MECHANISM_SEEDS = (0, 1, 2)
#: a release offset "of the size of" mean tanh(u): their ratio (means over seeds) within this range
OFFSET_SIZE_RANGE = (0.5, 2.0)


def mechanism_runs(root: str, regime: str, seeds=MECHANISM_SEEDS) -> dict:
    """The saved summaries of a regime, read into ``{arm: {seed: {domain: stats}}}`` (:func:`summary_stats`
    plus ``ap`` and ``offset``, the :func:`logit_offset` over the baseline of the same seed); runs without a
    summary are absent."""
    spec = MECHANISM_REGIMES[regime]
    runs = {}
    for arm in spec['arms']:
        for seed in seeds:
            path = osp.join(root, spec['folder'], summary_name(spec['family'], arm, seed, spec['tag']))
            if not osp.isfile(path):
                continue
            stats = _summary_file_stats(path, osp.getmtime(path))
            runs.setdefault(arm, {})[seed] = {d: dict(r) for d, r in stats.items()}
    for by_seed in runs.values():
        for seed, domains in by_seed.items():
            base = runs.get('baseline', {}).get(seed)
            for d, r in domains.items():
                r['offset'] = r['logit_bias'] - base[d]['logit_bias'] if base else float('nan')
    return runs


@functools.lru_cache(maxsize=256)
def _summary_file_stats(path: str, mtime: float) -> dict:
    """Per domain, :func:`summary_stats` and the AP of the summary at ``path`` (cached by path and mtime: the
    docs' two tables read the same files)."""
    summary = load_prediction_summary(path)
    meta = summary['meta']
    return {d: dict(summary_stats(summary[d], meta), ap=meta['ap'][d]) for d in DOMAINS}


def _per_seed(runs: dict, arm: str, key: str, domain: str, seeds) -> list | None:
    """``key`` of ``arm`` per seed, or None when a seed has no run."""
    by_seed = runs.get(arm, {})
    if any(s not in by_seed for s in seeds):
        return None
    return [by_seed[s][domain][key] for s in seeds]


def evaluate_mechanism(regime: str, runs: dict, seeds=MECHANISM_SEEDS) -> list:
    """The mechanism's predictions for one regime checked on its runs (:func:`mechanism_runs`), per domain.

    1. offset: the release's logit offset over the baseline is > 0, resolved (2-sd rule over seeds);
    2. size: that offset is of the size of the release's mean tanh(u) on its kept detections (ratio of the
       means over seeds within :data:`OFFSET_SIZE_RANGE`);
    3. removal: the release tested on its modulated logits has an offset within the seed spread of 0 (its mean
       not beyond 2 sd over seeds);
    4. D-ECE: release - baseline D-ECE moves in the regime's direction (down where the baseline is
       under-confident, up where over-confident), resolved.

    Returns:
        list: per prediction and domain, a dict with ``key`` ('offset', 'size', 'removal', 'dece' as numbered
        above), ``prediction`` (its text), ``domain``, ``evidence`` (text) and
        ``verdict``: 'met', 'not met', or 'not run' (a seed's run of an arm it needs is missing).
    """
    from tools.benchmarks.stats import mean_sd

    direction = MECHANISM_REGIMES[regime]['dece_direction']
    lo, hi = OFFSET_SIZE_RANGE
    word = 'lower' if direction < 0 else 'higher'
    rows = []
    for domain in DOMAINS:
        offsets = _per_seed(runs, 'released', 'offset', domain, seeds)
        tanh_u = _per_seed(runs, 'released', 'mean_tanh_u', domain, seeds)
        removed = _per_seed(runs, 'released-modulated-test', 'offset', domain, seeds)
        dece = [_per_seed(runs, a, 'dece', domain, seeds) for a in ('baseline', 'released')]
        diffs = None if None in dece else paired_differences(*dece)
        checks = [
            (
                'offset',
                'release offset over the baseline > 0 (2-sd rule)',
                offsets and seeds_mean_sd_text(offsets, '+.3f'),
                offsets and mean_sd(offsets)[0] > 0 and is_effect(offsets),
            )
        ]
        size = None
        if offsets is not None and tanh_u is not None:
            ratio = mean_sd(offsets)[0] / mean_sd(tanh_u)[0]
            size = (
                f'offset {mean_sd_text(offsets, "+.3f")}, mean tanh(u) {mean_sd_text(tanh_u, ".3f")}, ratio '
                f'{number(ratio, ".2f")}',
                lo <= ratio <= hi,
            )
        name = f'release offset of the size of its mean tanh(u) (ratio {lo:g} to {hi:g})'
        checks.append(('size', name, *(size or (None, None))))
        checks.append(
            (
                'removal',
                'release tested on modulated logits: offset within the seed spread of 0 (not beyond 2 sd)',
                removed and seeds_mean_sd_text(removed, '+.3f'),
                removed and not is_effect(removed),
            )
        )
        checks.append(
            (
                'dece',
                f'release D-ECE {word} than the baseline (2-sd rule)',
                diffs and seeds_mean_sd_text(diffs, '+.2f'),
                diffs and mean_sd(diffs)[0] * direction > 0 and is_effect(diffs),
            )
        )
        for key, prediction, evidence, ok in checks:
            verdict = 'not run' if evidence is None else ('met' if ok else 'not met')
            rows.append(
                dict(key=key, prediction=prediction, domain=domain, evidence=evidence or '-', verdict=verdict)
            )
    return rows


def mechanism_predictions_table(root: str) -> str:
    """Markdown: each prediction of the mechanism per regime and domain, its numbers and verdict."""
    cells = []
    for regime in MECHANISM_REGIMES:
        for r in evaluate_mechanism(regime, mechanism_runs(root, regime)):
            cells.append((regime, r['prediction'], r['domain'], r['evidence'], r['verdict']))
    header = ('regime', 'prediction', 'domain', 'seeds 0 / 1 / 2 (mean +- sd)', 'verdict')
    return markdown_table(header, cells)


def mechanism_runs_table(root: str) -> str:
    """Markdown: per regime, arm and domain, from the saved summaries: AP, D-ECE, signed gap with its
    image-bootstrap interval, logit offset over the baseline and mean tanh(u), per seed (mean +- sd)."""
    cells = []
    for regime, spec in MECHANISM_REGIMES.items():
        runs = mechanism_runs(root, regime)
        for arm in spec['arms']:
            seeds = sorted(runs.get(arm, {}))
            name = ARM_LABELS[arm].format(FAMILIES[spec['family']][0])
            for domain in DOMAINS:
                if not seeds:
                    cells.append((regime, name, domain, '-', *(['not run'] * 5)))
                    continue
                rs = [runs[arm][s][domain] for s in seeds]
                offsets = '-' if arm == 'baseline' else seeds_mean_sd_text([r['offset'] for r in rs], '+.3f')
                cells.append(
                    (
                        regime,
                        name,
                        domain,
                        ' / '.join(map(str, seeds)),
                        seeds_mean_sd_text([r['ap'] for r in rs], '.1f'),
                        seeds_mean_sd_text([r['dece'] for r in rs]),
                        ' / '.join(
                            f'{number(r["signed_gap"], "+.2f")} {fmt_interval(r["signed_gap_interval"])}'
                            for r in rs
                        ),
                        offsets,
                        seeds_mean_sd_text([r['mean_tanh_u'] for r in rs], '.3f'),
                    )
                )
    header = (
        'regime', 'arm', 'domain', 'seeds', 'AP', 'D-ECE', 'signed gap [95% interval]',
        'logit offset over the baseline', 'mean tanh(u)',
    )  # fmt: skip
    return markdown_table(header, cells)


# ---------------------------------------------------------------------------------------------------------
# --pilot: does the baseline become over-confident in a small-data, long-training regime?

#: what a pilot run's result depends on (a saved checkpoint result with other settings is recomputed)
PILOT_KEYS = (
    'family',
    'pilot_arm',
    'pilot_iters',
    'pilot_interval',
    'pilot_train_images',
    'pilot_img_size',
    'batch_size',
    'lr',
    'val_images',
    'data_root',
    'test_root',
    'score_thr',
    'iou_thr',
    'num_bins',
    'bootstrap_samples',
    'bootstrap_level',
)


def pilot_dir(args, seed: int) -> str:
    return osp.abspath(osp.join(args.work_dir, f'pilot_{args.family}_{args.pilot_arm}_seed{seed}'))


def pilot_checkpoints(args) -> list:
    """Iterations at which the pilot saves and evaluates a checkpoint: every ``--pilot-interval`` up to
    ``--pilot-iters`` (the last iteration always)."""
    its = list(range(args.pilot_interval, args.pilot_iters + 1, args.pilot_interval))
    return its if its and its[-1] == args.pilot_iters else its + [args.pilot_iters]


def pilot_config(args, seed: int) -> str:
    """The pilot's config: the arm's config trained on the first ``--pilot-train-images`` training images at
    ``--pilot-img-size`` px for ``--pilot-iters`` iterations (a checkpoint every ``--pilot-interval``, all
    kept), tested on the clean val set of ``--test-root`` (or ``--data-root``) at the same size."""
    root, troot, nw = args.data_root, eval_root(args), args.num_workers
    train_pipeline, test_pipeline = sized_pipelines(args.pilot_img_size)
    val_idx = f', indices={args.val_images}' if args.val_images else ''
    loader = f'num_workers={nw}, persistent_workers={nw > 0}'
    ann = ann_file(args, 'clean')
    lines = [
        f'_base_ = [{config_path(args, args.pilot_arm)!r}]',
        f'data_root = {root!r}',
        f'train_dataloader = dict(batch_size={args.batch_size}, {loader}, dataset=dict(data_root={root!r},'
        f' indices={args.pilot_train_images}, pipeline={train_pipeline!r}))',
        f'test_dataloader = dict(batch_size=4, {loader}, dataset=dict(data_root={troot!r}{val_idx},'
        f' pipeline={test_pipeline!r}))',
        f"train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters={args.pilot_iters},"
        f' val_interval={args.pilot_iters + 1})',
        f"param_scheduler = [dict(type='MultiStepLR', by_epoch=False, begin=0, end={args.pilot_iters},"
        f' milestones=[{int(args.pilot_iters * LR_DROP_AT)}], gamma=0.1)]',
        "default_hooks = dict(logger=dict(type='LoggerHook', interval=50), checkpoint=dict("
        f"type='CheckpointHook', by_epoch=False, interval={args.pilot_interval}, max_keep_ckpts=-1))",
        f'randomness = {randomness(args, seed)!r}',
        f"test_evaluator = [dict(type='CocoMetric', ann_file={ann!r}, metric='bbox'), dict(type='DECEMetric',"
        f" ann_file={ann!r}, prefix='dece', score_thr={args.score_thr}, iou_thr={args.iou_thr},"
        f' num_bins={args.num_bins}, save_diagram=False)]',
        'val_cfg = None',
        'val_dataloader = None',
        'val_evaluator = None',
    ]
    if args.lr is not None:
        lines.append(f'optim_wrapper = dict(optimizer=dict(lr={args.lr}))')
    os.makedirs(args.work_dir, exist_ok=True)
    path = pilot_dir(args, seed) + '.py'
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path


def start_tool(cmd: list, log_path: str, env: dict | None = None) -> subprocess.Popen:
    """Start a tool in its own process (output to ``log_path``, ``env`` as in :func:`run_tool`); the caller
    polls it."""
    env = {**(os.environ if env is None else env), 'PYTHONPATH': ROOT}
    log = open(log_path, 'w')
    return subprocess.Popen([sys.executable, *cmd], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def per_image_calibration_sets(args, predictions: str, classes, domain: str = 'clean') -> list:
    """One matched calibration set (raw score >= thr) per predicted image, for an image-level bootstrap.

    Returns:
        list: per image, a dict with ``confidences`` and ``is_tp``, each of shape (K_i,).
    """
    from mmengine.fileio import load

    metric = dece_metric(args, domain, classes)
    metric.process({}, load(predictions))
    out = []
    for r in metric.results:
        cal = metric.calibration_set([r])
        out.append(dict(confidences=cal['confidences'], is_tp=cal['is_tp']))
    return out


def image_bootstrap(
    per_image: list, statistic, num_samples: int = 200, level: float = 0.95, seed: int = 0
) -> tuple:
    """Percentile bootstrap interval of a statistic of the pooled detections, resampling whole images.

    Detections of one image are not independent (they compete for the same ground truth), so the images are
    the sampling unit: each resample draws len(per_image) images with replacement and pools their detections.

    Args:
        per_image (list): Per image, ``confidences`` (K_i,) and ``is_tp`` (K_i,).
        statistic (callable): ``statistic(confidences (K,), is_tp (K,)) -> float`` on the pooled detections.
        num_samples (int): Number of resamples. Defaults to 200.
        level (float): Coverage of the interval, in (0, 1). Defaults to 0.95.
        seed (int): Seed of the resampling. Defaults to 0.

    Returns:
        tuple: (low, high) quantiles at (1 - level) / 2 and (1 + level) / 2 of the resampled statistic, NaN
        when no resample has a detection.
    """
    import numpy as np

    if not 0 < level < 1:
        raise ValueError(f'bootstrap level must lie in (0, 1), got {level}')
    n = len(per_image)
    values = []
    for idx in np.random.default_rng(seed).integers(0, n, size=(num_samples, n)) if n else []:
        conf = np.concatenate([per_image[i]['confidences'] for i in idx])
        tp = np.concatenate([per_image[i]['is_tp'] for i in idx])
        if conf.size:
            values.append(statistic(conf, tp))
    if not values:
        return float('nan'), float('nan')
    lo, hi = np.quantile(np.asarray(values, dtype=float), [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def pilot_gate(signed_gap: float, interval: tuple) -> bool:
    """The pilot's gate: the detections are over-confident (signed gap > 0) and the bootstrap interval of
    the signed gap excludes 0 (its lower end > 0). NaN (no detection) fails."""
    lo, hi = interval
    return bool(signed_gap > 0 and lo > 0 and hi >= lo)


def pilot_checkpoint_stats(args, predictions: str, classes) -> dict:
    """Signed gap and D-ECE (x100) of one checkpoint's predictions, each with its image-bootstrap interval."""
    import numpy as np

    from mmssod.evaluation.functional import detection_ece, signed_calibration_gap

    per_image = per_image_calibration_sets(args, predictions, classes)
    conf = np.concatenate([p['confidences'] for p in per_image] or [np.zeros(0)])
    tp = np.concatenate([p['is_tp'] for p in per_image] or [np.zeros(0, bool)])
    nb = args.num_bins
    out = dict(num_images=len(per_image), num_dets=int(conf.size))
    out['precision'] = float(tp.mean()) if conf.size else float('nan')
    out['mean_confidence'] = float(conf.mean()) if conf.size else float('nan')
    for key, fn in (('signed_gap', signed_calibration_gap), ('dece', detection_ece)):
        out[key] = 100 * fn(conf, tp, nb)
        lo, hi = image_bootstrap(
            per_image,
            lambda c, t, fn=fn: fn(c, t, nb),
            num_samples=args.bootstrap_samples,
            level=args.bootstrap_level,
        )
        out[f'{key}_interval'] = [100 * lo, 100 * hi]
    out['gate'] = pilot_gate(out['signed_gap'], out['signed_gap_interval'])
    return out


def pilot_checkpoint_done(run: str, it: int, finished: bool) -> bool:
    """Whether ``iter_{it}.pth`` of a running training is completely written: MMEngine's ``last_checkpoint``
    names it or a later one (it is written after the checkpoint), or the training has ended."""
    ckpt = osp.join(run, f'iter_{it}.pth')
    if not osp.isfile(ckpt):
        return False
    if finished:
        return True
    last = osp.join(run, 'last_checkpoint')
    if not osp.isfile(last):
        return False
    found = re.findall(r'iter_(\d+)\.pth', open(last).read())
    return bool(found) and int(found[-1]) >= it


def pilot_evaluate(args, seed: int, it: int, classes) -> dict:
    """Test checkpoint ``it`` on the clean val set, save its calibration JSON (reused with equal settings)."""
    run = pilot_dir(args, seed)
    done = osp.join(run, f'pilot_iter{it}.json')
    settings = dict({k: getattr(args, k) for k in PILOT_KEYS}, seed=seed, iteration=it)
    res = saved_run(done, settings)
    if res is not None:
        return res
    pkl = osp.join(run, f'iter{it}_clean.pkl')
    cmd = ['tools/test.py', pilot_config(args, seed), osp.join(run, f'iter_{it}.pth'), '--work-dir']
    cmd += [osp.join(run, f'test_iter{it}'), '--out', pkl]
    out = run_tool(cmd, osp.join(run, f'test_iter{it}.log'), env=run_env(args))
    res = dict(
        iteration=it,
        epochs=it * args.batch_size / args.pilot_train_images,
        ap=100 * parse_metric(out, 'coco/bbox_mAP'),
        ap50=100 * parse_metric(out, 'coco/bbox_mAP_50'),
        **pilot_checkpoint_stats(args, pkl, classes),
        predictions=pkl,
        settings=settings,
        provenance='composited from real images',
    )
    with open(done, 'w') as f:
        json.dump(res, f, indent=1)
    return res


def save_pilot_curve(args, points: list, seed: int) -> str:
    """PNG: signed gap and D-ECE (x100) with their bootstrap intervals against the training iteration."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    its = [p['iteration'] for p in points]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for key, label, color in (('signed_gap', 'signed gap', 'tab:red'), ('dece', 'D-ECE', 'tab:blue')):
        vals = [p[key] for p in points]
        lo = [p[key] - p[f'{key}_interval'][0] for p in points]
        hi = [p[f'{key}_interval'][1] - p[key] for p in points]
        ax.errorbar(its, vals, yerr=[lo, hi], marker='o', capsize=3, color=color, label=label)
    ax.axhline(0, color='gray', lw=0.8, ls='--')
    ax.set_xlabel(f'iteration (batch {args.batch_size}, {args.pilot_train_images} train images)')
    ax.set_ylabel('x100 (> 0 signed gap: over-confident)')
    pct = int(round(100 * args.bootstrap_level))
    ax.set_title(
        f'{arm_name(args, args.pilot_arm)}, {args.pilot_img_size} px, seed {seed}, {pct}% image-bootstrap '
        'intervals\n(composited from real images, CPU scale)',
        fontsize=9,
    )
    ax.legend()
    fig.tight_layout()
    path = osp.join(args.work_dir, f'pilot_curve_{args.family}_{args.pilot_arm}_seed{seed}.png')
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def run_pilot(args, classes, poll_s: float = 20.0) -> dict:
    """Train one arm (``--pilot-arm``) in the pilot regime and evaluate each checkpoint as soon as it is
    written (the test runs beside the training); write one JSON per checkpoint, a summary JSON and the curve.

    A finished training (its last checkpoint present) is not repeated; evaluated checkpoints with equal
    settings are reused.
    """
    seed = args.seeds[0]
    run = pilot_dir(args, seed)
    os.makedirs(run, exist_ok=True)
    its = pilot_checkpoints(args)
    proc = None
    if not osp.isfile(osp.join(run, f'iter_{args.pilot_iters}.pth')):
        cmd = ['tools/train.py', pilot_config(args, seed), '--work-dir', run]
        proc = start_tool(cmd, run + '_train.log', env=run_env(args))
    points, pending = [], list(its)
    summary_path = osp.join(args.work_dir, f'pilot_{args.family}_{args.pilot_arm}_seed{seed}.json')
    while pending:
        finished = proc is None or proc.poll() is not None
        if proc is not None and finished and proc.returncode != 0:
            raise RuntimeError(f'pilot training failed (exit {proc.returncode}), log: {run}_train.log')
        ready = [it for it in pending if pilot_checkpoint_done(run, it, finished)]
        if not ready:
            if finished:
                raise FileNotFoundError(f'pilot training ended without checkpoints {pending} in {run}')
            time.sleep(poll_s)
            continue
        for it in ready:
            points.append(pilot_evaluate(args, seed, it, classes))
            pending.remove(it)
            p = points[-1]
            print(
                f'pilot iter {it}: signed gap {fmt(p["signed_gap"])} '
                f'{fmt_interval(p["signed_gap_interval"])}, '
                f'D-ECE {fmt(p["dece"])} {fmt_interval(p["dece_interval"])}, AP {fmt(p["ap"], 1)}, '
                f'gate {"passed" if p["gate"] else "not passed"}',
                flush=True,
            )
            summary = pilot_summary(args, points, seed)
            summary['curve'] = save_pilot_curve(args, points, seed)
            with open(summary_path, 'w') as f:
                json.dump(summary, f, indent=1)
    if proc is not None:
        proc.wait()
    return summary


def fmt_interval(pair) -> str:
    return f'[{fmt(pair[0])}, {fmt(pair[1])}]'


def pilot_summary(args, points: list, seed: int) -> dict:
    """The curve's points (without per-checkpoint settings) and the first iteration that passes the gate."""
    passed = [p['iteration'] for p in points if p['gate']]
    keep = ('iteration', 'epochs', 'ap', 'ap50', 'num_dets', 'precision', 'mean_confidence', 'gate')
    keep += ('signed_gap', 'signed_gap_interval', 'dece', 'dece_interval')
    return dict(
        settings=dict({k: getattr(args, k) for k in PILOT_KEYS}, seed=seed),
        provenance='composited from real images',
        points=[{k: p[k] for k in keep} for p in points],
        gate='signed gap > 0 and its bootstrap interval excludes 0',
        first_passing_iteration=min(passed) if passed else None,
    )


if __name__ == '__main__':
    main()
