"""The Cal-DETR math (modulation, prototype, mixed logits, soft targets) on random and hand-built inputs."""

import math

import pytest
import torch

from mmssod.models.cal_detr.cal_detr_utils import (
    logit_uncertainty,
    mix_logits,
    mixing_prototype,
    mixing_targets,
    modulate_logits,
)


def test_modulation_is_last_logits_times_one_minus_tanh_of_unbiased_variance():
    torch.manual_seed(0)
    z = torch.randn(6, 2, 5, 4) * 3
    mean = z.mean(0)
    var = ((z - mean) ** 2).sum(0) / (z.size(0) - 1)  # unbiased, over the layer axis
    expected = z[-1] * (1 - torch.tanh(var))
    assert torch.allclose(logit_uncertainty(z), var, atol=1e-6)
    assert torch.allclose(modulate_logits(z), expected, atol=1e-6)
    # the official release's operator-precedence variant is a subtraction, kept for comparison only
    assert torch.allclose(modulate_logits(z, mode='released'), z[-1] - torch.tanh(var), atol=1e-6)
    assert not torch.allclose(modulate_logits(z), modulate_logits(z, mode='released'))


def test_modulation_leaves_agreeing_layers_unchanged_and_shrinks_disagreeing_ones():
    z = torch.full((3, 1, 1, 2), 2.0)
    assert torch.equal(modulate_logits(z), z[-1])  # zero variance -> certainty 1
    z[0, ..., 1] = 1.0
    out = modulate_logits(z)
    assert out[..., 0] == 2.0 and 0 < out[..., 1] < 2.0


def test_gradients_flow_through_the_uncertainty():
    torch.manual_seed(1)
    z = torch.randn(3, 2, 4, 3, requires_grad=True)
    modulate_logits(z).sum().backward()
    # earlier layers only reach the output through the variance (not detached)
    assert z.grad[0].abs().sum() > 0 and z.grad[1].abs().sum() > 0 and z.grad[2].abs().sum() > 0


def test_modulation_needs_two_layers_and_a_known_mode():
    with pytest.raises(ValueError, match='at least 2 decoder layers'):
        modulate_logits(torch.randn(1, 1, 2, 3))
    with pytest.raises(ValueError, match='modulation mode'):
        modulate_logits(torch.randn(2, 1, 2, 3), mode='sub')


def _stationary_variance() -> float:
    """The v > 0 solving 2 v (1 + tanh v) = 1 by bisection (the product's turning point)."""
    lo, hi = 0.0, 1.0
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if 2 * mid * (1 + math.tanh(mid)) < 1 else (lo, mid)
    return (lo + hi) / 2


@pytest.mark.parametrize('num_layers,peak,wrong_below', [(3, 0.68, -1.05), (6, 0.96, -1.49)])
def test_product_modulation_peak_and_wrong_sign_region_over_undecided_layers(num_layers, peak, wrong_below):
    """Earlier layers at 0: u = z_L^2 / L, so z' = z_L (1 - tanh(z_L^2 / L)) peaks at z* = sqrt(L v*).

    Past |z_L| = z* the derivative d z' / d z_L is negative: a positive's z' can never exceed
    sqrt(L v*) (1 - tanh v*) ~ 0.393 sqrt(L), and a negative whose raw logit lies below -z* is pushed up
    by any loss that lowers z'.
    """
    step = 1e-4
    z = torch.arange(-4.0, 4.0 + step / 2, step, dtype=torch.float64).requires_grad_(True)
    earlier = torch.zeros(num_layers - 1, 1, z.numel(), 1, dtype=torch.float64)
    modulated = modulate_logits(torch.cat([earlier, z.view(1, 1, -1, 1)]))[0, :, 0]
    (slope,) = torch.autograd.grad(modulated.sum(), z)  # z'_i depends on z_i only: the diagonal derivative
    z, modulated = z.detach(), modulated.detach()

    v_star = _stationary_variance()
    z_star = math.sqrt(num_layers * v_star)
    assert abs(float(modulated.max()) - peak) < 5e-3
    assert abs(float(modulated.max()) - z_star * (1 - math.tanh(v_star))) < 1e-6
    assert abs(float(z[modulated.argmax()]) - z_star) <= step
    wrong = slope < 0
    assert abs(float(z[wrong & (z < 0)].max()) - wrong_below) < 5e-3
    assert bool((wrong == (z.abs() > z_star)).logical_or((z.abs() - z_star).abs() <= step).all())


@pytest.mark.parametrize('num_layers', [2, 3, 6])
def test_product_modulation_slope_matches_its_closed_form(num_layers):
    """d z' / d z_L = (1 - tanh u) (1 - 2 z_L (z_L - m) (1 + tanh u) / L), m the earlier layers' mean.

    u = S / (L - 1) + (z_L - m)^2 / L with S the earlier layers' squared deviations from m (unbiased
    variance), so the slope is negative exactly where 2 z_L (z_L - m) (1 + tanh u) > L.
    """
    g = torch.Generator().manual_seed(num_layers)
    logits = (torch.randn(num_layers, 2, 50, 3, generator=g, dtype=torch.float64) * 2).requires_grad_(True)
    (slope,) = torch.autograd.grad(modulate_logits(logits).sum(), logits)
    z, m = logits.detach()[-1], logits.detach()[:-1].mean(0)
    tanh_u = torch.tanh(logits.detach().var(0, unbiased=True))
    expected = (1 - tanh_u) * (1 - 2 * z * (z - m) * (1 + tanh_u) / num_layers)
    assert torch.allclose(slope[-1], expected, atol=1e-10)
    assert bool((slope[-1] < 0).any()) and bool((slope[-1] > 0).any())
    unsaturated = (1 - tanh_u) > 1e-6  # where tanh(u) rounds to 1 the slope is 0 up to rounding
    assert bool(unsaturated.float().mean() > 0.5)
    wrong_sign = 2 * z * (z - m) * (1 + tanh_u) > num_layers
    assert torch.equal((slope[-1] < 0)[unsaturated], wrong_sign[unsaturated])


def test_prototype_and_mixed_logits_on_hand_built_positives():
    z = torch.tensor([[1.0, 0.0, 0.0], [0.0, 3.0, 0.0], [2.0, 0.0, 3.0]])
    assert torch.allclose(mixing_prototype(z), torch.tensor([1.0, 1.0, 1.0]))
    expected = 0.9 * z + 0.1 * torch.ones(3)
    assert torch.allclose(mix_logits(z, 0.9), expected)
    assert torch.allclose(mix_logits(z[:1], 0.9), z[:1])  # a single positive is its own prototype


def test_mixing_targets_share_one_minus_alpha_among_the_other_positives():
    t = mixing_targets(torch.tensor([0, 2, 2]), num_classes=4, alpha=0.9)
    expected = torch.tensor(
        [
            [0.9, 0.0, 0.1, 0.0],  # the other class present is 2
            [0.1, 0.0, 0.9, 0.0],  # own class capped at alpha; the other class present is 0
            [0.1, 0.0, 0.9, 0.0],
        ]
    )
    assert torch.allclose(t, expected)
    assert torch.allclose(t.sum(1), torch.ones(3))
    # 1 - alpha is spread uniformly over the other classes present (not weighted by their query counts)
    t = mixing_targets(torch.tensor([0, 1, 1, 1, 2]), num_classes=3, alpha=0.9)
    assert torch.allclose(t[0], torch.tensor([0.9, 0.05, 0.05]))
    assert torch.allclose(t[1], torch.tensor([0.05, 0.9, 0.05]))


def test_mixing_targets_query_share_is_the_official_codes_rule():
    """'query': (1 - alpha) / (P - 1) on each other class present, once, however many queries have it."""
    labels = torch.tensor([1, 3, 3, 3])  # P = 4: a share of 0.1 / 3
    third = 0.1 / 3
    t = mixing_targets(labels, num_classes=5, alpha=0.9, share='query')
    expected = torch.tensor(
        [
            [0.0, 0.9, 0.0, third, 0.0],  # three queries of class 3 still give class 3 one share
            [0.0, third, 0.0, 0.9, 0.0],  # the two other class-3 queries add nothing to the own class
            [0.0, third, 0.0, 0.9, 0.0],
            [0.0, third, 0.0, 0.9, 0.0],
        ]
    )
    assert torch.allclose(t, expected)
    assert torch.allclose(mixing_targets(labels, 5, 0.9, share='class')[0], torch.tensor([0, 0.9, 0, 0.1, 0]))
    t = mixing_targets(torch.tensor([0, 1, 1, 1, 2]), num_classes=3, alpha=0.8, share='query')  # share 0.05
    assert torch.allclose(t[0], torch.tensor([0.8, 0.05, 0.05]))  # 'class' would give 0.1 to each
    assert torch.allclose(t[1:4], torch.tensor([0.05, 0.8, 0.05]).expand(3, 3))
    assert torch.allclose(t[4], torch.tensor([0.05, 0.05, 0.8]))
    assert torch.allclose(
        mixing_targets(torch.tensor([0, 1, 1, 1, 2]), 3, 0.8)[0], torch.tensor([0.8, 0.1, 0.1])
    )
    assert torch.allclose(
        mixing_targets(torch.tensor([2]), 3, 0.9, share='query'), torch.tensor([[0, 0, 0.9]])
    )
    with pytest.raises(ValueError, match='mixing target share'):
        mixing_targets(labels, 5, 0.9, share='per-query')


def test_mixing_targets_single_positive_and_label_zero():
    assert torch.allclose(mixing_targets(torch.tensor([0]), 3, 0.9), torch.tensor([[0.9, 0.0, 0.0]]))
    assert torch.allclose(mixing_targets(torch.tensor([2]), 3, 1.0), torch.tensor([[0.0, 0.0, 1.0]]))
    # class 0 is an ordinary class: it receives the other positives' share like any other
    t = mixing_targets(torch.tensor([1, 0]), 2, 0.7)
    assert torch.allclose(t, torch.tensor([[0.3, 0.7], [0.7, 0.3]]))


def test_mixing_targets_reject_bad_labels():
    with pytest.raises(ValueError, match='at least one positive'):
        mixing_targets(torch.tensor([], dtype=torch.long), 3)
    with pytest.raises(ValueError, match=r'\[0, 3\)'):
        mixing_targets(torch.tensor([3]), 3)


@pytest.mark.parametrize('alpha', [0, 0.0, -0.1, 1.5, True, 'x'])
def test_mix_alpha_outside_zero_one_is_refused(alpha):
    with pytest.raises(ValueError, match=r'`mix_alpha` must be a number in \(0, 1\]'):
        mixing_targets(torch.tensor([0, 1]), 2, alpha)
    with pytest.raises(ValueError, match='mix_alpha'):
        mix_logits(torch.zeros(2, 2), alpha)
