"""End to end: a 2-process gloo run keeps CropBanks equal on every rank and pastes in dataloader workers;
--resume restores the bank exactly; SSMLL trains and writes a scores file ACRST accepts."""

import glob
import json
import os.path as osp
import re
import socket

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from mmssod.datasets.cropbank import read_bank_version
from mmssod.engine.hooks import CropBankHook
from mmssod.models.acrst import load_ml_scores
from mmssod.utils.safe_load import load_checkpoint_file
from tests.conftest import REPO_ROOT, run_python

from .conftest import ACRST_DEMO, SSMLL_DEMO, demo_config


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def short_acrst_cfg(data_root, work_dir, iters=4):
    cfg = demo_config(
        ACRST_DEMO,
        data_root,
        work_dir,
        **{
            'model.semi_train_cfg.ml_scores_file': None,
            'model.semi_train_cfg.burn_in_iters': 1,
            'model.semi_train_cfg.tau_cls': 0.0,  # an untrained teacher: keep its detections for the bank
            'model.semi_train_cfg.rpn_pseudo_thr': 0.1,  # <= the filter's bound (initial score thr 0.1)
            'model.semi_train_cfg.cls_pseudo_thr': 0.1,
            'train_dataloader.batch_size': 2,
            'train_dataloader.num_workers': 1,
            'train_dataloader.sampler.batch_size': 2,
            'train_cfg.max_iters': iters,
            'default_hooks.logger.interval': 1,
            'default_hooks.checkpoint.interval': 2,
        },
    )
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.train_cfg.pop('val_interval', None)
    cfg.custom_hooks[1].update(refresh_interval=2, pseudo_cap=4)
    cfg.custom_hooks.append(dict(type='ACRSTTestBankDigestHook'))
    cfg.custom_imports = dict(
        imports=['mmssod', 'tests.test_acrst.bank_digest_hook'], allow_failed_imports=False
    )
    return cfg


@pytest.fixture(scope='module')
def dist_run(demo_det_root, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('acrst_dist')
    cfg = short_acrst_cfg(demo_det_root, work_dir)
    config = str(work_dir / 'acrst_short.py')
    cfg.dump(config)
    res = run_python(
        [
            '-m',
            'torch.distributed.run',
            '--nproc_per_node=2',
            f'--master_port={free_port()}',
            osp.join(REPO_ROOT, 'tools/train.py'),
            config,
            '--launcher',
            'pytorch',
            '--work-dir',
            str(work_dir),
        ],
        timeout=600,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return work_dir, config, res.stdout + res.stderr


def test_two_process_gloo_run_keeps_banks_equal(dist_run):
    work_dir, _, log = dist_run
    ranks = [json.loads((work_dir / f'bank_rank{r}.json').read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1]
    assert ranks[0]['version'] == 3  # label bank + refreshes at iterations 2 and 4
    assert sum(ranks[0]['sizes']) > 0
    # pastes reached the student through the dataloader workers (they found the bank file)
    pasted = [float(v) for v in re.findall(r'unsup_num_pasted: ([0-9.]+)', log)]
    assert pasted and max(pasted) > 0
    # every rank publishes its own copy for its own workers: no file has to be shared between nodes
    versions = [read_bank_version(str(work_dir / 'cropbank' / f'cropbank.rank{r}.pkl')) for r in (0, 1)]
    assert versions == [3, 3]
    # rank 0's statistics: PR / mu at both refreshes, class histograms of what the student learnt from
    stats = json.loads((work_dir / 'cropbank' / 'stats.json').read_text())
    assert [r['iter'] for r in stats['refreshes']] == [2, 4] and stats['pr_form'] == 'aaai'
    assert sum(stats['pasted_class_counts']) > 0 and len(stats['pseudo_class_counts']) == 10


def assert_same_state(a, b, where='bank'):
    """Exact equality of two bank states: same keys, types, dtypes and values (NaN equal to NaN)."""
    assert type(a) is type(b), (where, type(a), type(b))
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same_state(a[key], b[key], f'{where}.{key}')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, f'{where}[{i}]')
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert a.numpy().tobytes() == b.numpy().tobytes(), where  # bit-exact, NaN included
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert a.tobytes() == b.tobytes(), where  # bit-exact, NaN included
    else:
        assert a == b, (where, a, b)


def weights_only_types(node) -> bool:
    """True when ``node`` holds only tensors, numbers, strings, None, lists and dicts."""
    if isinstance(node, dict):
        return all(isinstance(k, str) and weights_only_types(v) for k, v in node.items())
    if isinstance(node, (list, tuple)):
        return all(weights_only_types(v) for v in node)
    return node is None or isinstance(node, (torch.Tensor, bool, int, float, str))


def runner_from(config, checkpoint, work_dir, resume, max_iters=2):
    """A single-process runner that resumes from (or, resume=False, loads weights of) ``checkpoint``."""
    init_default_scope('mmdet')
    cfg = Config.fromfile(config)
    cfg.work_dir, cfg.launcher = str(work_dir), 'none'
    cfg.resume, cfg.load_from = resume, str(checkpoint)
    cfg.train_cfg.max_iters = max_iters  # 2 after resuming at 2: no iteration, the bank is the checkpoint's
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    return Runner.from_cfg(cfg)


def test_resume_restores_the_bank_exactly(dist_run, tmp_path):
    work_dir, config, _ = dist_run
    checkpoint = load_checkpoint_file(work_dir / 'iter_2.pth', map_location='cpu')
    saved = checkpoint['cropbank']
    assert saved['version'] == 2
    assert weights_only_types(saved)  # loadable with torch.load(weights_only=True)
    runner = runner_from(config, work_dir / 'iter_2.pth', tmp_path, resume=True)
    runner.train()
    (hook,) = [h for h in runner.hooks if isinstance(h, CropBankHook)]
    assert_same_state(hook.bank.state_dict(), saved)
    assert read_bank_version(str(tmp_path / 'cropbank' / 'cropbank.pkl')) == 2
    # the statistics of stats.json continue too: the refresh at iteration 2 and the class histograms
    saved_stats = checkpoint['cropbank_stats']
    assert weights_only_types(saved_stats)
    assert [r['iter'] for r in saved_stats['refreshes']] == [2]
    stats = json.loads((tmp_path / 'cropbank' / 'stats.json').read_text())
    assert stats['refreshes'] == saved_stats['refreshes']
    assert stats['pasted_class_counts'] == saved_stats['pasted_class_counts'].tolist()


def test_load_from_starts_a_new_bank_with_the_config_settings(dist_run, tmp_path):
    """Fine-tuning from a checkpoint (load_from without --resume) neither restores nor imposes its bank."""
    work_dir, config, _ = dist_run
    saved = load_checkpoint_file(work_dir / 'iter_2.pth', map_location='cpu')['cropbank']
    assert len(saved['pseudo_bank']['label']) > 0
    runner = runner_from(config, work_dir / 'iter_2.pth', tmp_path, resume=False, max_iters=0)
    (hook,) = [h for h in runner.hooks if isinstance(h, CropBankHook)]
    hook.bank_kwargs['beta'] = 0.3  # a fine-tuning config with another beta
    runner.train()
    bank = hook.bank
    assert bank.version == 1 and len(bank.pseudo_bank) == 0  # the label bank only, built anew
    assert bank.beta == 0.3 and bank.window_images == 0 and hook.history == []
    logs = ''.join(open(p).read() for p in glob.glob(str(tmp_path / '*' / '*.log')))
    assert 'load_from without --resume: the checkpoint bank is not restored' in logs


def test_ssmll_trains_and_writes_scores_acrst_accepts(demo_det_root, tmp_path):
    work_dir = tmp_path / 'ssmll'
    cfg = demo_config(
        SSMLL_DEMO,
        demo_det_root,
        work_dir,
        **{
            'train_cfg.max_iters': 2,
            'train_dataloader.batch_size': 4,
            'train_dataloader.num_workers': 0,
            'default_hooks.logger.interval': 1,
        },
    )
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.train_cfg.pop('val_interval', None)
    cfg.default_hooks.checkpoint.interval = 2
    config = str(tmp_path / 'ssmll_short.py')
    cfg.dump(config)
    res = run_python([osp.join(REPO_ROOT, 'tools/train.py'), config, '--work-dir', str(work_dir)])
    assert res.returncode == 0, res.stderr[-3000:]
    assert re.search(r'loss_sup: [0-9.]+ +loss_unsup: [0-9.]+', res.stdout + res.stderr)
    out = tmp_path / 'scores.json'
    res = run_python(
        [
            osp.join(REPO_ROOT, 'tools/acrst/ssmll_scores.py'),
            config,
            str(work_dir / 'iter_2.pth'),
            '--out',
            str(out),
            '--num-workers',
            '1',
            '--eval-negatives',
        ]
    )
    assert res.returncode == 0, res.stderr[-3000:]
    scores = json.loads(out.read_text())
    neg = scores['negative_labels']  # against the unlabeled images' composited ground truth
    assert 0 <= neg['precision'] <= 1 and 0 <= neg['recall'] <= 1 and neg['num_absent'] > 0
    assert 'negative labels (score < 0.2): precision' in res.stdout
    with open(osp.join(demo_det_root, 'semi_anns/instances_train.1@25-unlabeled.json')) as f:
        unlabeled = json.load(f)
    assert set(scores['scores']) == {str(im['id']) for im in unlabeled['images']}
    assert all(0 <= v <= 1 for vals in scores['scores'].values() for v in vals)
    assert len(load_ml_scores(str(out), 10, tuple(cfg.classes))['scores']) == len(unlabeled['images'])
    blocked = tmp_path / 'file'
    blocked.write_text('x')
    res = run_python(
        [
            osp.join(REPO_ROOT, 'tools/acrst/ssmll_scores.py'),
            config,
            str(work_dir / 'iter_2.pth'),
            '--out',
            str(blocked / 'scores.json'),
        ]
    )
    assert res.returncode != 0 and '--out' in res.stderr


def test_tools_test_runs_without_the_scores_file(dist_run, tmp_path):
    """tools/test.py on an ACRST checkpoint needs no SSMLL scores file (training-only input)."""
    work_dir, config, _ = dist_run
    res = run_python(
        [
            osp.join(REPO_ROOT, 'tools/test.py'),
            config,
            str(work_dir / 'iter_4.pth'),
            '--work-dir',
            str(tmp_path),
            '--cfg-options',
            f'model.semi_train_cfg.ml_scores_file={tmp_path / "never_written.json"}',
            'test_dataloader.dataset.indices=4',
        ]
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'bbox_mAP' in res.stdout + res.stderr
    assert 'bank is not restored' not in res.stdout + res.stderr  # testing needs no bank
