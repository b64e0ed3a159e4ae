"""The math of ACRST (Zhang et al., AAAI 2022) as small pure functions (tensor in, tensor out).

* :func:`two_stage_filter` - stage 1 ``score >= tau_cls``; stage 2 drops detections whose class the
  image-level multi-label classifier scores below ``tau_ml``.
* :func:`selective_regression_mask` - which pseudo instances get a box-regression loss (pasted only).

The CropBank statistics (pseudo-recall PR, the AFFR distribution mu) live with the bank in
:mod:`mmssod.datasets.cropbank`; CopyPaste's occlusion rule with the paste transform in
:mod:`mmssod.datasets.transforms.acrst_paste` (dataloader workers import no model code).
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
