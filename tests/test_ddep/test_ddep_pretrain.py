"""The DDeP pretraining algorithm: frozen encoder, target = noise, L2 loss, config switches, errors."""

import copy

import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import build_optim_wrapper
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmssod.models.ddep import add_noise, to_encoder_input

from .conftest import tiny_ddep_cfg


def batch(n=2, size=(64, 64), seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        'inputs': torch.randint(0, 256, (n, 3, *size), generator=g, dtype=torch.uint8),
        'data_samples': [DataSample() for _ in range(n)],
    }


def test_frozen_encoder_unchanged_no_grad_no_optimizer_state():
    torch.manual_seed(0)
    model = MODELS.build(tiny_ddep_cfg())
    model.train()
    assert not model.backbone.training, 'frozen encoder must stay in eval mode'
    assert all(not m.training for m in model.backbone.modules())
    assert model.neck.training
    assert not any(p.requires_grad for p in model.backbone.parameters())
    before_enc = copy.deepcopy(model.backbone.state_dict())  # BN running stats included
    before_dec = copy.deepcopy(model.neck.state_dict())
    optim = build_optim_wrapper(model, dict(optimizer=dict(type='AdamW', lr=1e-2, weight_decay=0.05)))
    losses = []
    for step in range(3):
        out = model.train_step(batch(seed=step), optim)
        losses.append(out['loss'].item())
        assert all(p.grad is None for p in model.backbone.parameters())
    after_enc = model.backbone.state_dict()
    for k, v in before_enc.items():
        assert torch.equal(v, after_enc[k]), f'encoder {k} changed'
    assert any(
        not torch.equal(v, model.neck.state_dict()[k]) for k, v in before_dec.items() if v.is_floating_point()
    )
    enc_params = {id(p) for p in model.backbone.parameters()}
    state_params = {id(p) for p in optim.optimizer.state}
    assert state_params, 'decoder parameters should have optimizer state'
    assert not state_params & enc_params, 'the frozen encoder must have no optimizer state'
    assert all(torch.isfinite(torch.tensor(losses)))


def test_full_network_variant_updates_encoder():
    torch.manual_seed(0)
    model = MODELS.build(tiny_ddep_cfg(freeze_encoder=False))
    model.train()
    assert model.backbone.training
    before = copy.deepcopy(model.backbone.state_dict())
    optim = build_optim_wrapper(model, dict(optimizer=dict(type='AdamW', lr=1e-2)))
    model.train_step(batch(), optim)
    assert any(not torch.equal(v, model.backbone.state_dict()[k]) for k, v in before.items())


@pytest.mark.parametrize('noise_type,target', [('scaled', 'noise'), ('simple', 'noise'), ('scaled', 'image')])
def test_loss_is_l2_to_the_target(noise_type, target):
    """Recompute the loss by hand with the same noise draw: L2 between prediction and noise (or image)."""
    torch.manual_seed(0)
    norm = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])
    model = MODELS.build(tiny_ddep_cfg(noise_type=noise_type, target=target, encoder_norm=norm))
    model.eval()
    data = model.data_preprocessor(batch(size=(40, 72)), False)
    x = data['inputs']
    assert x.min() >= -1 and x.max() <= 1, 'DDeP sees images scaled to [-1, 1]'
    torch.manual_seed(123)
    with torch.no_grad():
        loss = model.loss(x, data['data_samples'])['loss']
    torch.manual_seed(123)
    eps = torch.randn_like(x)
    with torch.no_grad():
        noisy = add_noise(x, eps, 0.22, noise_type)
        feats = model.backbone(to_encoder_input(noisy, model.encoder_mean, model.encoder_std))
        pred = model.head(model.neck(feats, out_size=x.shape[-2:]))
    assert pred.shape == x.shape
    expect = F.mse_loss(pred, eps if target == 'noise' else x)
    torch.testing.assert_close(loss, expect)
    other = F.mse_loss(pred, x if target == 'noise' else eps)
    assert not torch.allclose(loss, other)


def test_bad_settings_have_clear_errors():
    with pytest.raises(ValueError, match='noise_type'):
        MODELS.build(tiny_ddep_cfg(noise_type='gauss'))
    with pytest.raises(ValueError, match='target'):
        MODELS.build(tiny_ddep_cfg(target='x0'))
    with pytest.raises(ValueError, match='scaled to \\[-1, 1\\]'):
        MODELS.build(
            tiny_ddep_cfg(
                data_preprocessor=dict(
                    type='SelfSupDataPreprocessor',
                    mean=[123.675, 116.28, 103.53],
                    std=[58.395, 57.12, 57.375],
                )
            )
        )
    with pytest.raises(ValueError, match='encoder_norm'):
        MODELS.build(tiny_ddep_cfg(encoder_norm=dict(mean=[0, 0, 0])))


def test_small_input_and_mismatched_channels_errors():
    model = MODELS.build(tiny_ddep_cfg())
    with pytest.raises(ValueError, match='smaller than the total stride 32'):
        model.loss(torch.zeros(1, 3, 24, 64), None)
    bad = tiny_ddep_cfg(neck=dict(type='UNetDecoder', decoder_channels=(32, 16, 16, 8, 8)))  # R50 channels
    model = MODELS.build(bad)
    with pytest.raises(ValueError, match='in_channels'):
        model.loss(torch.zeros(1, 3, 64, 64), None)


@pytest.mark.parametrize('sigma', [0, 0.0, -0.22, float('nan')])
def test_non_positive_sigma_is_refused(sigma):
    """sigma <= 0 means no noise to predict: refused when the model is built, naming sigma."""
    with pytest.raises(ValueError, match='sigma must be a positive noise level'):
        MODELS.build(tiny_ddep_cfg(sigma=sigma))


def test_unknown_noise_variant_is_refused():
    with pytest.raises(ValueError, match=r"noise_type must be one of \('scaled', 'simple'\), got 'gaussian'"):
        MODELS.build(tiny_ddep_cfg(noise_type='gaussian'))


def test_whole_network_variant_needs_random_init_encoder():
    """freeze_encoder=False is the paper's whole-network variant (from random init): a pretrained encoder
    config is refused instead of silently fine-tuning classifier weights by denoising."""
    pretrained = tiny_ddep_cfg(freeze_encoder=False)
    pretrained['backbone'] = dict(
        pretrained['backbone'], init_cfg=dict(type='Pretrained', checkpoint='x.pth', prefix='backbone.')
    )
    with pytest.raises(ValueError, match='whole-network variant'):
        MODELS.build(pretrained)
    with pytest.raises(ValueError, match='whole-network variant'):
        MODELS.build(tiny_ddep_cfg(freeze_encoder=False, backbone=dict(type='EfficientNetLite')))
    MODELS.build(tiny_ddep_cfg(freeze_encoder=False))  # random init: fine
