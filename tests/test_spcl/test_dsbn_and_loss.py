"""Domain-specific BN loads plain (ImageNet) BN checkpoints into both branches; UDA loss scale."""

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import ReIDDataSample
from mmengine.registry import init_default_scope
from torch.nn.modules.batchnorm import _BatchNorm

import mmssod  # noqa: F401
from mmssod.models.reid.spcl import DomainSpecificBN


def _model(dsbn, checkpoint=None, **head_kwargs):
    init_default_scope('mmdet')
    backbone = dict(
        type='mmpretrain.ResNet',
        depth=18,
        base_channels=8,
        stem_channels=8,
        strides=(1, 2, 2, 1),
        out_indices=(3,),
    )
    if checkpoint:
        backbone['init_cfg'] = dict(type='Pretrained', checkpoint=checkpoint)
    return MODELS.build(
        dict(
            type='SpCLReID',
            domain_specific_bn=dsbn,
            data_preprocessor=dict(type='ReIDDataPreprocessor', mean=[128.0] * 3, std=[64.0] * 3),
            backbone=backbone,
            neck=dict(type='mmpretrain.GlobalAveragePooling'),
            head=dict(type='SpCLHead', in_channels=64, **head_kwargs),
        )
    )


@pytest.fixture
def plain_checkpoint(tmp_path):
    """A backbone checkpoint with plain BN keys (as torchvision's ImageNet ResNets), non-default BN state."""
    torch.manual_seed(0)
    backbone = _model(False).backbone
    for m in backbone.modules():
        if isinstance(m, _BatchNorm):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_()
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    path = str(tmp_path / 'imagenet_like.pth')
    torch.save(backbone.state_dict(), path)
    return path, backbone.state_dict()


def test_plain_bn_checkpoint_loads_into_both_dsbn_branches(plain_checkpoint):
    path, ref = plain_checkpoint
    model = _model(True, path)
    model.init_weights()
    pairs = [(n, m) for n, m in model.backbone.named_modules() if isinstance(m, DomainSpecificBN)]
    assert len(pairs) == len([k for k in ref if k.endswith('running_var')])
    for name, m in pairs:
        for branch in (m.bn_source, m.bn_target):
            for key in ('weight', 'bias', 'running_mean', 'running_var'):
                torch.testing.assert_close(getattr(branch, key), ref[f'{name}.{key}'], rtol=0, atol=0)
    # the branches are copies, not shared tensors: training one leaves the other
    m = pairs[0][1]
    assert m.bn_source.weight.data_ptr() != m.bn_target.weight.data_ptr()
    # a DSBN checkpoint (the trained model's own) still loads as is
    again = _model(True)
    again.load_state_dict(model.state_dict())
    torch.testing.assert_close(again.backbone.bn1.bn_source.running_var, ref['bn1.running_var'])


def test_checkpoint_without_bn_keys_is_an_error(plain_checkpoint, tmp_path):
    _, ref = plain_checkpoint
    path = str(tmp_path / 'convs_only.pth')
    torch.save({k: v for k, v in ref.items() if 'bn' not in k and 'norm' not in k}, path)
    with pytest.raises(RuntimeError, match='no BatchNorm keys'):
        _model(True, path).init_weights()
    bad = dict(ref)
    bad.pop('bn1.running_var')
    with pytest.raises(ValueError, match='missing'):
        _model(True).backbone.load_state_dict(bad, strict=False)


def _samples(domains, labels):
    out = []
    for i, (d, y) in enumerate(zip(domains, labels)):
        ds = ReIDDataSample(metainfo=dict(domain=d, sample_idx=i % 4))
        ds.set_gt_label(y)
        out.append(ds)
    return out


def test_uda_loss_is_source_mean_plus_target_mean():
    from mmssod.models.reid.spcl import domain_mean_loss

    torch.manual_seed(0)
    per_sample = torch.rand(6)
    domains = ['source'] * 2 + ['target'] * 4
    expected = per_sample[:2].mean() + per_sample[2:].mean()
    torch.testing.assert_close(domain_mean_loss(per_sample, domains), expected)
    torch.testing.assert_close(domain_mean_loss(per_sample, ['target'] * 6), per_sample.mean())

    model = _model(True)
    head = model.head
    head.memory.init_memory(torch.nn.functional.normalize(torch.randn(3, 64), dim=1), torch.randn(5, 64))
    feats = torch.randn(8, 64)
    samples = _samples(['source'] * 4 + ['target'] * 4, [0, 1, 2, 0, 0, 0, 0, 0])
    head.train()
    loss = head.loss(feats, samples)['loss_spcl']
    emb = head(feats)  # training-mode BN neck, as inside loss()
    rows = head.memory_rows(samples)
    per = head.memory.loss(emb, rows, reduction='none')
    torch.testing.assert_close(loss, per[:4].mean() + per[4:].mean())
    # equal halves: twice the one-mean-over-the-batch of the old code
    torch.testing.assert_close(loss, 2 * per.mean())


@pytest.mark.parametrize('dsbn', [False, True], ids=['plain-bn', 'domain-specific-bn'])
@pytest.mark.parametrize('trainable', [False, True])
def test_neck_bias_trains_only_with_neck_bias_trainable(dsbn, trainable):
    """Frozen BN-neck bias by default (BNNeck); ``neck_bias_trainable=True`` trains it in every branch.

    The official UDA model rebuilds each BN as a fresh domain-specific pair, so its neck bias trains; the
    option reproduces that, and the domain-specific copies keep whichever setting the head chose.
    """
    model = _model(dsbn, neck_bias_trainable=trainable)
    neck = model.head.bn_neck
    branches = [neck.bn_source, neck.bn_target] if dsbn else [neck]
    assert all(b.bias.requires_grad is trainable and b.weight.requires_grad for b in branches)
    head = model.head
    torch.manual_seed(0)
    head.memory.init_memory(torch.nn.functional.normalize(torch.randn(3, 64), dim=1), torch.randn(5, 64))
    domains = ['source'] * 4 + ['target'] * 4 if dsbn else ['target'] * 8
    head.train()
    head.loss(torch.randn(8, 64), _samples(domains, [0, 1, 2, 0, 0, 0, 0, 0]))['loss_spcl'].backward()
    for b in branches:
        assert b.weight.grad is not None and b.weight.grad.abs().sum() > 0
        assert (b.bias.grad is not None and bool(b.bias.grad.abs().sum() > 0)) is trainable
