"""Error messages that suggest a fix: the fix, applied as the message says, makes the error go away.

Also: a dict that mmssod reads key by key refuses keys it does not read (a typo is never ignored), and the
Cal-DETR heads name themselves in argument errors.
"""

import argparse
import copy
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
from mmdet.registry import MODELS
from mmengine.config import Config, DictAction
from mmengine.registry import DefaultScope

from mmssod.utils import check_data_paths, config_path, load_run_config

from ..conftest import REPO_ROOT

ACRST_DEMO = 'acrst/acrst_faster-rcnn_efficientnet-lite0_fpn_semi-0.25-composited-demo.py'
CAL_DINO = 'cal_detr/cal-dino-4scale_tiny_cpu-smoke_composited-demo.py'
HINT = re.compile(r'--cfg-options (\S+)=\.\.\.')


def parse_cfg_options(options):
    """``--cfg-options`` as tools/train.py parses them (MMEngine's DictAction)."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(['--cfg-options', *options]).cfg_options


def right_value(option, data_root):
    """Where the demo set really is, for the setting an error names."""
    if option.endswith('.data_root'):
        return data_root.rstrip('/') + '/'
    if option.endswith('.ann_file') and 'evaluator' in option:
        return osp.join(data_root, 'annotations', 'instances_val.json')
    raise AssertionError(f'the test does not know a value for {option}')


@pytest.mark.parametrize(
    'config,split',
    [(ACRST_DEMO, 'train'), (ACRST_DEMO, 'val'), (CAL_DINO, 'val')],  # dataset lists; an evaluator list
)
def test_applying_each_data_path_hint_removes_its_error(config, split, demo_det_root, tmp_path, monkeypatch):
    """A config run from a folder without its data: each error names a --cfg-options key; passing that key
    (as tools/train.py does) removes that error, until the config passes the checks."""
    monkeypatch.chdir(tmp_path)  # data/composited_det_demo does not exist here
    applied = []
    for _ in range(6):
        cfg = load_run_config(config_path(config), parse_cfg_options(applied) if applied else None)
        try:
            check_data_paths(cfg, splits=(split,))
            break
        except FileNotFoundError as err:
            hint = HINT.search(str(err))
            assert hint, f'no --cfg-options hint in: {err}'
            option = hint.group(1)
            assert not any(
                a.startswith(f'{option}=') for a in applied
            ), f'applying {option} did not help: {err}'
            applied.append(f'{option}={right_value(option, demo_det_root)}')
    else:
        raise AssertionError(f'still failing after applying {applied}')
    assert applied, 'the config found its data without any fix'
    named = {a.split('=')[0] for a in applied}
    if config == ACRST_DEMO and split == 'train':  # both datasets of the semi-supervised wrapper, by index
        assert {f'train_dataloader.dataset.datasets.{i}.data_root' for i in (0, 1)} <= named, applied
    if config == CAL_DINO:  # both metrics of the evaluator list, by index
        assert {f'val_evaluator.{i}.ann_file' for i in (0, 1)} <= named, applied


def build_acrst(**semi):
    cfg = Config.fromfile(config_path(ACRST_DEMO))
    model = copy.deepcopy(cfg.model)
    model.semi_train_cfg.update(semi)
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(model)


def test_semi_train_cfg_refuses_an_unknown_key_and_the_named_key_works():
    with pytest.raises(ValueError) as err:
        build_acrst(tau_clss=0.95)
    msg = str(err.value)
    assert "semi_train_cfg has unknown key(s) 'tau_clss' (did you mean 'tau_cls'?)" in msg, msg
    assert (
        'burn_in_iters' in msg and 'unsup_weight' in msg
    ), msg  # the accepted keys, ACRST's and Soft Teacher's
    assert build_acrst(tau_cls=0.95).semi_train_cfg.tau_cls == 0.95  # at or above Soft Teacher's 0.9


def test_semi_test_cfg_refuses_an_unknown_key():
    cfg = Config.fromfile(config_path(ACRST_DEMO))
    model = dict(copy.deepcopy(cfg.model), semi_test_cfg=dict(predict_onn='teacher'))
    with DefaultScope.overwrite_default_scope('mmdet'):
        with pytest.raises(ValueError, match=r"'predict_onn' \(did you mean 'predict_on'\?\)"):
            MODELS.build(model)


@pytest.mark.parametrize('head', ['CalDINOHead', 'CalDeformableDETRHead'])
def test_cal_heads_name_themselves_for_a_misspelled_argument(head):
    cfg = Config.fromfile(config_path(CAL_DINO))
    bbox_head = dict(copy.deepcopy(cfg.model.bbox_head), type=head)
    with DefaultScope.overwrite_default_scope('mmdet'):
        with pytest.raises(TypeError) as err:
            MODELS.build(dict(bbox_head, mix_alpa=0.5))
        msg = str(err.value)
        assert msg.startswith(
            f"{head} got unexpected argument(s) 'mix_alpa' (did you mean 'mix_alpha'?)"
        ), msg
        assert MODELS.build(dict(bbox_head, mix_alpha=0.5)).mix_alpha == 0.5


def run_dist_script(script, python, cwd):
    args = ['bash', osp.join(REPO_ROOT, 'tools', script), 'missing_config.py']
    args += ['missing.pth', '1'] if script == 'dist_test.sh' else ['1']
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PORT': '29561', 'PYTHON': str(python)}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize('script', ['dist_train.sh', 'dist_test.sh'])
def test_dist_scripts_name_the_python_to_use(script, tmp_path):
    no_torch = tmp_path / 'python'  # an interpreter without site-packages, like a system python
    no_torch.write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')
    no_torch.chmod(0o755)
    res = run_dist_script(script, no_torch, tmp_path)
    assert res.returncode == 1 and 'PYTHON=.venv/bin/python' in res.stderr, res.stderr


def test_dist_train_with_the_named_python_gets_past_the_check(tmp_path):
    res = run_dist_script('dist_train.sh', sys.executable, tmp_path)
    out = res.stdout + res.stderr
    assert 'has no torch' not in out and "config file 'missing_config.py' does not exist" in out, out[-3000:]
