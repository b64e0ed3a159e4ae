"""The math of ACRST (Zhang et al., AAAI 2022) as small pure functions (tensor in, tensor out).

* :func:`pseudo_recall_aaai` - PR_k as published (AAAI): the sum of the teacher's confidences of its
  class-k detections (score >= 0.1), no prior from the labeled set (the default).
* :func:`pseudo_recall_v1` - PR_k of arXiv v1: class-k pseudo-label count relative to the class-k
  frequency of the labeled set, ``N_k^u / (r * N_k^l)``.
* :func:`affr_distribution` - the AFFR class distribution mu: classes ranked by PR descending get
  ``mu_(i) ~ (PR_(K+1-i) / PR_(1)) ** beta`` (neglected classes are sampled more; ``beta = 0`` is uniform,
  i.e. plain FBR); classes of different PR never share a weight.
* :func:`two_stage_filter` - stage 1 ``score >= tau_cls``; stage 2 drops detections whose class the
  image-level multi-label classifier scores below ``tau_ml``.
* :func:`paste_occlusion` - CopyPaste's occlusion rule on boxes covered by pasted crops.
* :func:`selective_regression_mask` - which pseudo instances get a box-regression loss (pasted only).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def check_probability(name: str, value: Optional[float]) -> None:
    """Raise a ValueError naming the setting when ``value`` is not None and outside [0, 1].

    Args:
        name (str): the config key, used in the message.
        value (float, optional): the threshold; None means "stage switched off".
    """
    if value is None:
        return
    if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f'{name} must be a probability in [0, 1] (or None to switch it off), got {value!r}')


#: The pseudo-recall forms: ``'aaai'`` (the published paper, default) and ``'v1'`` (arXiv v1).
PR_FORMS = ('aaai', 'v1')


def pseudo_recall_aaai(confidence_sum: Tensor) -> Tensor:
    """Pseudo-recall, AAAI form: ``PR_k = sum_i s_k^i`` over the teacher's class-k detections.

    The sum runs over the detections with confidence ``s >= 0.1`` (the caller accumulates them). No prior
    from the labeled set enters: classes that are equally neglected get a lower PR when they are found less
    confidently. PR is not clipped, so classes with different confidence sums keep different PR.

    Args:
        confidence_sum (Tensor): (K,) summed confidences of class-k teacher detections.

    Returns:
        Tensor: (K,) float pseudo-recall (>= 0).
    """
    if confidence_sum.dim() != 1:
        raise ValueError(f'confidence_sum must have shape (num_classes,), got {tuple(confidence_sum.shape)}')
    if bool((confidence_sum < 0).any()):
        raise ValueError('confidence_sum must be >= 0 (a sum of detection confidences)')
    return confidence_sum.float().clone()


def pseudo_recall_v1(
    pseudo_counts: Tensor, num_unlabeled_images: int, labeled_counts: Tensor, num_labeled_images: int
) -> Tensor:
    """Pseudo-recall, arXiv v1 form: ``PR_k = N_k^u / (r * N_k^l)``, ``r = |unlabeled| / |labeled|``.

    ``N_k^u`` is the number of class-k pseudo-labels over ``num_unlabeled_images`` images, ``N_k^l`` the
    number of class-k ground-truth boxes over ``num_labeled_images`` labeled images (the labeled class
    distribution serves as the prior of the unlabeled one). Not clipped; classes without labeled instances
    have no defined PR and get NaN.

    Args:
        pseudo_counts (Tensor): (K,) class-k pseudo-label counts.
        num_unlabeled_images (int): number of unlabeled images those pseudo-labels come from (> 0).
        labeled_counts (Tensor): (K,) ground-truth instance counts of the labeled set.
        num_labeled_images (int): number of labeled images (> 0).

    Returns:
        Tensor: (K,) float pseudo-recall (>= 0), NaN where ``labeled_counts == 0``.
    """
    if pseudo_counts.shape != labeled_counts.shape or pseudo_counts.dim() != 1:
        raise ValueError(
            f'pseudo_counts {tuple(pseudo_counts.shape)} and labeled_counts '
            f'{tuple(labeled_counts.shape)} must both have shape (num_classes,)'
        )
    if num_labeled_images <= 0 or num_unlabeled_images <= 0:
        raise ValueError(
            f'num_labeled_images and num_unlabeled_images must be > 0, got {num_labeled_images}, '
            f'{num_unlabeled_images}'
        )
    ratio = num_unlabeled_images / num_labeled_images
    counts = labeled_counts.double()
    pr = pseudo_counts.double() / (ratio * counts.clamp(min=1))
    pr[counts <= 0] = float('nan')
    return pr.float()


def affr_distribution(pr: Tensor, beta: float) -> Tensor:
    """AFFR sampling distribution mu over classes from pseudo-recall (CReST-style reversed ranking).

    The distinct PR values sorted descending, ``v_1 > v_2 > ... > v_M``; a class whose PR is ``v_j`` gets
    ``(v_(M+1-j) / v_1) ** beta``, normalised to sum 1. With all PR distinct (M = K) this is
    ``mu_(i) ~ (PR_(K+1-i) / PR_(1)) ** beta``: the most-recalled class gets the smallest weight, the
    least-recalled the largest. Equal PR gives equal mu and different PR always gives different mu for
    ``beta > 0`` (ranking the distinct values keeps tied classes from merging their neighbours).
    ``beta = 0`` gives the uniform distribution (plain FBR), as does PR = 0 for every class (nothing
    detected yet). Classes with undefined PR (NaN: v1 form, no labeled instances) count as the best
    recalled (the largest finite PR), since nothing says they are neglected.

    Args:
        pr (Tensor): (K,) pseudo-recall, values >= 0 or NaN.
        beta (float): rebalancing strength, >= 0.

    Returns:
        Tensor: (K,) float distribution mu (non-negative, sums to 1).
    """
    if beta < 0:
        raise ValueError(f'beta must be >= 0 (0 = plain FBR), got {beta}')
    if pr.dim() != 1 or pr.numel() == 0:
        raise ValueError(f'pr must have shape (num_classes,), got {tuple(pr.shape)}')
    pr = pr.double()
    finite = pr[~torch.isnan(pr)]
    if bool((finite < 0).any()):
        raise ValueError(f'pseudo-recall must be >= 0, got {pr.tolist()}')
    top = float(finite.max()) if finite.numel() else 1.0
    pr = torch.nan_to_num(pr, nan=top)
    if beta == 0 or top <= 0:
        return torch.full_like(pr, 1.0 / len(pr)).float()
    values, index = torch.unique(pr, sorted=True, return_inverse=True)  # ascending: values[-1] = v_1
    # a class at values[i] holds v_j with j = M - i and gets v_(M+1-j) = values[M - 1 - i]
    mirrored = values.flip(0)[index]
    weights = (mirrored / values[-1]) ** beta
    return (weights / weights.sum()).float()


def two_stage_filter(
    scores: Tensor,
    labels: Tensor,
    image_class_scores: Optional[Tensor] = None,
    tau_cls: Optional[float] = 0.7,
    tau_ml: Optional[float] = 0.2,
) -> Tensor:
    """ACRST's two-stage pseudo-label filter for one image.

    Stage 1 keeps detections with ``score >= tau_cls``; stage 2 removes detections whose class the
    image-level multi-label classifier scores below ``tau_ml`` ("this class is absent"). A threshold of None
    switches its stage off; stage 2 is also off when ``image_class_scores`` is None.

    Args:
        scores (Tensor): (N,) detection confidences.
        labels (Tensor): (N,) long class indices in [0, K).
        image_class_scores (Tensor, optional): (K,) multi-label classifier scores of this image.
        tau_cls (float, optional): stage-1 threshold. Defaults to 0.7.
        tau_ml (float, optional): stage-2 threshold. Defaults to 0.2.

    Returns:
        Tensor: (N,) bool mask of the detections kept.
    """
    keep = torch.ones_like(scores, dtype=torch.bool)
    if tau_cls is not None:
        keep &= scores >= tau_cls
    if tau_ml is not None and image_class_scores is not None and labels.numel() > 0:
        keep &= image_class_scores.to(scores.device)[labels.long()] >= tau_ml
    return keep


def paste_occlusion(
    boxes: Tensor, paste_mask: Tensor, bbox_occluded_thr: float = 10, mask_occluded_thr: float = 300
) -> tuple[Tensor, Tensor]:
    """Apply CopyPaste's occlusion rule to (box-shaped) instances covered by pasted crops.

    An instance's visible region is its box minus the pasted pixels. It is kept when the tight box of its
    visible region moved by at most ``bbox_occluded_thr`` pixels on every side, or when more than
    ``mask_occluded_thr`` of its pixels stay visible; kept boxes become the tight box of their visible part.

    Args:
        boxes (Tensor): (N, 4) boxes (x1, y1, x2, y2) in pixels of the pasted image.
        paste_mask (Tensor): (H, W) bool, True where a crop was pasted.
        bbox_occluded_thr (float): box-change tolerance in pixels. Defaults to 10.
        mask_occluded_thr (float): visible-pixel count above which a box is kept. Defaults to 300.

    Returns:
        tuple[Tensor, Tensor]: ``keep`` (N,) bool and ``updated`` (N, 4) float boxes (the visible part;
        equal to the input where nothing was covered).
    """
    height, width = paste_mask.shape
    keep = torch.zeros(len(boxes), dtype=torch.bool, device=boxes.device)
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
            [x1 + xs.min().item(), y1 + ys.min().item(), x1 + xs.max().item() + 1, y1 + ys.max().item() + 1],
            dtype=updated.dtype,
            device=updated.device,
        )
        moved = (tight - torch.tensor([x1, y1, x2, y2], dtype=updated.dtype, device=updated.device)).abs()
        keep[i] = bool((moved <= bbox_occluded_thr).all()) or len(ys) > mask_occluded_thr
        updated[i] = tight
    return keep, updated


def boxes_paste_mask(boxes: Tensor, height: int, width: int) -> Tensor:
    """Binary mask of the pixels covered by rectangular pasted crops.

    Args:
        boxes (Tensor): (M, 4) pasted boxes (x1, y1, x2, y2), integer-aligned.
        height (int): image height.
        width (int): image width.

    Returns:
        Tensor: (height, width) bool mask.
    """
    mask = torch.zeros((height, width), dtype=torch.bool, device=boxes.device)
    for x1, y1, x2, y2 in boxes.round().long().tolist():
        mask[max(y1, 0) : min(y2, height), max(x1, 0) : min(x2, width)] = True
    return mask


def selective_regression_mask(pasted: Tensor, regress_pseudo: bool = False) -> Tensor:
    """Which unlabeled-image instances get a box-regression loss under selective supervision.

    Pasted CropBank instances have exact boxes and are regressed; the teacher's pseudo boxes are not
    (``regress_pseudo=True`` turns selective supervision off).

    Args:
        pasted (Tensor): (N,) bool, True for instances pasted from the CropBank.
        regress_pseudo (bool): also regress the teacher's pseudo boxes. Defaults to False.

    Returns:
        Tensor: (N,) bool mask of instances with a regression loss.
    """
    pasted = pasted.bool()
    return torch.ones_like(pasted) if regress_pseudo else pasted
