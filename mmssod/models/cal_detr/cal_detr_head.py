"""Cal-DETR heads: mmdet's Deformable-DETR and DINO heads with training-time calibration.

``loss_by_feat`` is overridden. Before the parent computes the losses, the last decoder layer's logits
of the matching queries are replaced by their uncertainty-modulated version (so they drive both the Hungarian
matching and that layer's classification loss); auxiliary layers, the encoder (two-stage) outputs and DINO's
denoising queries keep their raw logits. The logit mixing loss is then added as its own key, ``loss_mix``.
Prediction is inherited unchanged, as in the paper: inference cost and outputs are those of the raw head.
``modulate_at_test=True`` (not in the paper) predicts from the modulated last-layer logits instead, the ones
the training supervised; configs/cal_detr/README.md says why a Deformable-DETR may need it.
"""

from __future__ import annotations

from typing import Dict, List, Optional

import torch
from mmdet.models.dense_heads import DeformableDETRHead, DINOHead
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, InstanceList, OptInstanceList, reduce_mean
from torch import Tensor

from .cal_detr_utils import (
    MIXING_TARGET_SHARES,
    MODULATION_MODES,
    mix_logits,
    mixing_targets,
    modulate_logits,
    validate_mix_alpha,
)

DEFAULT_LOSS_MIX = dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=0.5)


class CalDETRMixin:
    """Switchable Cal-DETR pieces shared by :class:`CalDeformableDETRHead` and :class:`CalDINOHead`.

    Args:
        logit_modulation (bool): Modulate the last layer's logits by ``1 - tanh(Var over layers)``.
        modulation_mode (str): 'paper' (product) or 'released' (the official code's subtraction, for
            comparison only).
        logit_mixing (bool): Add the logit mixing regulariser ``loss_mix``.
        mix_alpha (float): Mixing coefficient alpha in (0, 1].
        mix_target_share (str): How the other classes share ``1 - alpha`` in the mixing targets: 'class'
            (uniformly over the other classes present) or 'query' (``(1 - alpha) / (P - 1)`` per other
            class present, the official code's rule); see :func:`.cal_detr_utils.mixing_targets`.
        loss_mix (dict): Loss between mixed logits and soft targets; its ``loss_weight`` is lambda.
        modulate_at_test (bool): Predict from the modulated last-layer logits (not in the paper, which
            predicts from the raw ones). Needs ``logit_modulation=True``.
    """

    def __init__(
        self,
        *args,
        logit_modulation: bool = True,
        modulation_mode: str = 'paper',
        logit_mixing: bool = True,
        mix_alpha: float = 0.9,
        mix_target_share: str = 'class',
        loss_mix: ConfigType = DEFAULT_LOSS_MIX,
        modulate_at_test: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)  # the mmdet head (next in the MRO) builds loss_cls first
        if modulation_mode not in MODULATION_MODES:
            raise ValueError(
                f'{type(self).__name__}: `modulation_mode` must be one of {MODULATION_MODES}, '
                f'got {modulation_mode!r}'
            )
        if mix_target_share not in MIXING_TARGET_SHARES:
            raise ValueError(
                f'{type(self).__name__}: `mix_target_share` must be one of {MIXING_TARGET_SHARES}, '
                f'got {mix_target_share!r}'
            )
        if not getattr(self.loss_cls, 'use_sigmoid', False):
            raise ValueError(
                f'{type(self).__name__} needs a sigmoid classification loss (`loss_cls.use_sigmoid=True`, '
                'as in the Deformable-DETR / DINO configs): the mixing targets are per-class soft labels'
            )
        if modulate_at_test and not logit_modulation:
            raise ValueError(
                f'{type(self).__name__}: `modulate_at_test=True` predicts from the modulated logits, but '
                '`logit_modulation=False`; switch the modulation on or leave `modulate_at_test=False`'
            )
        self.logit_modulation = bool(logit_modulation)
        self.modulate_at_test = bool(modulate_at_test)
        self.modulation_mode = modulation_mode
        self.logit_mixing = bool(logit_mixing)
        self.mix_alpha = validate_mix_alpha(mix_alpha)
        self.mix_target_share = mix_target_share
        self.loss_mix = MODELS.build(loss_mix) if self.logit_mixing else None
        if self.loss_mix is not None and not getattr(self.loss_mix, 'use_sigmoid', False):
            raise ValueError(f'{type(self).__name__}: `loss_mix` must be a sigmoid loss, got {loss_mix}')

    def calibrated_last_layer(self, all_layers_cls_scores: Tensor) -> Tensor:
        """Last decoder layer's logits as used for matching and loss: modulated when enabled.

        Args:
            all_layers_cls_scores (Tensor): Class logits of all decoder layers, shape (L, B, Q, C).

        Returns:
            Tensor: last-layer logits, shape (B, Q, C).
        """
        if not self.logit_modulation:
            return all_layers_cls_scores[-1]
        return modulate_logits(all_layers_cls_scores, self.modulation_mode)

    def predict_by_feat(self, all_layers_cls_scores: Tensor, *args, **kwargs):
        """The parent's prediction, from the modulated last-layer logits when ``modulate_at_test``."""
        if self.modulate_at_test:
            all_layers_cls_scores = _replace_last_layer(
                all_layers_cls_scores, self.calibrated_last_layer(all_layers_cls_scores)
            )
        return super().predict_by_feat(all_layers_cls_scores, *args, **kwargs)

    def loss_mix_by_feat(
        self,
        cls_scores: Tensor,
        bbox_preds: Tensor,
        batch_gt_instances: InstanceList,
        batch_img_metas: List[dict],
    ) -> Tensor:
        """Logit mixing loss of the last decoder layer.

        The positives are the queries that the head's Hungarian assigner matches to a ground truth, with the
        same (deterministic) matching as the layer's own classification loss. Prototype and mixing run over
        all positives of the batch on this process.

        Args:
            cls_scores (Tensor): Last-layer logits as used by its classification loss, shape (B, Q, C).
            bbox_preds (Tensor): Last-layer boxes, normalized (cx, cy, w, h), shape (B, Q, 4).
            batch_gt_instances (list[InstanceData]): Ground truth (``bboxes``, ``labels``) per image.
            batch_img_metas (list[dict]): Meta information per image.

        Returns:
            Tensor: ``lambda * L_mix`` (lambda = ``loss_mix.loss_weight``), a scalar; 0 (still attached to
            the graph) when the batch has no positives.
        """
        num_imgs = cls_scores.size(0)
        labels_list = self.get_targets(
            [cls_scores[i] for i in range(num_imgs)],
            [bbox_preds[i] for i in range(num_imgs)],
            batch_gt_instances,
            batch_img_metas,
        )[0]
        labels = torch.cat(labels_list)
        logits = cls_scores.reshape(-1, self.cls_out_channels)
        is_pos = labels < self.num_classes
        num_pos = reduce_mean(logits.new_tensor([float(is_pos.sum())])).clamp(min=1).item()
        if not bool(is_pos.any()):
            return logits.sum() * 0
        pos_logits = logits[is_pos]
        mixed = mix_logits(pos_logits, self.mix_alpha)
        targets = mixing_targets(labels[is_pos], self.cls_out_channels, self.mix_alpha, self.mix_target_share)
        return self.loss_mix(mixed, targets.to(mixed.dtype), avg_factor=num_pos)


def _replace_last_layer(all_layers: Tensor, last: Tensor, start: int = 0) -> Tensor:
    """Copy of ``all_layers`` (L, B, Q, C) with the last layer's queries ``start:`` set to ``last``."""
    if start:
        last = torch.cat([all_layers[-1, :, :start], last], dim=1)
    return torch.cat([all_layers[:-1], last[None]], dim=0)


@MODELS.register_module()
class CalDeformableDETRHead(CalDETRMixin, DeformableDETRHead):
    """Cal-DETR head for Deformable-DETR (modulation + logit mixing at training time).

    Args:
        logit_modulation (bool): Uncertainty-guided logit modulation. Defaults to True.
        modulation_mode (str): 'paper' or 'released'. Defaults to 'paper'.
        logit_mixing (bool): Logit mixing regulariser. Defaults to True.
        mix_alpha (float): Mixing coefficient. Defaults to 0.9.
        mix_target_share (str): 'class' or 'query' reading of the mixing targets. Defaults to 'class'.
        loss_mix (dict): Mixing loss; ``loss_weight`` is lambda. Defaults to a sigmoid focal loss
            (gamma 2, alpha 0.25) with ``loss_weight=0.5``.
        modulate_at_test (bool): Predict from the modulated last-layer logits (not in the paper).
            Defaults to False.
        *args, **kwargs: Arguments of :class:`mmdet.models.DeformableDETRHead`.
    """

    def loss_by_feat(
        self,
        all_layers_cls_scores: Tensor,
        all_layers_bbox_preds: Tensor,
        enc_cls_scores: Optional[Tensor],
        enc_bbox_preds: Optional[Tensor],
        batch_gt_instances: InstanceList,
        batch_img_metas: List[dict],
        batch_gt_instances_ignore: OptInstanceList = None,
    ) -> Dict[str, Tensor]:
        """Parent losses on calibrated last-layer logits, plus ``loss_mix`` (arguments as the parent's)."""
        last = self.calibrated_last_layer(all_layers_cls_scores)
        loss_dict = super().loss_by_feat(
            _replace_last_layer(all_layers_cls_scores, last)
            if self.logit_modulation
            else all_layers_cls_scores,
            all_layers_bbox_preds,
            enc_cls_scores,
            enc_bbox_preds,
            batch_gt_instances,
            batch_img_metas,
            batch_gt_instances_ignore,
        )
        if self.logit_mixing:
            loss_dict['loss_mix'] = self.loss_mix_by_feat(
                last, all_layers_bbox_preds[-1], batch_gt_instances, batch_img_metas
            )
        return loss_dict


@MODELS.register_module()
class CalDINOHead(CalDETRMixin, DINOHead):
    """Cal-DETR head for DINO: calibrates the matching queries only, never the denoising queries.

    Args: as :class:`CalDeformableDETRHead`, with the remaining arguments those of
    :class:`mmdet.models.DINOHead`.
    """

    def loss_by_feat(
        self,
        all_layers_cls_scores: Tensor,
        all_layers_bbox_preds: Tensor,
        enc_cls_scores: Tensor,
        enc_bbox_preds: Tensor,
        batch_gt_instances: InstanceList,
        batch_img_metas: List[dict],
        dn_meta: Optional[Dict[str, int]],
        batch_gt_instances_ignore: OptInstanceList = None,
    ) -> Dict[str, Tensor]:
        """Parent losses with the matching queries' last-layer logits calibrated, plus ``loss_mix``."""
        num_dn = dn_meta['num_denoising_queries'] if dn_meta is not None else 0
        last = self.calibrated_last_layer(all_layers_cls_scores[:, :, num_dn:])
        loss_dict = super().loss_by_feat(
            _replace_last_layer(all_layers_cls_scores, last, num_dn)
            if self.logit_modulation
            else all_layers_cls_scores,
            all_layers_bbox_preds,
            enc_cls_scores,
            enc_bbox_preds,
            batch_gt_instances,
            batch_img_metas,
            dn_meta,
            batch_gt_instances_ignore,
        )
        if self.logit_mixing:
            loss_dict['loss_mix'] = self.loss_mix_by_feat(
                last, all_layers_bbox_preds[-1, :, num_dn:], batch_gt_instances, batch_img_metas
            )
        return loss_dict


__all__ = ['CalDETRMixin', 'CalDeformableDETRHead', 'CalDINOHead']
