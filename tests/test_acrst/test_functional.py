"""ACRST's pure functions against hand-computed values."""

import math

import pytest
import torch

from mmssod.models.acrst.functional import (
    affr_distribution,
    boxes_paste_mask,
    check_probability,
    paste_occlusion,
    pseudo_recall,
    selective_regression_mask,
    two_stage_filter,
)


def test_pseudo_recall_matches_formula_and_guards():
    # 2 labeled images, 6 unlabeled images -> r = 3; PR_k = N_k^u / (3 * N_k^l), clipped to [eps, 1]
    conf = torch.tensor([3.0, 12.0, 0.0, 5.0])
    counts = torch.tensor([2, 2, 4, 0])
    pr = pseudo_recall(conf, 6, counts, 2, eps=1e-3)
    assert pr[0].item() == pytest.approx(3.0 / 6.0)
    assert pr[1].item() == pytest.approx(1.0)  # 12 / 6 = 2 -> clipped to 1
    assert pr[2].item() == pytest.approx(1e-3)  # nothing found -> eps
    assert math.isnan(pr[3].item())  # no labeled instance: undefined
    # nothing seen yet: every defined class at eps
    assert torch.allclose(pseudo_recall(conf, 0, counts, 2)[:3], torch.full((3,), 1e-3))
    with pytest.raises(ValueError, match='num_classes'):
        pseudo_recall(conf, 6, counts[:3], 2)


def test_affr_distribution_hand_computed():
    pr = torch.tensor([0.2, 0.8, 0.4])
    beta = 0.6
    # ranked by PR descending: class1 (0.8), class2 (0.4), class0 (0.2)
    # rank i gets (PR_(K+1-i) / PR_(1))^beta: class1 -> (0.2/0.8)^b, class2 -> (0.4/0.8)^b, class0 -> 1
    raw = torch.tensor([1.0, 0.25**beta, 0.5**beta])
    expected = raw / raw.sum()
    mu = affr_distribution(pr, beta)
    assert torch.allclose(mu, expected, atol=1e-6)
    assert mu.argmax().item() == 0 and mu.argmin().item() == 1  # neglected class sampled most
    assert mu.sum().item() == pytest.approx(1.0)


def test_affr_beta_zero_is_plain_fbr_and_ties_are_equal():
    assert torch.allclose(affr_distribution(torch.tensor([0.9, 0.1, 0.5, 0.3]), 0.0), torch.full((4,), 0.25))
    mu = affr_distribution(torch.tensor([1.0, 1.0, 0.1, float('nan')]), 0.6)
    # NaN is treated as PR = 1: three tied classes share one weight, the neglected class gets more
    assert mu[0] == mu[1] == mu[3]
    assert mu[2] > mu[0]
    with pytest.raises(ValueError, match='beta'):
        affr_distribution(torch.tensor([0.5]), -1.0)


def test_two_stage_filter_each_stage_and_switches():
    scores = torch.tensor([0.9, 0.8, 0.5, 0.95])
    labels = torch.tensor([0, 1, 0, 2])
    ml = torch.tensor([0.9, 0.1, 0.5])
    assert two_stage_filter(scores, labels, ml, 0.7, 0.2).tolist() == [True, False, False, True]
    assert two_stage_filter(scores, labels, ml, None, 0.2).tolist() == [
        True,
        False,
        True,
        True,
    ]  # stage 1 off
    assert two_stage_filter(scores, labels, ml, 0.7, None).tolist() == [
        True,
        True,
        False,
        True,
    ]  # stage 2 off
    assert two_stage_filter(scores, labels, None, 0.7, 0.2).tolist() == [True, True, False, True]  # no scores
    assert two_stage_filter(scores[:0], labels[:0], ml, 0.7, 0.2).numel() == 0


def test_check_probability_names_the_setting():
    check_probability('x', None)
    check_probability('x', 0.3)
    with pytest.raises(ValueError, match='semi_train_cfg.tau_cls'):
        check_probability('semi_train_cfg.tau_cls', 1.5)


def test_paste_occlusion_copy_paste_rule():
    boxes = torch.tensor([[0.0, 0.0, 40.0, 40.0], [50.0, 50.0, 60.0, 60.0], [0.0, 60.0, 30.0, 100.0]])
    paste = torch.tensor([[0.0, 0.0, 38.0, 40.0], [45.0, 45.0, 70.0, 70.0]])
    mask = boxes_paste_mask(paste, 100, 100)
    assert mask.sum().item() == 38 * 40 + 25 * 25
    keep, updated = paste_occlusion(boxes, mask, bbox_occluded_thr=10, mask_occluded_thr=300)
    # box 0: visible strip x 38..40 (80 px), tight box moved by 38 px on the left -> dropped
    # box 1: fully covered -> dropped; box 2: untouched -> kept unchanged
    assert keep.tolist() == [False, False, True]
    assert updated[2].tolist() == [0.0, 60.0, 30.0, 100.0]
    # a box that loses a 5 px strip keeps its visible part (within 10 px)
    keep, updated = paste_occlusion(
        torch.tensor([[10.0, 10.0, 50.0, 50.0]]),
        boxes_paste_mask(torch.tensor([[45.0, 0.0, 60.0, 60.0]]), 100, 100),
    )
    assert keep.tolist() == [True] and updated[0].tolist() == [10.0, 10.0, 45.0, 50.0]
    # large visible area keeps a box even when its extent changes a lot
    keep, _ = paste_occlusion(
        torch.tensor([[0.0, 0.0, 80.0, 80.0]]),
        boxes_paste_mask(torch.tensor([[0.0, 0.0, 60.0, 80.0]]), 100, 100),
        mask_occluded_thr=300,
    )
    assert keep.tolist() == [True]  # 20 x 80 = 1600 visible pixels > 300


def test_selective_regression_mask():
    pasted = torch.tensor([True, False, True])
    assert selective_regression_mask(pasted).tolist() == [True, False, True]
    assert selective_regression_mask(pasted, regress_pseudo=True).tolist() == [True, True, True]
