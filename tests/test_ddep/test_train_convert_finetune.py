"""End to end through the project's tools: DDeP pretraining (1 process and 2 gloo processes), checkpoint
conversion, fine-tuning with mIoU, on a tiny composited segmentation set (composited from real images)."""

import glob
import importlib.util
import os.path as osp
import re
import shutil
import socket

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

from mmssod.utils.safe_load import load_checkpoint_file

from ..conftest import REPO_ROOT, run_python
from .conftest import SMOKE_FINETUNE, SMOKE_PRETRAIN


def check(res):
    assert (
        res.returncode == 0
    ), f'exit {res.returncode}\n--- stdout\n{res.stdout[-3000:]}\n--- stderr\n{res.stderr[-5000:]}'
    return res.stdout + res.stderr


def seg_options(root):
    return [
        '--cfg-options',
        f'train_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
    ]


@pytest.fixture(scope='module')
def pretrained(ddep_seg_root, tmp_path_factory):
    """A 4-iteration DDeP pretraining run (tools/train.py) and its converted checkpoint."""
    work = str(tmp_path_factory.mktemp('ddep_pre'))
    out = check(
        run_python(
            [
                'tools/train.py',
                SMOKE_PRETRAIN,
                '--work-dir',
                work,
                '--cfg-options',
                f'train_dataloader.dataset.data_root={ddep_seg_root}',
            ]
        )
    )
    assert 'Iter(train) [4/4]' in out
    seg = osp.join(work, 'ddep_seg.pth')
    out = check(run_python(['tools/model_converters/ddep_to_seg.py', osp.join(work, 'iter_4.pth'), seg]))
    assert 'tensors (encoder + UNet decoder) and the decoder layout' in out
    return work, seg


def build_smoke_segmentor(**decoder):
    """The smoke fine-tuning segmentor (mmseg scope), with decoder overrides."""
    cfg = Config.fromfile(osp.join(REPO_ROOT, SMOKE_FINETUNE))
    cfg.model.decode_head.decoder.update(decoder)
    init_default_scope('mmseg')
    from mmseg.registry import MODELS

    return MODELS.build(cfg.model)


def test_converter_round_trip(pretrained):
    """Pretrained encoder and decoder weights land in the fine-tuning segmentor unchanged."""
    work, seg_ckpt = pretrained
    ddep = load_checkpoint_file(osp.join(work, 'iter_4.pth'), map_location='cpu')['state_dict']
    cfg = Config.fromfile(osp.join(REPO_ROOT, SMOKE_FINETUNE))
    init_default_scope('mmseg')
    from mmseg.registry import MODELS

    segmentor = MODELS.build(cfg.model)
    init_conv_seg = segmentor.decode_head.conv_seg.weight.detach().clone()
    load_checkpoint(segmentor, seg_ckpt, map_location='cpu', strict=False)  # what runner's load_from does
    state = segmentor.state_dict()
    n_dec = n_enc = 0
    for key, value in ddep.items():
        if key.startswith('neck.'):
            torch.testing.assert_close(state['decode_head.decoder.' + key[5:]], value, rtol=0, atol=0)
            n_dec += 1
        elif key.startswith('backbone.'):
            torch.testing.assert_close(state[key], value, rtol=0, atol=0)
            n_enc += 1
    assert n_dec > 10 and n_enc > 10
    assert torch.equal(segmentor.decode_head.conv_seg.weight, init_conv_seg)  # classifier starts fresh
    missing = set(state) - set(load_checkpoint_file(seg_ckpt, map_location='cpu')['state_dict'])
    assert missing == {'decode_head.conv_seg.weight', 'decode_head.conv_seg.bias'}


def test_converter_records_decoder_layout(pretrained):
    _, seg_ckpt = pretrained
    ckpt = load_checkpoint_file(seg_ckpt, map_location='cpu')
    layout = dict(
        in_strides=[2, 4, 8, 16, 32],
        in_channels=[16, 16, 32, 64, 128],
        widen_factor=1.0,
        stage_channels=[32, 16, 16, 8, 8],
        norm='BN',
        out_stride=1,
    )
    assert ckpt['meta']['ddep_decoder'] == layout
    assert ckpt['state_dict']['decode_head.decoder_layout'] == layout


@pytest.mark.parametrize(
    'decoder,match',
    [
        (dict(widen_factor=2), r'widen_factor \(decoder width 1x / 2x / 3x\): checkpoint 1.0, model 2.0'),
        (
            dict(norm_cfg=dict(type='GN', num_groups=4)),
            r'norm_cfg type \(the decoder norm layer\): checkpoint BN',
        ),
        (
            dict(in_channels=(16, 32, 64, 128), in_strides=(4, 8, 16, 32)),
            r'in_strides \(the skip layout.*checkpoint \[2, 4, 8, 16, 32\], model \[4, 8, 16, 32\]',
        ),
    ],
    ids=['width', 'norm', 'skips'],
)
def test_loading_into_another_decoder_layout_fails(pretrained, decoder, match):
    """What runner's load_from does (non-strict load_checkpoint) must fail, naming the setting."""
    _, seg_ckpt = pretrained
    segmentor = build_smoke_segmentor(**decoder)
    with pytest.raises(ValueError, match=match):
        load_checkpoint(segmentor, seg_ckpt, map_location='cpu', strict=False)


def edited(seg_ckpt, tmp_path, edit):
    ckpt = load_checkpoint_file(seg_ckpt, map_location='cpu')
    edit(ckpt['state_dict'])
    path = str(tmp_path / 'edited.pth')
    torch.save(ckpt, path)
    return path


def test_missing_unexpected_misshaped_decoder_keys_fail(pretrained, tmp_path):
    _, seg_ckpt = pretrained
    key = 'decode_head.decoder.stages.0.convs.0.conv.weight'
    cases = [
        (lambda sd: sd.pop(key), r'1 missing \(decode_head.decoder.stages.0.convs.0.conv.weight\)'),
        (lambda sd: sd.__setitem__('decode_head.decoder.extra.weight', torch.zeros(1)), '1 unexpected'),
        (lambda sd: sd.__setitem__(key, sd[key][:, :-1]), r'1 mis-shaped \(.*conv.weight: checkpoint'),
        (lambda sd: sd.pop('decode_head.decoder_layout'), 'no recorded decoder layout'),
    ]
    for edit, match in cases:
        segmentor = build_smoke_segmentor()
        with pytest.raises(ValueError, match=match):
            load_checkpoint(segmentor, edited(seg_ckpt, tmp_path, edit), map_location='cpu', strict=False)


def test_unconverted_checkpoint_is_refused(pretrained):
    work, _ = pretrained
    segmentor = build_smoke_segmentor()
    with pytest.raises(ValueError, match='convert it first with tools/model_converters/ddep_to_seg.py'):
        load_checkpoint(segmentor, osp.join(work, 'iter_4.pth'), map_location='cpu', strict=False)


def test_encoder_only_checkpoint_keeps_decoder_init(pretrained, tmp_path):
    """The random-init-decoder baseline: a checkpoint without decoder weights loads the encoder only."""
    _, seg_ckpt = pretrained

    def drop_decoder(sd):
        for k in [k for k in sd if k.startswith('decode_head.')]:
            sd.pop(k)

    segmentor = build_smoke_segmentor()
    init = {k: v.clone() for k, v in segmentor.decode_head.state_dict().items()}
    load_checkpoint(segmentor, edited(seg_ckpt, tmp_path, drop_decoder), map_location='cpu', strict=False)
    for k, v in segmentor.decode_head.state_dict().items():
        assert torch.equal(v, init[k])


def test_train_with_mismatched_width_fails_before_training(pretrained, ddep_seg_root, tmp_path):
    """tools/train.py with load_from = a 1x checkpoint and a 2x decoder stops before the first iteration."""
    _, seg_ckpt = pretrained
    res = run_python(
        [
            'tools/train.py',
            SMOKE_FINETUNE,
            '--work-dir',
            str(tmp_path),
            *seg_options(ddep_seg_root),
            f'load_from={seg_ckpt}',
            'model.decode_head.decoder.widen_factor=2',
        ]
    )
    assert res.returncode != 0
    assert 'widen_factor (decoder width 1x / 2x / 3x): checkpoint 1.0, model 2.0' in res.stderr + res.stdout
    assert 'Iter(train)' not in res.stdout + res.stderr


def test_converter_rejects_non_ddep_checkpoint(tmp_path):
    """The converter tool (run in-process) names what is wrong with a classifier checkpoint."""
    spec = importlib.util.spec_from_file_location(
        'ddep_to_seg', osp.join(REPO_ROOT, 'tools/model_converters/ddep_to_seg.py')
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    bad = tmp_path / 'cls.pth'
    torch.save({'state_dict': {'backbone.conv1.weight': torch.zeros(1)}}, bad)
    with pytest.raises(ValueError, match='no "neck." \\(UNet decoder\\) weights found'):
        tool.main([str(bad), str(tmp_path / 'o.pth')])
    no_cfg = tmp_path / 'nocfg.pth'
    torch.save({'state_dict': {'neck.stages.0.convs.0.conv.weight': torch.zeros(1)}}, no_cfg)
    with pytest.raises(ValueError, match='does not record its config'):
        tool.main([str(no_cfg), str(tmp_path / 'o.pth')])
    with pytest.raises(FileNotFoundError, match='does not exist'):
        tool.main([str(tmp_path / 'missing.pth'), str(tmp_path / 'o.pth')])
    assert not (tmp_path / 'o.pth').exists()


def test_finetune_from_ddep_reports_miou(pretrained, ddep_seg_root, tmp_path):
    _, seg_ckpt = pretrained
    out = check(
        run_python(
            [
                'tools/train.py',
                SMOKE_FINETUNE,
                '--work-dir',
                str(tmp_path),
                *seg_options(ddep_seg_root),
                f'load_from={seg_ckpt}',
            ]
        )
    )
    assert f'Load checkpoint from {seg_ckpt}' in out
    miou = re.findall(r'mIoU: ([0-9.]+)', out)
    assert miou and 0.0 <= float(miou[-1]) <= 100.0


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_distributed_pretraining_two_gloo_processes(ddep_seg_root, tmp_path):
    """2 gloo processes (torchrun): frozen encoder identical after 2 and 4 steps, the decoder is not."""
    res = run_python(
        [
            '-m',
            'torch.distributed.run',
            '--nproc_per_node=2',
            f'--master_port={free_port()}',
            'tools/train.py',
            SMOKE_PRETRAIN,
            '--launcher',
            'pytorch',
            '--work-dir',
            str(tmp_path),
            '--cfg-options',
            f'train_dataloader.dataset.data_root={ddep_seg_root}',
        ]
    )
    out = check(res)
    assert 'Iter(train) [4/4]' in out
    assert re.search(r'GPU number: 2|world_size: 2', out) and 'Distributed training: True' in out
    ck = sorted(glob.glob(str(tmp_path / 'iter_*.pth')))
    assert [osp.basename(c) for c in ck] == ['iter_2.pth', 'iter_4.pth']
    a, b = (load_checkpoint_file(c, map_location='cpu')['state_dict'] for c in ck)
    enc = [k for k in a if k.startswith('backbone.')]
    dec = [k for k in a if k.startswith('neck.') and a[k].is_floating_point()]
    assert enc and all(torch.equal(a[k], b[k]) for k in enc)
    assert any(not torch.equal(a[k], b[k]) for k in dec)


def test_resume_keeps_encoder_frozen(pretrained, ddep_seg_root, tmp_path):
    """--resume from iteration 4 to 6: the run continues and the frozen encoder still does not move."""
    work, _ = pretrained
    shutil.copytree(work, tmp_path / 'run')
    run = str(tmp_path / 'run')
    out = check(
        run_python(
            [
                'tools/train.py',
                SMOKE_PRETRAIN,
                '--work-dir',
                run,
                '--resume',
                '--cfg-options',
                f'train_dataloader.dataset.data_root={ddep_seg_root}',
                'train_cfg.max_iters=6',
            ]
        )
    )
    assert 'resumed epoch: 0, iter: 4' in out and 'Iter(train) [6/6]' in out
    a, b = (load_checkpoint_file(osp.join(run, f'iter_{i}.pth'), map_location='cpu') for i in (4, 6))
    enc = [k for k in a['state_dict'] if k.startswith('backbone.')]
    assert enc and all(torch.equal(a['state_dict'][k], b['state_dict'][k]) for k in enc)
    n_enc = sum(1 for k in enc if k.endswith('weight') or k.endswith('bias'))
    n_state = len(b['optimizer']['state'])
    n_trainable = sum(
        1
        for k in b['state_dict']
        if not k.startswith('backbone.') and (k.endswith('weight') or k.endswith('bias'))
    )
    assert n_enc > 0 and n_state == n_trainable, 'optimizer state only for decoder + head parameters'
