"""tools/train.py, tools/test.py, --resume, dist_train.sh (2 gloo processes), mim train mmdet, on the demo.

Everything is real: an mmdet Faster R-CNN (ResNet-18 FPN) trained a few iterations on the embedded demo set
(composited from real images) through the project's tools, in subprocesses as a user would run them.
"""

import os
import os.path as osp
import re
import shutil
import socket
import subprocess
import sys

import pytest

from mmssod.utils.safe_load import load_checkpoint_file, load_data_pickle

from ..conftest import REPO_ROOT, run_python

CONFIG = 'configs/demo/faster-rcnn_efficientnet-lite0_fpn_composited-demo.py'


def short_run_options(data_root, iters, val_images=4):
    """--cfg-options that shrink the demo run to a few iterations and a handful of val images."""
    root = data_root.rstrip('/') + '/'
    return [
        '--cfg-options',
        f'train_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
        f'val_evaluator.ann_file={root}annotations/instances_val.json',
        f'test_evaluator.ann_file={root}annotations/instances_val.json',
        f'val_dataloader.dataset.indices={val_images}',
        f'test_dataloader.dataset.indices={val_images}',
        'train_dataloader.batch_size=2',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.persistent_workers=False',
        'test_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'test_dataloader.num_workers=0',
        f'train_cfg.max_iters={iters}',
        f'train_cfg.val_interval={iters}',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.checkpoint.max_keep_ckpts=5',
        'default_hooks.logger.interval=1',
        'randomness.seed=0',
    ]


def check(res):
    assert (
        res.returncode == 0
    ), f'exit {res.returncode}\n--- stdout\n{res.stdout[-3000:]}\n--- stderr\n{res.stderr[-6000:]}'
    return res.stdout + res.stderr


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def trained(demo_det_root, tmp_path_factory):
    """Train 4 iterations with tools/train.py (checkpoints at 2 and 4)."""
    work_dir = str(tmp_path_factory.mktemp('train'))
    out = check(
        run_python(['tools/train.py', CONFIG, '--work-dir', work_dir, *short_run_options(demo_det_root, 4)])
    )
    return work_dir, out


def test_train_writes_checkpoints_and_evaluates(trained):
    work_dir, out = trained
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth')) and osp.isfile(osp.join(work_dir, 'iter_4.pth'))
    assert re.search(r'coco/bbox_mAP: [0-9.]+', out), out[-2000:]
    assert 'loss_rpn_cls' in out and 'loss_bbox' in out


def test_resume_continues_from_the_last_checkpoint(trained, demo_det_root):
    work_dir, _ = trained
    ckpt4 = load_checkpoint_file(osp.join(work_dir, 'iter_4.pth'))
    out = check(
        run_python(
            [
                'tools/train.py',
                CONFIG,
                '--work-dir',
                work_dir,
                '--resume',
                *short_run_options(demo_det_root, 6),
            ]
        )
    )
    assert 'resumed epoch: 0, iter: 4' in out
    assert 'Iter(train) [5/6]' in out and 'Iter(train) [1/6]' not in out
    ckpt6 = load_checkpoint_file(osp.join(work_dir, 'iter_6.pth'))
    assert ckpt6['meta']['iter'] == 6
    # the optimizer state carried over (momentum buffers exist from the first run)
    assert ckpt4['optimizer']['state'] and ckpt6['optimizer']['state']


def test_resume_from_a_missing_checkpoint_fails_clearly(demo_det_root, tmp_path):
    res = run_python(
        [
            'tools/train.py',
            CONFIG,
            '--work-dir',
            str(tmp_path),
            '--resume',
            str(tmp_path / 'nope.pth'),
            *short_run_options(demo_det_root, 2),
        ]
    )
    assert res.returncode != 0 and 'nope.pth' in res.stderr and 'does not exist' in res.stderr


def test_test_tool_evaluates_and_dumps_predictions(trained, demo_det_root, tmp_path):
    work_dir, _ = trained
    dump = str(tmp_path / 'preds.pkl')
    out = check(
        run_python(
            [
                'tools/test.py',
                CONFIG,
                osp.join(work_dir, 'iter_4.pth'),
                '--work-dir',
                str(tmp_path),
                '--out',
                dump,
                *short_run_options(demo_det_root, 4),
            ]
        )
    )
    assert re.search(r'coco/bbox_mAP: [0-9.]+', out)
    preds = load_data_pickle(dump)  # the dump holds data only: readable without running code
    assert len(preds) == 4 and 'pred_instances' in preds[0]


def test_missing_data_path_is_a_clear_error(tmp_path):
    res = run_python(
        [
            'tools/train.py',
            CONFIG,
            '--work-dir',
            str(tmp_path),
            *short_run_options(str(tmp_path / 'no_data'), 2),
        ]
    )
    assert res.returncode != 0
    assert 'train_dataloader.dataset.data_root' in res.stderr and 'does not exist' in res.stderr


def test_broken_annotation_file_is_a_clear_error(demo_det_root, tmp_path):
    root = tmp_path / 'data'
    shutil.copytree(demo_det_root, root, ignore=shutil.ignore_patterns('*.png', '*.jpg'))
    ann = root / 'annotations' / 'instances_train.json'
    ann.write_text(ann.read_text()[: len(ann.read_text()) // 2])
    res = run_python(
        ['tools/train.py', CONFIG, '--work-dir', str(tmp_path / 'w'), *short_run_options(str(root), 2)]
    )
    assert res.returncode != 0
    assert 'instances_train.json' in res.stderr and 'not a complete JSON document' in res.stderr


def test_dist_train_two_gloo_processes(demo_det_root, tmp_path):
    """tools/dist_train.sh -> torchrun -> 2 CPU processes; DDP wiring checked by both ranks reporting in."""
    env = {
        'PYTHON': sys.executable,
        'PORT': str(free_port()),
        'OMP_NUM_THREADS': '1',
        'PYTHONPATH': REPO_ROOT,
    }
    res = subprocess.run(
        [
            'bash',
            'tools/dist_train.sh',
            CONFIG,
            '2',
            '--work-dir',
            str(tmp_path),
            *short_run_options(demo_det_root, 2),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = check(res)
    assert 'Distributed training: True' in out
    assert re.search(r'world_size: 2|GPU number: 2', out), out[-3000:]
    assert osp.isfile(osp.join(tmp_path, 'iter_2.pth'))
    ckpt = load_checkpoint_file(osp.join(tmp_path, 'iter_2.pth'))
    assert not any(k.startswith('module.') for k in ckpt['state_dict'])  # saved unwrapped, loadable anywhere


def test_mim_train_mmdet(demo_det_root, tmp_path):
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    res = subprocess.run(
        [mim, 'train', 'mmdet', CONFIG, '--work-dir', str(tmp_path), *short_run_options(demo_det_root, 2)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, 'OMP_NUM_THREADS': '1'},
        timeout=600,
    )
    check(res)
    assert osp.isfile(osp.join(tmp_path, 'iter_2.pth'))
