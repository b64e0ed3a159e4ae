"""Evaluate a checkpoint with an mmssod / mmdet config (same flags as MMDetection's tools/test.py)."""

import argparse
import os
import os.path as osp
import sys

import torch
from mmengine.config import DictAction

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a source checkout
import mmssod  # noqa: E402,F401  (compat fixes + registration)
from mmssod.utils import check_data_paths, load_run_config  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model with mmssod')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save the evaluation metrics')
    parser.add_argument(
        '--out', type=str, help='dump predictions to this pickle file (.pkl) for offline analysis'
    )
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='dir (inside the work dir) to save images with predictions drawn')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. key=value or test_evaluator.classwise=True',
    )
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main():
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint!r} does not exist')
    cfg = load_run_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    cfg.load_from = args.checkpoint
    missing = [key for key in ('test_dataloader', 'test_cfg', 'test_evaluator') if not cfg.get(key)]
    if missing:
        raise SystemExit(
            f'{args.config} defines no {" / ".join(missing)}: it has nothing to test '
            '(a pretraining config?). Test the configs that use its checkpoint (e.g. a fine-tuning '
            f'config), or add {" / ".join(missing)} to the config.'
        )
    check_data_paths(cfg, splits=('test',))

    if args.show or args.show_dir:
        from mmdet.engine.hooks.utils import trigger_visualization_hook

        cfg = trigger_visualization_hook(cfg, args)

    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl or .pickle file, got {args.out!r}')
        from mmdet.evaluation import DumpDetResults

        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
    runner.test()
    if torch.distributed.is_initialized():
        # tear the process group down before interpreter exit: leaving it to the destructors lets a gloo
        # thread be destroyed while joinable, which aborts the process (SIGABRT) after a successful run
        torch.distributed.destroy_process_group()


if __name__ == '__main__':
    main()
