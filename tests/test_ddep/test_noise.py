"""DDeP's noise formulas, their statistics, the target and the input scaling (pure functions)."""

import math

import pytest
import torch

from mmssod.models.ddep import (
    add_noise,
    denoising_target,
    noise_gamma,
    scaled_additive_noise,
    simple_additive_noise,
    to_encoder_input,
)


def test_gamma_of_sigma_022():
    assert noise_gamma(0.22) == pytest.approx(1 / (1 + 0.22**2))
    assert noise_gamma(0.22) == pytest.approx(0.9538, abs=1e-4)
    assert noise_gamma(0.0) == 1.0


def test_scaled_additive_noise_matches_both_forms():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 5, 7, generator=g) * 2 - 1
    eps = torch.randn(2, 3, 5, 7, generator=g)
    sigma = 0.22
    gamma = 1 / (1 + sigma**2)
    out = scaled_additive_noise(x, eps, sigma)
    torch.testing.assert_close(out, math.sqrt(gamma) * x + math.sqrt(1 - gamma) * eps)
    torch.testing.assert_close(out, (x + sigma * eps) / math.sqrt(1 + sigma**2))
    assert out.shape == x.shape


def test_scaled_noise_statistics():
    """Per pixel: mean sqrt(gamma) x, std sqrt(1 - gamma); unit-variance signal keeps unit variance."""
    g = torch.Generator().manual_seed(1)
    n = 400_000
    sigma = 0.22
    gamma = noise_gamma(sigma)
    x = torch.full((n,), 0.5)
    out = scaled_additive_noise(x, torch.randn(n, generator=g), sigma)
    assert out.mean().item() == pytest.approx(math.sqrt(gamma) * 0.5, abs=2e-3)
    assert out.std().item() == pytest.approx(math.sqrt(1 - gamma), rel=1e-2)
    # variance preserving: unit-variance signal + noise -> unit variance
    x = torch.randn(n, generator=g)
    out = scaled_additive_noise(x, torch.randn(n, generator=g), sigma)
    assert out.var().item() == pytest.approx(1.0, rel=1e-2)
    # simple additive noise is not variance preserving: var = 1 + sigma^2
    out = simple_additive_noise(x, torch.randn(n, generator=g), sigma)
    assert out.var().item() == pytest.approx(1 + sigma**2, rel=1e-2)


def test_simple_additive_noise_and_dispatch():
    x = torch.zeros(1, 3, 2, 2)
    eps = torch.ones(1, 3, 2, 2)
    torch.testing.assert_close(simple_additive_noise(x, eps, 0.5), torch.full_like(x, 0.5))
    torch.testing.assert_close(add_noise(x, eps, 0.5, 'simple'), torch.full_like(x, 0.5))
    torch.testing.assert_close(add_noise(x, eps, 0.5, 'scaled'), torch.full_like(x, 0.5 / math.sqrt(1.25)))
    with pytest.raises(ValueError, match='noise_type'):
        add_noise(x, eps, 0.5, 'gaussian')


def test_target_is_the_noise():
    x, eps = torch.rand(1, 3, 4, 4), torch.randn(1, 3, 4, 4)
    assert denoising_target(x, eps) is eps
    assert denoising_target(x, eps, 'image') is x
    with pytest.raises(ValueError, match='target'):
        denoising_target(x, eps, 'residual')


def test_encoder_input_scaling():
    x = torch.tensor([-1.0, 0.0, 1.0]).view(1, 1, 3, 1).repeat(1, 3, 1, 1)
    assert to_encoder_input(x) is x
    mean = torch.tensor([123.675, 116.28, 103.53])
    std = torch.tensor([58.395, 57.12, 57.375])
    out = to_encoder_input(x, mean, std)
    expect = ((x + 1) * 127.5 - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    torch.testing.assert_close(out, expect)
    # pixel 255 (x = 1) in channel 0 -> (255 - 123.675) / 58.395
    assert out[0, 0, 2, 0].item() == pytest.approx((255 - 123.675) / 58.395)


@pytest.mark.parametrize('noise_type', ['scaled', 'simple'])
def test_noise_inside_the_ddep_loss_has_the_stated_form_and_std(noise_type, monkeypatch):
    """The training path on [-1, 1] images: x~ = (x + sigma eps) / sqrt(1 + sigma^2), sigma 0.22, target eps.

    Captured inside ``DDeP.loss`` on ~400k pixels: the noise recovered from the encoder's input is the
    target, with mean 0 and std 1; the noise component of x~ has std sigma / sqrt(1 + sigma^2) = 0.2149
    (scaled) or sigma (simple) and is uncorrelated with the image.
    """
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample

    from .conftest import tiny_ddep_cfg

    model = MODELS.build(tiny_ddep_cfg(noise_type=noise_type))
    assert model.sigma == 0.22  # the paper's noise level is the default
    seen = {}
    extract_feat, head_loss = model.extract_feat, model.head.loss

    def record_encoder_input(noisy):
        seen['noisy'] = noisy
        return extract_feat(noisy)

    def record_target(pred, target):
        seen['target'] = target
        return head_loss(pred, target)

    monkeypatch.setattr(model, 'extract_feat', record_encoder_input)
    monkeypatch.setattr(model.head, 'loss', record_target)
    g = torch.Generator().manual_seed(3)
    pixels = torch.randint(0, 256, (8, 3, 128, 128), generator=g, dtype=torch.uint8)
    data = model.data_preprocessor(
        {'inputs': pixels, 'data_samples': [DataSample() for _ in range(8)]}, False
    )
    x = data['inputs']
    assert x.min() == -1 and x.max() == 1, 'DDeP adds the noise to images scaled to [-1, 1]'
    torch.manual_seed(0)
    with torch.no_grad():
        model.loss(x, data['data_samples'])
    noisy, target = seen['noisy'], seen['target']
    sigma = 0.22
    scale = math.sqrt(1 + sigma**2) if noise_type == 'scaled' else 1.0
    recovered = (noisy * scale - x) / sigma
    torch.testing.assert_close(recovered, target, atol=1e-4, rtol=0)  # the target is the noise eps itself
    assert target.mean().item() == pytest.approx(0.0, abs=1e-2)
    assert target.std().item() == pytest.approx(1.0, rel=1e-2)
    component = noisy - x / scale
    assert component.std().item() == pytest.approx(sigma / scale, rel=1e-2)
    if noise_type == 'scaled':
        assert sigma / scale == pytest.approx(0.2149, abs=1e-4)
    corr = torch.corrcoef(torch.stack([component.flatten(), x.flatten()]))[0, 1]
    assert abs(corr.item()) < 1e-2
