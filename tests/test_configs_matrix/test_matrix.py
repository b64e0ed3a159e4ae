"""Every config under configs/ trains, validates, checkpoints, resumes and tests on its miniature dataset.

The configs are discovered (a new config is covered without editing this file); what runs and what is shrunk
for CPU is described in ``matrix.py``. All selected configs run in one batch (two processes at a time) when
the first of these tests starts; each test then reports its own config's stages.
"""

import os.path as osp

import pytest
import torch

from .matrix import CPU_BUILD_ONLY, discover_configs, plan, read_log, run_matrix

CONFIGS = discover_configs()
STAGES = ('prepare', 'build', 'train', 'resume', 'test')


@pytest.fixture(scope='module')
def matrix(request, mini_run_dir):
    selected = [
        item.callspec.params['config']
        for item in request.session.items
        if item.module.__name__ == __name__ and hasattr(item, 'callspec') and 'config' in item.callspec.params
    ]
    return mini_run_dir, run_matrix(selected, mini_run_dir, workers=2)


def _failure(config, stage, result):
    return (
        f'{config}: {stage} failed ({result.error.strip().splitlines()[-1] if result.error else "?"})\n'
        f'--- log {result.log}\n{read_log(result)}'
    )


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize('config', CONFIGS)
def test_config_runs(config, matrix):
    run_dir, results = matrix
    ran = [(stage, results[(config, stage)]) for stage in STAGES if (config, stage) in results]
    assert ran, f'{config} was not run'
    for stage, result in ran:
        assert result.ok, _failure(config, stage, result)
    if config in CPU_BUILD_ONLY:
        return
    resume_log = read_log(results[(config, 'resume')], tail=10**7)
    assert 'Load checkpoint from' in resume_log and 'resumed epoch' in resume_log, resume_log[-3000:]
    name = osp.splitext(osp.basename(config))[0]
    with open(osp.join(run_dir, 'work_dirs', name, 'last_checkpoint')) as f:
        ckpt = torch.load(f.read().strip(), map_location='cpu', weights_only=False)
    meta = ckpt['meta']
    assert (meta['epoch'], meta['iter']) in ((2, 4), (0, 3)), f'the resumed run did not continue: {meta}'
    assert ckpt['optimizer']['state'], 'the optimizer state was not saved'


def test_every_config_is_planned():
    """Discovery finds the method folders' configs and no base config; each gets its stages."""
    assert len(CONFIGS) > 50
    assert not [c for c in CONFIGS if '_base_' in c]
    assert {c.split('/')[0] for c in CONFIGS} >= {'acrst', 'cal_detr', 'spcl', 'ddep', 'demo'}
    jobs, _ = plan(['acrst/acrst_faster-rcnn_r50-caffe_fpn_180k_semi-0.1-coco.py'], CONFIGS)
    keys = [job.key for job in jobs]
    acrst = 'acrst/acrst_faster-rcnn_r50-caffe_fpn_180k_semi-0.1-coco.py'
    ssmll = 'acrst/ssmll/ssmll_r50_8xb16-20k_semi-0.1-coco.py'
    assert (acrst, 'prepare') in keys and (ssmll, 'resume') in keys, 'the SSMLL scores come from its config'
    assert all(reason for reason in CPU_BUILD_ONLY.values())
