"""Configs as users write them: ``mmssod::`` inheritance, and every config snippet of the READMEs.

A base loaded as ``mmssod::<config>`` gets ``_scope_='mmssod'`` on its dicts; ``mmssod.registry`` must build
them exactly as the config builds when loaded by path, in each library's default scope.
"""

import glob
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.registry import HOOKS, MODELS, TRANSFORMS, DefaultScope

import mmssod  # noqa: F401  (registers mmssod:: and the mmssod scope)
from mmssod.utils.config import config_path

from ..conftest import REPO_ROOT

READMES = [
    'README.md',
    *sorted(osp.relpath(p, REPO_ROOT) for p in glob.glob(osp.join(REPO_ROOT, 'configs/*/README.md'))),
]
FENCE = re.compile(r'^ {0,3}(`{3,}|~{3,})(.*)$')

# one config per default scope and method, each small enough to build on CPU in a second or two
SCOPED = [
    'demo/faster-rcnn_efficientnet-lite0_fpn_composited-demo.py',  # mmdet
    'acrst/acrst_faster-rcnn_r18_fpn_20k_semi-0.1-composited-lt.py',  # mmdet, semi-supervised
    'cal_detr/cal-dino-4scale_tiny_cpu-smoke_composited-demo.py',  # mmdet, DETR
    'spcl/spcl_r18-tiny_cpu-smoke_composited-reid.py',  # re-ID
    'ddep/ddep_r18-tiny_cpu-smoke_pretrain_composited-seg.py',  # mmpretrain
    'ddep/ddep_r18-tiny_cpu-smoke_finetune_composited-seg.py',  # mmseg
]


def module_types(model):
    return [type(m) for m in model.modules()]


def build_in_scope(cfg):
    """Model, train-pipeline and custom-hook classes built as a runner builds them (in the config's default
    scope)."""
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        dataset = cfg.get('train_dataloader', {}).get('dataset', {})
        pipeline = [type(TRANSFORMS.build(t)) for t in dataset.get('pipeline', [])]
        hooks = [type(HOOKS.build(h)) for h in cfg.get('custom_hooks', [])]
    return type(model), module_types(model), pipeline, hooks


@pytest.mark.parametrize('name', SCOPED)
def test_a_config_inherited_as_mmssod_builds_what_it_builds_by_path(name, tmp_path):
    downstream = tmp_path / 'downstream.py'
    downstream.write_text(f"_base_ = ['mmssod::{name}']\n")
    inherited = Config.fromfile(str(downstream))
    assert any('mmssod' in line for line in inherited.pretty_text.splitlines() if '_scope_' in line)
    assert build_in_scope(inherited) == build_in_scope(Config.fromfile(config_path(name)))


def test_mmssod_scope_looks_a_type_up_in_the_enclosing_scope_first():
    """'ResNet' is a class of its own in mmdet, mmpretrain and mmseg: scope mmssod gives the enclosing one."""
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
    from mmseg.registry import MODELS as MMSEG_MODELS

    from mmssod.registry import REGISTRIES

    resnets = {
        lib: reg.get('ResNet')
        for lib, reg in [('mmdet', MMDET_MODELS), ('mmpretrain', MMPRETRAIN_MODELS), ('mmseg', MMSEG_MODELS)]
    }
    assert len(set(resnets.values())) == 3
    for enclosing, expected in [*resnets.items(), ('a_project_without_registry', resnets['mmdet'])]:
        with DefaultScope.overwrite_default_scope(enclosing), DefaultScope.overwrite_default_scope('mmssod'):
            assert REGISTRIES['MODELS'].get('ResNet') is expected, enclosing
            assert REGISTRIES['MODELS'].get('mmpretrain.ResNet') is resnets['mmpretrain']


def test_hub_get_config_reads_mmssod_configs_by_metafile_and_by_path():
    listed = 'acrst/acrst_faster-rcnn_r18_fpn_20k_semi-0.1-composited-lt.py'  # in configs/acrst/metafile.yml
    assert osp.realpath(get_config(f'mmssod::{listed}').filename) == osp.realpath(config_path(listed))
    base = '_base_/models/faster-rcnn_efficientnet-lite0_fpn.py'  # no metafile entry
    assert get_config(f'mmssod::{base}').model.type == 'FasterRCNN'


def fenced_blocks(path):
    """``(blocks, unclosed)``: ``(language, first line number, text)`` of each fenced code block of a Markdown
    file, and the line of a fence that is never closed (None when all are)."""
    blocks, opened = [], None
    with open(osp.join(REPO_ROOT, path)) as f:
        lines = f.read().splitlines()
    for number, line in enumerate(lines, 1):
        match = FENCE.match(line)
        if opened is None and match:
            opened = (match.group(1), match.group(2).strip(), number, [])
        elif (
            opened is not None
            and match
            and match.group(1).startswith(opened[0])
            and not match.group(2).strip()
        ):
            blocks.append((opened[1], opened[2], '\n'.join(opened[3])))
            opened = None
        elif opened is not None:
            opened[3].append(line)
    return blocks, opened and opened[2]


@pytest.mark.parametrize('readme', READMES)
def test_readme_code_fences_are_closed(readme):
    _, unclosed = fenced_blocks(readme)
    assert unclosed is None, f'{readme}:{unclosed}: the code fence opened here is never closed'


SNIPPETS = [
    pytest.param(readme, line, text, id=f'{readme}:{line}')
    for readme in READMES
    for lang, line, text in fenced_blocks(readme)[0]
    if lang == 'python'
]


@pytest.mark.parametrize('readme,line,text', SNIPPETS)
def test_readme_python_block_loads_as_a_config(readme, line, text, tmp_path):
    """Every ```python block of the READMEs is a config a user can save and load, as written."""
    (tmp_path / 'snippet.py').write_text(text + '\n')
    cfg = Config.fromfile(str(tmp_path / 'snippet.py'))
    assert cfg.filename.endswith('snippet.py')
