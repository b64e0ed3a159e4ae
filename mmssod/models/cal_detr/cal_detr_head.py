"""Cal-DETR heads: mmdet's Deformable-DETR and DINO heads with training-time calibration.

``loss_by_feat`` is overridden. Before the parent computes the losses, the last decoder layer's logits
of the matching queries are replaced by their uncertainty-modulated version (so they drive both the Hungarian
matching and that layer's classification loss); auxiliary layers, the encoder (two-stage) outputs and DINO's
denoising queries keep their raw logits. The logit mixing loss is then added as its own key, ``loss_mix``,
over the positives of that same matching (the parent's Hungarian assignment is kept, not run a second time).
Prediction is inherited unchanged, as in the paper: inference cost and outputs are those of the raw head.
``modulate_at_test=True`` (not in the paper) predicts from the modulated last-layer logits instead, the ones
the training supervised; configs/cal_detr/README.md says why a Deformable-DETR may need it.
"""

from __future__ import annotations

import difflib
import inspect
from typing import Dict, List, Optional

import torch
from mmdet.models.dense_heads import DeformableDETRHead, DINOHead
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, InstanceList, OptInstanceList, reduce_mean
from mmengine.dist import is_distributed
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


def _named_params(func) -> list:
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    params = inspect.signature(func).parameters.values()
    return [p.name for p in params if p.kind in named and p.name != 'self']


def _takes_var_kwargs(func) -> bool:
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(func).parameters.values())


def check_head_kwargs(head: type, kwargs: dict) -> None:
    """Raise, naming ``head``, when ``kwargs`` holds an argument that neither its mmdet head takes.

    Without this check a misspelled Cal-DETR argument (``mix_alpa``) reaches mmdet's ``DETRHead``, whose
    error names ``DETRHead`` instead of the head in the config.

    Args:
        head (type): the Cal-DETR head class (``CalDETRMixin`` first in its MRO).
        kwargs (dict): the keyword arguments passed on to the mmdet head.

    Raises:
        TypeError: naming ``head``, the unknown arguments, the closest accepted names and the mmdet head.
    """
    mmdet_head = head.__mro__[head.__mro__.index(CalDETRMixin) + 1]
    accepted = set()
    for cls in mmdet_head.__mro__:
        if '__init__' not in vars(cls):
            continue
        init = vars(cls)['__init__']
        accepted.update(_named_params(init))
        if not _takes_var_kwargs(init):
            break
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        known = sorted(accepted | set(_named_params(CalDETRMixin.__init__)))
        named = [
            f'{key!r}'
            + ''.join(f' (did you mean {g!r}?)' for g in difflib.get_close_matches(key, known, n=1))
            for key in unknown
        ]
        raise TypeError(
            f'{head.__name__} got unexpected argument(s) {", ".join(named)}; it takes the Cal-DETR arguments '
            f'{", ".join(_named_params(CalDETRMixin.__init__))} and those of mmdet\'s {mmdet_head.__name__}'
        )


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
        check_head_kwargs(type(self), kwargs)
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

    def _get_targets_single(
        self, cls_score: Tensor, bbox_pred: Tensor, gt_instances, img_meta: dict
    ) -> tuple:
        """The parent's targets of one image; the assignment of a query set :meth:`loss_mix_by_feat` will
        read (``self._mixing_queries``) is kept, so the mixing loss reuses the matching of the layer's own
        classification loss instead of running the Hungarian assigner a second time."""
        targets = super()._get_targets_single(cls_score, bbox_pred, gt_instances, img_meta)
        for i, queries in enumerate(getattr(self, '_mixing_queries', None) or ()):
            if _same_view(cls_score, queries):
                self._mixing_assignment[i] = (targets[0], targets[4])  # labels (Q,), positive queries
        return targets

    def _parent_loss_keeping_assignment(
        self, mixing_queries: Tensor, parent_loss, *args
    ) -> tuple[dict, dict]:
        """``parent_loss(*args)``, keeping the Hungarian assignment of ``mixing_queries`` (B, Q, C): a view
        of the last decoder layer's logits as the parent's loss reads them."""
        self._mixing_queries = list(mixing_queries) if self.logit_mixing else None
        self._mixing_assignment = {}
        try:
            return parent_loss(*args), self._mixing_assignment
        finally:
            self._mixing_queries, self._mixing_assignment = None, {}

    def loss_mix_by_feat(
        self,
        cls_scores: Tensor,
        bbox_preds: Tensor,
        batch_gt_instances: InstanceList,
        batch_img_metas: List[dict],
        assignment: Optional[dict] = None,
    ) -> Tensor:
        """Logit mixing loss of the last decoder layer.

        The positives are the queries that the head's Hungarian assigner matches to a ground truth, with the
        same (deterministic) matching as the layer's own classification loss: ``assignment`` when the
        parent's loss kept it, else the assigner runs here. Prototype and mixing run over all positives of
        the batch on this process, in query order.

        Args:
            cls_scores (Tensor): Last-layer logits as used by its classification loss, shape (B, Q, C).
            bbox_preds (Tensor): Last-layer boxes, normalized (cx, cy, w, h), shape (B, Q, 4).
            batch_gt_instances (list[InstanceData]): Ground truth (``bboxes``, ``labels``) per image.
            batch_img_metas (list[dict]): Meta information per image.
            assignment (dict, optional): image index -> (labels (Q,), positive query indices) of these
                logits' assignment. Defaults to None: assign here.

        Returns:
            Tensor: ``lambda * L_mix`` (lambda = ``loss_mix.loss_weight``), a scalar; 0 (still attached to
            the graph) when the batch has no positives.
        """
        num_imgs, num_queries = cls_scores.shape[:2]
        if assignment is None or len(assignment) != num_imgs:
            assignment = {}
            for i in range(num_imgs):
                targets = self._get_targets_single(
                    cls_scores[i], bbox_preds[i], batch_gt_instances[i], batch_img_metas[i]
                )
                assignment[i] = (targets[0], targets[4])
        # positives as indices (their count is known on the host): a mask would wait for the device
        pos_inds = torch.cat([assignment[i][1] + i * num_queries for i in range(num_imgs)])
        pos_labels = torch.cat([assignment[i][0][assignment[i][1]] for i in range(num_imgs)])
        num_pos = float(len(pos_inds))
        if is_distributed():
            num_pos = reduce_mean(cls_scores.new_tensor([num_pos])).item()
        num_pos = max(num_pos, 1.0)
        logits = cls_scores.reshape(-1, self.cls_out_channels)
        if len(pos_inds) == 0:
            return logits.sum() * 0
        pos_logits = logits[pos_inds]
        mixed = mix_logits(pos_logits, self.mix_alpha)
        targets = mixing_targets(pos_labels, self.cls_out_channels, self.mix_alpha, self.mix_target_share)
        return self.loss_mix(mixed, targets.to(mixed.dtype), avg_factor=num_pos)


def _same_view(a: Tensor, b: Tensor) -> bool:
    """Whether ``a`` and ``b`` are views of the same elements (same storage offset, shape and strides)."""
    return a.data_ptr() == b.data_ptr() and a.shape == b.shape and a.stride() == b.stride()


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
        scores = all_layers_cls_scores
        if self.logit_modulation:
            scores = _replace_last_layer(scores, self.calibrated_last_layer(scores))
        loss_dict, assignment = self._parent_loss_keeping_assignment(
            scores[-1],
            super().loss_by_feat,
            scores,
            all_layers_bbox_preds,
            enc_cls_scores,
            enc_bbox_preds,
            batch_gt_instances,
            batch_img_metas,
            batch_gt_instances_ignore,
        )
        if self.logit_mixing:
            loss_dict['loss_mix'] = self.loss_mix_by_feat(
                scores[-1], all_layers_bbox_preds[-1], batch_gt_instances, batch_img_metas, assignment
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
        scores = all_layers_cls_scores
        if self.logit_modulation:
            scores = _replace_last_layer(scores, self.calibrated_last_layer(scores[:, :, num_dn:]), num_dn)
        loss_dict, assignment = self._parent_loss_keeping_assignment(
            scores[-1, :, num_dn:],
            super().loss_by_feat,
            scores,
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
                scores[-1, :, num_dn:],
                all_layers_bbox_preds[-1, :, num_dn:],
                batch_gt_instances,
                batch_img_metas,
                assignment,
            )
        return loss_dict


__all__ = ['CalDETRMixin', 'CalDeformableDETRHead', 'CalDINOHead']
