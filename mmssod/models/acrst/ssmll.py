"""SSMLL: ACRST's semi-supervised multi-label image classifier (mmpretrain scope).

A Mean-Teacher image classifier trained on labeled images (targets = the classes present) and unlabeled
images (targets = the teacher's image-level pseudo-labels on a *weak* view, learnt by the student on a
*strong* view) with a focal binary cross-entropy. A supervised pre-training stage comes first (the paper:
2k / 2k / 6k iterations for VOC / COCO-standard / COCO-additional); when it ends the teacher becomes a copy
of the student and the unlabeled loss starts. Its per-image class scores on the unlabeled set feed stage 2
of ACRST's pseudo-label filter (written by ``tools/acrst/ssmll_scores.py``). The EMA update of the teacher
is mmdet's ``MeanTeacherHook`` (it only needs ``model.teacher`` / ``model.student``).

Also here: :func:`negative_label_precision_recall`, the image-level quality of the negative labels that
filter stage 2 trusts. Its data side lives with the other datasets and data preprocessors:
:class:`~mmssod.datasets.CocoMultiLabelDataset` (image-level multi-label targets from a COCO-format detection
file) and :class:`~mmssod.models.data_preprocessors.MultiViewClsDataPreprocessor` (the weak / strong views).
"""

from __future__ import annotations

import copy
import math
from typing import Optional

import numpy as np
import torch
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor


def image_level_targets(label_lists: list, num_classes: int, device=None) -> Tensor:
    """Multi-hot image-level targets from per-image class indices.

    Args:
        label_lists (list[list[int] | Tensor]): class indices present in each image (duplicates allowed);
            tensors may live on ``device`` (their lengths are known on the host: nothing waits for it).
        num_classes (int): K.
        device (torch.device, optional): where the targets are made. Defaults to None: the CPU.

    Returns:
        Tensor: (N, K) float multi-hot targets.
    """
    targets = torch.zeros(len(label_lists), num_classes, device=device)
    counts = [len(labels) for labels in label_lists]
    if sum(counts):
        rows = torch.from_numpy(np.repeat(np.arange(len(counts)), counts)).to(device, non_blocking=True)
        cols = torch.cat([torch.as_tensor(labels).reshape(-1) for labels in label_lists if len(labels)])
        targets[rows, cols.to(device, non_blocking=True).long()] = 1.0
    return targets


def teacher_pseudo_targets(teacher_logits: Tensor, threshold: float = 0.5) -> Tensor:
    """Image-level pseudo-labels of unlabeled images: classes the teacher scores at or above ``threshold``.

    Args:
        teacher_logits (Tensor): (N, K) teacher logits.
        threshold (float): sigmoid-score threshold. Defaults to 0.5.

    Returns:
        Tensor: (N, K) float multi-hot pseudo targets.
    """
    return (teacher_logits.sigmoid() >= threshold).float()


def negative_label_precision_recall(scores: Tensor, targets: Tensor, tau_ml: float = 0.2) -> dict:
    """Image-level quality of the negative labels ("class k is absent from image i": score < ``tau_ml``).

    Filter stage 2 drops a pseudo-label of class k on image i when SSMLL says class k is absent there, so
    what matters is how often such a negative label is right (precision) and how many absent classes it
    finds (recall), over all (image, class) pairs.

    Args:
        scores (Tensor): (N, K) SSMLL sigmoid scores.
        targets (Tensor): (N, K) multi-hot ground truth (1 = present).
        tau_ml (float): threshold under which a class is a negative label. Defaults to 0.2.

    Returns:
        dict: ``precision`` and ``recall`` of the negative labels (NaN when undefined), the counts
        ``num_negative_labels``, ``num_absent``, ``num_correct``, and ``num_present_dropped`` (present classes
        wrongly called absent: their correct pseudo-labels would be filtered out).
    """
    if scores.shape != targets.shape or scores.dim() != 2:
        raise ValueError(
            f'scores {tuple(scores.shape)} and targets {tuple(targets.shape)} must both be (N, K)'
        )
    negative = scores < tau_ml
    absent = targets <= 0
    correct = int((negative & absent).sum())
    num_negative, num_absent = int(negative.sum()), int(absent.sum())
    return {
        'precision': correct / num_negative if num_negative else math.nan,
        'recall': correct / num_absent if num_absent else math.nan,
        'num_negative_labels': num_negative,
        'num_absent': num_absent,
        'num_correct': correct,
        'num_present_dropped': int((negative & ~absent).sum()),
    }


@MODELS.register_module()
class SSMLL(BaseModel):
    """Semi-supervised multi-label classifier: a Mean Teacher over an mmpretrain ``ImageClassifier``.

    Loss = focal BCE of the student on labeled images (multi-hot ground truth) + ``unsup_weight`` x focal BCE
    of the student's *strong* view of unlabeled images against the teacher's thresholded sigmoid scores on
    their *weak* view. For the first ``pretrain_iters`` iterations only the labeled loss is used (supervised
    pre-training); the first iteration after it starts by copying the student into the teacher. Inputs are
    either ``[weak, strong]`` batches (mmpretrain's ``MultiView`` transform with two pipelines, packed by
    :class:`~mmssod.models.data_preprocessors.MultiViewClsDataPreprocessor`) or one batch used as both
    views. Labeled images are learnt from their weak view.

    The head's bias starts at the prior ``log(p / (1 - p))`` (``prior_prob`` p = 0.01, as for focal losses
    in detection): an untrained classifier then scores every class near p, so the first pseudo-targets are
    "absent" instead of a coin flip per class.

    Prediction uses the teacher (or the student, ``predict_on='student'``) and returns sigmoid class scores in
    ``pred_score``.

    Args:
        classifier (dict): an mmpretrain ``ImageClassifier`` config whose head outputs K logits
            (e.g. ``MultiLabelLinearClsHead``, whose linear layer is ``head.fc``).
        loss (dict): the loss, default mmpretrain's sigmoid ``FocalLoss``.
        unsup_weight (float): weight of the unlabeled loss. Defaults to 1.0.
        pseudo_thr (float): teacher score at which a class becomes an image-level pseudo-label. Defaults
            to 0.5.
        pretrain_iters (int): supervised-only iterations before the unlabeled loss. Defaults to 0.
        prior_prob (float, optional): initial class score of the head (bias init); None keeps the head's
            own initialisation. Defaults to 0.01.
        predict_on (str): 'teacher' or 'student'. Defaults to 'teacher'.
        data_preprocessor (dict, optional): a ``MultiViewClsDataPreprocessor`` (or ``ClsDataPreprocessor``)
            config.
        init_cfg (dict, optional): initialisation config.
    """

    def __init__(
        self,
        classifier: dict,
        loss: Optional[dict] = None,
        unsup_weight: float = 1.0,
        pseudo_thr: float = 0.5,
        pretrain_iters: int = 0,
        prior_prob: Optional[float] = 0.01,
        predict_on: str = 'teacher',
        data_preprocessor: Optional[dict] = None,
        init_cfg: Optional[dict] = None,
    ) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='ClsDataPreprocessor')
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if predict_on not in ('teacher', 'student'):
            raise ValueError(f"SSMLL.predict_on must be 'teacher' or 'student', got {predict_on!r}")
        if not 0 <= pseudo_thr <= 1:
            raise ValueError(f'SSMLL.pseudo_thr must be in [0, 1], got {pseudo_thr}')
        if unsup_weight < 0:
            raise ValueError(f'SSMLL.unsup_weight must be >= 0, got {unsup_weight}')
        if pretrain_iters < 0:
            raise ValueError(f'SSMLL.pretrain_iters must be >= 0, got {pretrain_iters}')
        if prior_prob is not None and not 0 < prior_prob < 1:
            raise ValueError(f'SSMLL.prior_prob must be in (0, 1) or None, got {prior_prob}')
        self.student = MODELS.build(copy.deepcopy(classifier))
        self.teacher = MODELS.build(copy.deepcopy(classifier))
        self.teacher.requires_grad_(False)
        self.loss_module = MODELS.build(loss or dict(type='FocalLoss', gamma=2.0, alpha=0.25))
        self.unsup_weight = unsup_weight
        self.pseudo_thr = pseudo_thr
        self.pretrain_iters = int(pretrain_iters)
        self.prior_prob = prior_prob
        self.predict_on = predict_on
        self.num_classes = self.student.head.num_classes
        self._set_prior()

    def _set_prior(self) -> None:
        """Head bias = log(p / (1 - p)) in student and teacher (no-op with ``prior_prob=None``)."""
        if self.prior_prob is None:
            return
        for classifier in (self.student, self.teacher):
            fc = getattr(classifier.head, 'fc', None)
            if fc is None or getattr(fc, 'bias', None) is None:
                raise ValueError(
                    'SSMLL.prior_prob needs a head with a biased linear layer head.fc '
                    f'({type(classifier.head).__name__} has none): use MultiLabelLinearClsHead or '
                    'prior_prob=None'
                )
            with torch.no_grad():
                fc.bias.fill_(math.log(self.prior_prob / (1 - self.prior_prob)))

    def init_weights(self) -> None:
        """The classifiers' own initialisation, then the prior bias of the head."""
        super().init_weights()
        self._set_prior()

    @staticmethod
    def _logits(classifier, inputs: Tensor) -> Tensor:
        return classifier.head(classifier.extract_feat(inputs))

    def forward(self, inputs, data_samples: Optional[list] = None, mode: str = 'tensor'):
        """mmengine entry point: 'loss', 'predict' or 'tensor' (student logits)."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        return self._logits(self.student, self._views(inputs)[0])

    @staticmethod
    def _views(inputs) -> tuple[Tensor, Tensor]:
        """(weak, strong) batches from ``[weak, strong]`` or a single batch (both views the same)."""
        if isinstance(inputs, (list, tuple)):
            if len(inputs) != 2:
                raise ValueError(f'SSMLL expects 2 views (weak, strong), got {len(inputs)}')
            return inputs[0], inputs[1]
        return inputs, inputs

    def in_pretrain(self) -> bool:
        """True during the supervised pre-training stage."""
        return MessageHub.get_current_instance().get_info('iter', 0) < self.pretrain_iters

    def loss(self, inputs, data_samples: list) -> dict:
        """Focal BCE on labeled images plus the teacher-pseudo-labelled focal BCE on unlabeled images.

        Args:
            inputs (Tensor | list[Tensor]): (N, 3, H, W) normalised images, or ``[weak, strong]`` of them.
            data_samples (list[DataSample]): with ``gt_label`` and ``labeled`` metainfo.

        Returns:
            dict: ``loss_sup`` and ``loss_unsup`` (zero during the pre-training stage).
        """
        weak, strong = self._views(inputs)
        device = weak.device
        labeled = [bool(ds.metainfo.get('labeled', True)) for ds in data_samples]  # known on the host
        pretrain = self.in_pretrain()
        if (
            self.pretrain_iters > 0
            and MessageHub.get_current_instance().get_info('iter', 0) == self.pretrain_iters
        ):
            self.teacher.load_state_dict(
                self.student.state_dict()
            )  # the teacher starts from the pre-trained student
        unsup = [not (is_labeled or pretrain) for is_labeled in labeled]
        # rows as index tensors built on the host: boolean masks of device tensors would wait for the device
        sup_rows, unsup_rows = (
            torch.tensor(np.flatnonzero(flags)).to(device, non_blocking=True) for flags in (labeled, unsup)
        )
        is_unsup = torch.tensor(unsup).to(device, non_blocking=True)
        student_inputs = torch.where(is_unsup[:, None, None, None], strong, weak)
        logits = self._logits(self.student, student_inputs)
        targets = image_level_targets(
            [ds.gt_label if 'gt_label' in ds else [] for ds in data_samples], self.num_classes, device
        ).to(logits)
        if any(unsup):
            with torch.no_grad():
                self.teacher.eval()
                pseudo = teacher_pseudo_targets(self._logits(self.teacher, weak[unsup_rows]), self.pseudo_thr)
            targets[unsup_rows] = pseudo.to(targets)
        losses = {}
        for name, flags, rows, weight in (
            ('loss_sup', labeled, sup_rows, 1.0),
            ('loss_unsup', unsup, unsup_rows, self.unsup_weight),
        ):
            if any(flags):
                losses[name] = weight * self.loss_module(logits[rows], targets[rows])
            else:
                losses[name] = logits.sum() * 0.0
        return losses

    @torch.no_grad()
    def predict(self, inputs, data_samples: Optional[list] = None) -> list:
        """Sigmoid class scores per image in ``pred_score`` (and the thresholded ``pred_label``)."""
        model = self.teacher if self.predict_on == 'teacher' else self.student
        scores = self._logits(model, self._views(inputs)[0]).sigmoid()
        if data_samples is None:
            data_samples = [DataSample() for _ in range(len(scores))]
        for ds, score in zip(data_samples, scores):
            ds.set_pred_score(score)
            ds.set_pred_label(torch.nonzero(score >= self.pseudo_thr).flatten())
        return data_samples
