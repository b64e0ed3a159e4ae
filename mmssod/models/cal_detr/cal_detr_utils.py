"""The two training-time ideas of Cal-DETR (Munir et al., NeurIPS 2023) as pure tensor functions.

* Uncertainty-guided logit modulation: the spread of a query's class logits across the decoder layers is its
  uncertainty ``u = Var_l(z_l)``; the last layer's logits are scaled by the certainty ``1 - tanh(u)``.
* Logit mixing: each positive query's logits are mixed with the prototype (mean logits of all positives),
  ``z~_i = alpha * z_i + (1 - alpha) * prototype``, and trained against a soft target that gives ``alpha``
  to the query's own class and spreads ``1 - alpha`` over the other classes present among the positives
  (per class, or per query as the official code does: see :func:`mixing_targets`).

The heads in :mod:`mmssod.models.cal_detr.cal_detr_head` wire these into mmdet's DETR heads.
"""

from __future__ import annotations

import torch
from torch import Tensor

MODULATION_MODES = ('paper', 'released')
MIXING_TARGET_SHARES = ('class', 'query')


def logit_uncertainty(all_layers_cls_scores: Tensor) -> Tensor:
    """Uncertainty of each class logit: its unbiased variance across the decoder layers.

    Args:
        all_layers_cls_scores (Tensor): Class logits of every decoder layer, shape (L, B, Q, C), L >= 2.

    Returns:
        Tensor: ``u``, shape (B, Q, C), differentiable (not detached, as in the paper's training).
    """
    if all_layers_cls_scores.dim() != 4:
        raise ValueError(
            f'expected class logits of shape (num_layers, batch, queries, classes), got '
            f'{tuple(all_layers_cls_scores.shape)}'
        )
    if all_layers_cls_scores.size(0) < 2:
        raise ValueError(
            'uncertainty-guided logit modulation needs the logits of at least 2 decoder layers '
            f'(got {all_layers_cls_scores.size(0)}); set `decoder.num_layers` >= 2 and '
            '`return_intermediate=True`, or `logit_modulation=False` in the head config'
        )
    return all_layers_cls_scores.var(dim=0, unbiased=True)


def modulate_logits(all_layers_cls_scores: Tensor, mode: str = 'paper') -> Tensor:
    """Uncertainty-guided logit modulation of the last decoder layer.

    Args:
        all_layers_cls_scores (Tensor): Class logits of every decoder layer, shape (L, B, Q, C), L >= 2.
        mode (str): 'paper': ``z_L * (1 - tanh(u))`` (the paper's figure and text). 'released': what the
            official release computes, ``z_L - tanh(u)`` (operator precedence in ``z * 1-tanh(u)``); only
            for comparison. Defaults to 'paper'.

    Returns:
        Tensor: modulated last-layer logits ``z_L'``, shape (B, Q, C).

    Note: the product is not monotone in ``z_L``. Where the earlier layers are undecided (logits 0),
    ``z_L = -2`` (certainty 0.13) and ``z_L = -0.27`` (certainty 0.98) both give ``z_L' = -0.26``, so a loss
    on ``z_L'`` need not pin the raw ``z_L`` that inference uses. The subtraction moves ``z_L`` by at most 1.
    With ``m`` the earlier layers' mean, the slope is
    ``d z_L' / d z_L = (1 - tanh u) (1 - 2 z_L (z_L - m) (1 + tanh u) / L)``, negative (the wrong sign) where
    ``2 z_L (z_L - m) (1 + tanh u) > L``. Over earlier layers at 0 the product
    peaks at ``|z_L'| ~ 0.393 sqrt(L)`` (0.68 at L = 3, 0.96 at L = 6), reached at ``|z_L| ~ 0.608 sqrt(L)``.
    """
    if mode not in MODULATION_MODES:
        raise ValueError(f'modulation mode must be one of {MODULATION_MODES}, got {mode!r}')
    tanh_u = torch.tanh(logit_uncertainty(all_layers_cls_scores))
    last = all_layers_cls_scores[-1]
    if mode == 'paper':
        return last * (1 - tanh_u)
    return last - tanh_u


def mixing_prototype(pos_logits: Tensor) -> Tensor:
    """Prototype of the positive queries: the mean of their logits.

    Args:
        pos_logits (Tensor): Logits of the P >= 1 positive (matched) queries of the batch, shape (P, C).

    Returns:
        Tensor: the prototype, shape (C,).
    """
    if pos_logits.dim() != 2 or pos_logits.size(0) == 0:
        raise ValueError(f'need logits of at least one positive query, shape (P, C); got {pos_logits.shape}')
    return pos_logits.mean(dim=0)


def mix_logits(pos_logits: Tensor, alpha: float = 0.9) -> Tensor:
    """Mixed logits ``z~_i = alpha * z_i + (1 - alpha) * prototype`` of every positive query.

    Args:
        pos_logits (Tensor): Logits of the positive queries, shape (P, C), P >= 1.
        alpha (float): Weight of a query's own logits, in (0, 1]. Defaults to 0.9.

    Returns:
        Tensor: mixed logits, shape (P, C).
    """
    alpha = validate_mix_alpha(alpha)
    return alpha * pos_logits + (1 - alpha) * mixing_prototype(pos_logits)


def mixing_targets(pos_labels: Tensor, num_classes: int, alpha: float = 0.9, share: str = 'class') -> Tensor:
    """Soft targets of the mixed logits.

    Query ``i`` gets exactly ``alpha`` on its own class; the other classes present among the positives that
    form the prototype (the classes of the other positive queries, the query's own class excluded) get a
    share of ``1 - alpha``. The own class is never above ``alpha``: when every positive has the query's class
    (e.g. labels [4, 4, 4, 4]) the target is ``alpha`` on that class and 0 elsewhere, never the one-hot
    vector. With the per-class sigmoid loss each class is a separate binary target, so rows need not sum
    to 1. Classes are handled with one-hot masks: label 0 is an ordinary class.

    The paper says the other positive queries share ``1 - alpha``; two readings are offered:

    * ``share='class'``: ``1 - alpha`` is spread uniformly over the K other classes present,
      ``(1 - alpha) / K`` each, whatever their query counts; a row sums to 1 (``alpha`` when K = 0).
    * ``share='query'``: the official code's rule. Each of the P - 1 other positive queries has the share
      ``(1 - alpha) / (P - 1)``, written once on its class: further queries of a class already written, and
      queries of the query's own class, add nothing. A row sums to ``alpha + K (1 - alpha) / (P - 1)``.

    For labels [1, 3, 3, 3] and ``alpha = 0.9``, 'class' gives 0.1 to the other class of every query and
    'query' gives 0.1 / 3.

    Args:
        pos_labels (Tensor): Class indices of the positive queries in [0, num_classes), shape (P,), P >= 1.
        num_classes (int): Number of classes C.
        alpha (float): Target weight of a query's own class, in (0, 1]. Defaults to 0.9.
        share (str): 'class' or 'query', as above. Defaults to 'class'.

    Returns:
        Tensor: float targets, shape (P, C), with values in [0, alpha].
    """
    alpha = validate_mix_alpha(alpha)
    if share not in MIXING_TARGET_SHARES:
        raise ValueError(f'mixing target share must be one of {MIXING_TARGET_SHARES}, got {share!r}')
    if pos_labels.numel() == 0:
        raise ValueError('need at least one positive query to build mixing targets')
    try:  # one_hot checks the range (on CUDA with a device-side assert: no host sync)
        one_hot = torch.nn.functional.one_hot(pos_labels.long(), num_classes).float()  # (P, C)
    except RuntimeError as err:
        raise ValueError(f'positive labels must lie in [0, {num_classes}) ({err})') from err
    present = (one_hot.sum(dim=0, keepdim=True) > 0).float()  # (1, C) classes of the positives
    others = present - one_hot  # (P, C) classes present, own class excluded
    if share == 'class':
        num_others = others.sum(dim=1, keepdim=True)  # (P, 1)
        per_class = (1 - alpha) / num_others.clamp(min=1)
    else:
        per_class = (1 - alpha) / max(pos_labels.numel() - 1, 1)
    return alpha * one_hot + per_class * others


def validate_mix_alpha(alpha: float) -> float:
    """Check the mixing coefficient and return it as a float.

    ``alpha`` must lie in (0, 1]: it is the weight of a query's own logits and the target of its own class,
    so ``alpha = 0`` would train every positive towards the prototype with a zero own-class target.
    ``alpha = 1`` switches the mixing off in effect (mixed logits = own logits, one-hot targets).
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 < float(alpha) <= 1.0:
        raise ValueError(
            f'`mix_alpha` must be a number in (0, 1] (the paper uses 0.9; use `logit_mixing=False` to switch '
            f'the mixing off), got {alpha!r}'
        )
    return float(alpha)
