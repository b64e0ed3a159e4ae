"""ACRST's pure functions against hand-computed values."""

import math

import pytest
import torch

from mmssod.datasets.cropbank import affr_distribution, pseudo_recall_aaai, pseudo_recall_v1
from mmssod.datasets.transforms.acrst_paste import boxes_paste_mask, paste_occlusion
from mmssod.models.acrst.functional import check_probability, selective_regression_mask, two_stage_filter


def test_pseudo_recall_aaai_is_the_confidence_sum_without_a_labeled_prior():
    # AAAI: PR_k = sum of the teacher's class-k confidences (>= 0.1, summed by the caller), not clipped
    conf = torch.tensor([3.0, 12.0, 0.0, 0.5])
    assert torch.equal(pseudo_recall_aaai(conf), conf)  # 12 stays 12: no clip to 1 that would tie classes
    with pytest.raises(ValueError, match='num_classes'):
        pseudo_recall_aaai(conf[None])
    with pytest.raises(ValueError, match='>= 0'):
        pseudo_recall_aaai(torch.tensor([-1.0, 2.0]))


def test_pseudo_recall_v1_matches_formula_and_guards():
    # 2 labeled images, 6 unlabeled images -> r = 3; PR_k = N_k^u / (3 * N_k^l), not clipped
    counts_u = torch.tensor([3.0, 12.0, 0.0, 5.0])
    counts_l = torch.tensor([2, 2, 4, 0])
    pr = pseudo_recall_v1(counts_u, 6, counts_l, 2)
    assert pr[0].item() == pytest.approx(3.0 / 6.0)
    assert pr[1].item() == pytest.approx(2.0)  # 12 / 6: above 1, kept apart from class 0
    assert pr[2].item() == 0.0  # nothing found
    assert math.isnan(pr[3].item())  # no labeled instance: undefined
    with pytest.raises(ValueError, match='num_classes'):
        pseudo_recall_v1(counts_u, 6, counts_l[:3], 2)
    with pytest.raises(ValueError, match='> 0'):
        pseudo_recall_v1(counts_u, 0, counts_l, 2)


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
    # scale-free: the AAAI confidence sums (any magnitude) give the same mu as their normalised values
    assert torch.allclose(affr_distribution(pr * 250, beta), mu, atol=1e-6)


def test_affr_never_merges_classes_of_different_pr():
    # the old code (ties averaged over reversed ranks, PR clipped to 1) gave PR 0.5 and 0.1 the same mu
    beta = 0.6
    mu = affr_distribution(torch.tensor([1.0, 1.0, 1.0, 0.5, 0.1]), beta)
    assert mu[0] == mu[1] == mu[2]  # equal PR, equal mu
    assert mu[4] > mu[3] > mu[0]  # lower PR, strictly more attention
    # distinct values v = (1, 0.5, 0.1): PR 1 -> (0.1/1)^b, PR 0.5 -> (0.5/1)^b, PR 0.1 -> 1
    raw = torch.tensor([0.1**beta] * 3 + [0.5**beta, 1.0])
    assert torch.allclose(mu, raw / raw.sum(), atol=1e-6)
    # monotone for any PR vector: sorting by PR ascending sorts mu descending, strictly between values
    pr = torch.tensor([7.0, 0.0, 3.0, 3.0, 12.5, 0.2, 1.0])
    mu = affr_distribution(pr, beta)
    for i in range(len(pr)):
        for j in range(len(pr)):
            if pr[i] < pr[j]:
                assert mu[i] > mu[j]
            elif pr[i] == pr[j]:
                assert mu[i] == mu[j]


def test_affr_beta_zero_nothing_detected_and_nan():
    assert torch.allclose(affr_distribution(torch.tensor([0.9, 0.1, 0.5, 0.3]), 0.0), torch.full((4,), 0.25))
    assert torch.allclose(affr_distribution(torch.zeros(3), 0.6), torch.full((3,), 1 / 3))  # nothing seen
    # v1 NaN (no labeled instance) counts as the best recalled class
    mu = affr_distribution(torch.tensor([2.0, 0.5, float('nan')]), 0.6)
    assert mu[2] == mu[0] and mu[1] > mu[0]
    with pytest.raises(ValueError, match='beta'):
        affr_distribution(torch.tensor([0.5]), -1.0)
    with pytest.raises(ValueError, match='>= 0'):
        affr_distribution(torch.tensor([0.5, -0.1]), 0.6)


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


def paste_occlusion_loop(boxes, paste_mask, bbox_occluded_thr=10, mask_occluded_thr=300):
    """The occlusion rule one box at a time (the reference the batched version must equal)."""
    height, width = paste_mask.shape
    keep = torch.zeros(len(boxes), dtype=torch.bool)
    updated = boxes.clone().float()
    for i, box in enumerate(boxes.tolist()):
        x1, y1 = max(int(box[0]), 0), max(int(box[1]), 0)
        x2, y2 = min(int(round(box[2])), width), min(int(round(box[3])), height)
        if x2 <= x1 or y2 <= y1:
            continue
        visible = ~paste_mask[y1:y2, x1:x2]
        if bool(visible.all()):
            keep[i] = True
            continue
        ys, xs = torch.nonzero(visible, as_tuple=True)
        if len(ys) == 0:
            continue
        tight = torch.tensor(
            [x1 + xs.min().item(), y1 + ys.min().item(), x1 + xs.max().item() + 1, y1 + ys.max().item() + 1]
        )
        moved = (tight - torch.tensor([x1, y1, x2, y2])).abs()
        keep[i] = bool((moved <= bbox_occluded_thr).all()) or len(ys) > mask_occluded_thr
        updated[i] = tight
    return keep, updated


def test_paste_occlusion_equals_the_per_box_rule_on_random_inputs():
    gen = torch.Generator().manual_seed(0)
    checked_partial = 0
    for trial in range(60):
        height, width = (
            int(torch.randint(20, 90, (1,), generator=gen)),
            int(torch.randint(20, 90, (1,), generator=gen)),
        )
        n = int(torch.randint(0, 12, (1,), generator=gen))
        xy = torch.rand(n, 2, generator=gen) * torch.tensor([width + 10.0, height + 10.0]) - 5
        wh = torch.rand(n, 2, generator=gen) * 40
        boxes = torch.cat([xy, xy + wh], 1)
        if n:
            boxes[0] = torch.tensor([2.5, 3.5, 12.5, 13.5])  # halves: round half to even on both sides
        pastes = torch.rand(int(torch.randint(1, 4, (1,), generator=gen)), 2, generator=gen) * torch.tensor(
            [width, height]
        )
        pastes = torch.cat([pastes, pastes + torch.rand(len(pastes), 2, generator=gen) * 30], 1)
        mask = boxes_paste_mask(pastes, height, width)
        thr = (trial % 3) * 5, (trial % 4) * 60
        keep, updated = paste_occlusion(boxes, mask, *thr)
        ref_keep, ref_updated = paste_occlusion_loop(boxes, mask, *thr)
        assert torch.equal(keep, ref_keep), trial
        assert torch.equal(updated, ref_updated), trial
        checked_partial += int(((updated != boxes).any(1)).sum())
    assert checked_partial > 10  # many boxes were partly covered and got a tight box


def test_boxes_paste_mask_covers_exactly_the_rounded_boxes():
    boxes = torch.tensor([[2.4, 1.6, 5.5, 4.0], [-3.0, 6.0, 2.0, 30.0]])
    mask = boxes_paste_mask(boxes, 8, 7)
    expected = torch.zeros(8, 7, dtype=torch.bool)
    expected[2:4, 2:6] = True  # round(2.4)=2, round(1.6)=2, round(5.5)=6, round(4.0)=4
    expected[6:8, 0:2] = True  # clipped to the image
    assert torch.equal(mask, expected)


def test_pr_floor_keeps_the_best_recalled_class_sampled():
    pr = torch.tensor([0.0, 2.0, 5.0, 10.0])
    paper = affr_distribution(pr, 0.6)
    assert paper[3] == 0  # the paper's mu: a class with PR 0 leaves the best-recalled class unsampled
    floored = affr_distribution(pr, 0.6, pr_floor=0.05)
    shifted = pr + 0.05 * 10  # PR + f * max PR, then the same mirrored ranking
    expected = (shifted.flip(0) / shifted[-1]) ** 0.6
    assert torch.allclose(floored, (expected / expected.sum()).float(), atol=1e-6)
    assert floored[3] > 0 and (floored.diff() < 0).all()  # same order, all distinct
    assert torch.allclose(affr_distribution(pr + 1, 0.6, 0.0), affr_distribution(pr + 1, 0.6))
    with pytest.raises(ValueError, match='pr_floor'):
        affr_distribution(pr, 0.6, pr_floor=-0.1)
