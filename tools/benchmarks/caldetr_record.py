"""Cal-DETR heads for the bench's test runs: the same predictions, each with the ``tanh(u)`` of its query.

``u = Var_l(z_l)`` is the Cal head's uncertainty of a query's class logit over the decoder layers
(:func:`mmssod.models.cal_detr.cal_detr_utils.logit_uncertainty`); the training modulates the last layer's
logit with ``tanh(u)`` (the release: ``z_L - tanh(u)``). These subclasses add, to each prediction, the
``tanh(u)`` of the query and class it was read from (``pred_instances.tanh_u``, shape (K,)), so the bench can
compare the raw test logits with the modulated ones the loss trained. Scores, boxes and labels are the parent
head's, unchanged. ``caldetr_bench.py`` names them in its test configs (``custom_imports`` of this module).
"""

from __future__ import annotations

import torch
from mmdet.registry import MODELS
from torch import Tensor

from mmssod.models.cal_detr.cal_detr_head import CalDeformableDETRHead, CalDINOHead
from mmssod.models.cal_detr.cal_detr_utils import logit_uncertainty


def kept_query_values(cls_logits: Tensor, values: Tensor, scores: Tensor) -> Tensor:
    """The per-(query, class) ``values`` of the predictions mmdet's DETR heads keep from ``cls_logits``.

    mmdet's ``DETRHead._predict_by_feat_single`` (sigmoid classification) keeps the top ``K`` entries of the
    flattened sigmoid scores, query ``index // C`` and class ``index % C``; the same top-k is taken here and
    its scores must equal the kept ``scores`` exactly.

    Args:
        cls_logits (Tensor): The last-layer logits the prediction was read from, shape (Q, C).
        values (Tensor): One value per query and class, shape (Q, C).
        scores (Tensor): The kept predictions' scores, shape (K,), K <= Q * C.

    Returns:
        Tensor: ``values`` at the kept predictions' (query, class), shape (K,).

    Raises:
        RuntimeError: when the top-k scores differ from ``scores`` (the parent head kept other predictions).
    """
    top, index = cls_logits.sigmoid().reshape(-1).topk(scores.numel())
    if not torch.equal(top, scores):
        raise RuntimeError(
            'the predictions were not the top-k sigmoid scores of the last-layer logits; this recording head '
            'only supports mmdet DETR heads with a sigmoid classification loss and no NMS'
        )
    return values.reshape(-1)[index]


class UncertaintyRecordingMixin:
    """Adds ``pred_instances.tanh_u`` (K,) to the Cal head's predictions; everything else is inherited."""

    def predict_by_feat(
        self, all_layers_cls_scores: Tensor, all_layers_bbox_preds: Tensor, batch_img_metas, rescale=False
    ):
        """The parent's predictions, each image's with the ``tanh(u)`` of its kept (query, class) pairs.

        Args:
            all_layers_cls_scores (Tensor): Class logits of every decoder layer, shape (L, B, Q, C).
            all_layers_bbox_preds (Tensor): Boxes of every decoder layer, shape (L, B, Q, 4).
        """
        results = super().predict_by_feat(
            all_layers_cls_scores, all_layers_bbox_preds, batch_img_metas, rescale=rescale
        )
        scored = (
            self.calibrated_last_layer(all_layers_cls_scores)
            if self.modulate_at_test
            else all_layers_cls_scores[-1]
        )
        tanh_u = torch.tanh(logit_uncertainty(all_layers_cls_scores))  # (B, Q, C)
        for i, res in enumerate(results):
            res.tanh_u = kept_query_values(scored[i], tanh_u[i], res.scores)
        return results


@MODELS.register_module()
class UncertaintyRecordingCalDINOHead(UncertaintyRecordingMixin, CalDINOHead):
    """:class:`CalDINOHead` whose predictions carry ``tanh_u``."""


@MODELS.register_module()
class UncertaintyRecordingCalDeformableDETRHead(UncertaintyRecordingMixin, CalDeformableDETRHead):
    """:class:`CalDeformableDETRHead` whose predictions carry ``tanh_u``."""
