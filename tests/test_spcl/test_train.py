"""SpCL end to end on the tiny composited re-ID set (composited from real images): tools/train.py (UDA with
domain-specific BN, clustering hook, Market-protocol evaluation), resume, and 2 gloo processes."""

import glob
import os.path as osp
import re
import socket

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mmssod.utils.safe_load import load_checkpoint_file

from ..conftest import REPO_ROOT, run_python
from .conftest import SMOKE_CONFIG

SHORT = ['--cfg-options', 'default_hooks.logger.interval=1']


def check(res):
    assert res.returncode == 0, f'exit {res.returncode}\n{res.stdout[-2000:]}\n{res.stderr[-6000:]}'
    return res.stdout + res.stderr


@pytest.fixture(scope='module')
def trained(spcl_reid_root, tmp_path_factory):
    run_dir, _ = spcl_reid_root
    work = str(tmp_path_factory.mktemp('spcl_train'))
    out = check(
        run_python(
            [
                osp.join(REPO_ROOT, 'tools/train.py'),
                osp.join(REPO_ROOT, SMOKE_CONFIG),
                '--work-dir',
                work,
                *SHORT,
            ],
            cwd=run_dir,
        )
    )
    return run_dir, work, out


def test_train_clusters_logs_and_evaluates(trained):
    _, work, out = trained
    assert 'SpCL memory initialised: 12 source classes + 100 target images' in out
    assert len(re.findall(r'SpCL epoch \d+: \d+ clusters, \d+ un-clustered instances', out)) == 2
    assert re.search(r'spcl_num_clusters: \d+', out)
    m = re.search(r'reid/mAP: ([0-9.]+)\s+reid/top1: ([0-9.]+)', out)
    assert m and 0 < float(m.group(1)) <= 100
    ckpt = load_checkpoint_file(osp.join(work, 'epoch_2.pth'), map_location='cpu')
    state = ckpt['state_dict']
    assert state['head.memory.features'].shape == (112, 128)  # 12 source centroids + 100 target images
    assert int(state['head.memory.num_source']) == 12 and bool(state['head.memory.initialized'])
    assert 'spcl' in ckpt and 'indep_threshold' in ckpt['spcl']
    assert 'head.bn_neck.bn_source.weight' in state and 'backbone.bn1.bn_target.weight' in state  # DSBN


def test_resume_restores_memory_labels_and_threshold(trained):
    run_dir, work, _ = trained
    ckpt_path = osp.join(work, 'epoch_1.pth')
    ckpt = load_checkpoint_file(ckpt_path, map_location='cpu')
    cfg = Config.fromfile(osp.join(REPO_ROOT, SMOKE_CONFIG))
    cfg.work_dir = str(osp.join(work, 'resume'))
    cfg.resume, cfg.load_from = True, ckpt_path
    cfg.train_cfg.max_epochs = 1  # resume at the end of epoch 1: restore, run no further epoch
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].num_workers = 0
    import os

    old = os.getcwd()
    os.chdir(run_dir)
    try:
        runner = Runner.from_cfg(cfg)
        runner.train()
    finally:
        os.chdir(old)
    memory = runner.model.memory
    state = ckpt['state_dict']
    assert torch.equal(memory.features, state['head.memory.features'])
    assert torch.equal(memory.labels, state['head.memory.labels'])
    hook = next(h for h in runner.hooks if type(h).__name__ == 'SpCLClusterHook')
    saved_threshold = ckpt['spcl']['indep_threshold']
    # a real threshold (not None == None): the hook starts at None, so only the restore can set it
    assert isinstance(saved_threshold, float)
    assert hook.indep_threshold == saved_threshold
    s = int(memory.num_source)
    sampler = runner.train_dataloader.sampler
    assert (torch.as_tensor(sampler.pseudo_labels) == memory.labels[s:] - s).all()


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_gloo_processes_keep_identical_memories(spcl_reid_root, tmp_path):
    run_dir, _ = spcl_reid_root
    cfg_file = tmp_path / 'dist_cfg.py'
    cfg_file.write_text(
        f"_base_ = ['{osp.join(REPO_ROOT, SMOKE_CONFIG)}']\n"
        "custom_imports = dict(imports=['mmssod', 'tests.test_spcl.memory_dump_hook'],\n"
        '                      allow_failed_imports=False)\n'
        'custom_hooks = [\n'
        "    dict(type='SpCLClusterHook', pipeline={{_base_.test_pipeline}}, batch_size=32, num_workers=0),\n"
        "    dict(type='SpCLMemoryDumpHook'),\n"
        ']\n'
        'train_cfg = dict(max_epochs=1, val_interval=5)\n'
    )
    work = tmp_path / 'work'
    res = run_python(
        [
            '-m',
            'torch.distributed.run',
            '--nproc_per_node=2',
            f'--master_port={free_port()}',
            osp.join(REPO_ROOT, 'tools/train.py'),
            str(cfg_file),
            '--launcher',
            'pytorch',
            '--work-dir',
            str(work),
        ],
        cwd=run_dir,
        env={'PYTHONPATH': f'{REPO_ROOT}'},
    )
    check(res)
    dumps = sorted(glob.glob(str(work / 'memory_rank*.pt')))
    assert len(dumps) == 2, dumps
    m0, m1 = (load_checkpoint_file(p, map_location='cpu') for p in dumps)
    assert m0['iters'] == m1['iters'] == 3
    assert torch.equal(m0['features'], m1['features']) and torch.equal(m0['labels'], m1['labels'])
    i0, i1 = (load_checkpoint_file(str(work / f'init_rank{r}.pt'), map_location='cpu') for r in (0, 1))
    assert torch.equal(i0['features'], i1['features'])
    # each rank saw 3 batches x 8 target images; the update gathered both ranks' batches
    moved = (m0['features'][12:] != i0['features'][12:]).any(1).sum().item()
    assert 24 < moved <= 48
    saved = load_checkpoint_file(str(work / 'epoch_1.pth'), map_location='cpu')['state_dict'][
        'head.memory.features'
    ]
    assert torch.equal(saved, m0['features'])


def test_unsupervised_run_without_source(spcl_reid_root, tmp_path):
    run_dir, _ = spcl_reid_root
    cfg_file = tmp_path / 'usl_cfg.py'
    cfg_file.write_text(
        f"_base_ = ['{osp.join(REPO_ROOT, SMOKE_CONFIG)}']\n"
        "custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)\n"
        'model = dict(domain_specific_bn=False)\n'
        'train_dataloader = dict(dataset=dict(_delete_=True, type="MarketReIDDataset",\n'
        '    data_root="data/composited_reid_tiny/target/", pipeline={{_base_.train_pipeline}}))\n'
        'train_cfg = dict(max_epochs=1, val_interval=1)\n'
    )
    work = tmp_path / 'work'
    out = check(
        run_python(
            [osp.join(REPO_ROOT, 'tools/train.py'), str(cfg_file), '--work-dir', str(work)], cwd=run_dir
        )
    )
    assert 'SpCL memory initialised: 0 source classes + 100 target images' in out
    assert re.search(r'reid/mAP: [0-9.]+', out)
    state = load_checkpoint_file(str(work / 'epoch_1.pth'), map_location='cpu')['state_dict']
    assert state['head.memory.features'].shape == (100, 128) and int(state['head.memory.num_source']) == 0
