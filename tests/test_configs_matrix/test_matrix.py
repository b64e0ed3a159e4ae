"""Every config under configs/ trains, validates, checkpoints, resumes and tests on its miniature dataset.

The configs are discovered (a new config is covered without editing this file); what runs and what is shrunk
for CPU is described in ``matrix.py``. All selected configs run in one batch (two processes at a time) when
the first of these tests starts; each test then reports its own config's stages.
"""

import re

import pytest

from .matrix import (
    CPU_BUILD_ONLY,
    cfg_option_args,
    discover_configs,
    load_cfg_dict,
    plan,
    read_log,
    run_matrix,
    shrink_options,
)

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
@pytest.mark.timeout(3600)  # the whole matrix runs in the first test's fixture
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
    # the resumed run continued where the first one stopped (checkpoints are deleted when a config is done)
    assert re.search(r'(Iter\(train\) \[3/3\]|Epoch\(train\) \[2\]\[2/2\])', resume_log), resume_log[-3000:]


def test_every_config_is_planned():
    """Discovery finds the method folders' configs and no base config; each gets its stages."""
    assert len(CONFIGS) > 50
    assert not [c for c in CONFIGS if '_base_' in c]
    assert {c.split('/')[0] for c in CONFIGS} >= {'acrst', 'cal_detr', 'spcl', 'ddep', 'demo'}
    jobs, _ = plan(['acrst/acrst_faster-rcnn_r50-caffe_fpn_180k_semi-0.1-coco.py'], CONFIGS)
    keys = [job.key for job in jobs]
    acrst = 'acrst/acrst_faster-rcnn_r50-caffe_fpn_180k_semi-0.1-coco.py'
    ssmll = 'acrst/ssmll/ssmll_r50_8xb16-36k_semi-0.1-coco.py'
    assert (acrst, 'prepare') in keys and (ssmll, 'resume') in keys, 'the SSMLL scores come from its config'
    assert all(reason for reason in CPU_BUILD_ONLY.values())


ALLOWED_OVERRIDES = re.compile(
    r'^('
    r'.*pipeline.*\.(scale|scales|img_scale|crop_size|size)'  # image sizes in pipelines
    r'|model(\.\w+)*\.data_preprocessor\.size'  # the pad size that matches the crop
    r'|\w+_dataloader\.(num_workers|persistent_workers|batch_size|sampler\.batch_size|sampler\.iters_per_epoch)'
    r'|train_dataloader\.dataset(\.\w+|\.\d+)*\.indices'  # epoch length of epoch-based loops
    r'|custom_hooks\.\d+\.num_workers'
    r'|train_cfg\.(max_iters|max_epochs|val_interval|val_begin)'
    r'|default_hooks\.(checkpoint|logger)\.interval'
    r'|model(\.\w+)*\.init_cfg'  # ImageNet downloads (checked below: only Pretrained URLs)
    r'|model(\.detector)?\.num_queries'  # two-stage DETRs: no more queries than the shrunk image has tokens
    r')$'
)


def test_shrinking_leaves_model_losses_hooks_and_evaluators_alone():
    """Every --cfg-options override of every config is one of the documented CPU shrinks."""
    for config in CONFIGS:
        cfg = load_cfg_dict(config)
        for stage in ('train', 'resume', 'test'):
            for key, value in shrink_options(cfg, stage).items():
                assert ALLOWED_OVERRIDES.match(key), f'{config}: {key}={value!r} is not a CPU shrink'
                if key.endswith('init_cfg'):
                    assert value is None
                    node = cfg
                    for part in key.split('.'):
                        node = node[int(part)] if isinstance(node, list) else node[part]
                    assert node['type'] == 'Pretrained' and '://' in node['checkpoint'], (config, key)


def test_option_text_round_trips_through_dict_action():
    """What the matrix passes on the command line parses back to the same values (mmengine DictAction)."""
    import argparse

    from mmengine.config import DictAction

    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    opts = {'a.scale': (64, 32), 'b.scales': [(32, 83), (64, 83)], 'c': None, 'd': False, 'e': 2, 'f': (1,)}
    parsed = parser.parse_args(cfg_option_args(opts)).cfg_options
    assert parsed == opts
