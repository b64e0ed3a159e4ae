"""SSMLL: ACRST's semi-supervised multi-label image classifier (mmpretrain scope).

A Mean-Teacher image classifier trained on labeled images (targets = the classes present) and unlabeled
images (targets = the teacher's image-level pseudo-labels) with a focal binary cross-entropy. Its per-image
class scores on the unlabeled set feed stage 2 of ACRST's pseudo-label filter (written by
``tools/acrst/ssmll_scores.py``). The EMA update of the teacher is mmdet's ``MeanTeacherHook`` (it only
needs ``model.teacher`` / ``model.student``).

Also here: :class:`CocoMultiLabelDataset`, which turns a COCO-format detection file into image-level
multi-label targets (``labeled=False`` for the unlabeled split).
"""

from __future__ import annotations

import copy
import os.path as osp
from typing import Optional

import torch
from mmengine.model import BaseModel
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS, MODELS
from mmpretrain.structures import DataSample
from torch import Tensor


def image_level_targets(label_lists: list[list[int]], num_classes: int) -> Tensor:
    """Multi-hot image-level targets from per-image lists of class indices.

    Args:
        label_lists (list[list[int]]): class indices present in each image (duplicates allowed).
        num_classes (int): K.

    Returns:
        Tensor: (N, K) float multi-hot targets.
    """
    targets = torch.zeros(len(label_lists), num_classes)
    for i, labels in enumerate(label_lists):
        if len(labels):
            targets[i, torch.as_tensor(labels, dtype=torch.long)] = 1.0
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


@DATASETS.register_module()
class CocoMultiLabelDataset(BaseDataset):
    """Image-level multi-label classification view of a COCO-format detection annotation file.

    Each image's ``gt_label`` lists the (contiguous, 0-based) classes of its non-crowd boxes. With
    ``labeled=False`` the labels are dropped (the unlabeled split of a semi-supervised run); every sample
    carries ``labeled`` and ``img_id`` so the pipeline's ``PackInputs(meta_keys=...)`` can pass them on.

    Args:
        ann_file (str): COCO json, relative to ``data_root``.
        labeled (bool): keep the image-level labels. Defaults to True.
        **kwargs: passed to mmpretrain's ``BaseDataset`` (``data_root``, ``data_prefix``, ``pipeline``,
            ``metainfo`` with ``classes``, ...).
    """

    def __init__(self, ann_file: str, labeled: bool = True, **kwargs) -> None:
        self.labeled = labeled
        super().__init__(ann_file=ann_file, **kwargs)

    def load_data_list(self) -> list[dict]:
        """Read the COCO file with pycocotools; classes are matched by name when metainfo gives them."""
        from pycocotools.coco import COCO

        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(f'CocoMultiLabelDataset.ann_file {self.ann_file!r} does not exist')
        coco = COCO(self.ann_file)
        cats = sorted(coco.loadCats(coco.getCatIds()), key=lambda c: c['id'])
        names = [c['name'] for c in cats]
        classes = list(self._metainfo.get('classes') or names)
        missing = [n for n in names if n not in classes]
        if missing:
            raise ValueError(
                f'{self.ann_file}: categories {missing} are not in metainfo.classes {classes}; '
                'the dataset classes must match the annotation file'
            )
        self._metainfo['classes'] = tuple(classes)
        cat_to_label = {c['id']: classes.index(c['name']) for c in cats}
        img_prefix = self.data_prefix.get('img_path', self.data_prefix.get('img', ''))
        data_list = []
        for img_id in sorted(coco.getImgIds()):
            info = coco.loadImgs([img_id])[0]
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[img_id], iscrowd=False))
            labels = sorted({cat_to_label[a['category_id']] for a in anns}) if self.labeled else []
            data_list.append(
                {
                    'img_path': osp.join(img_prefix, info['file_name']),
                    'img_id': img_id,
                    'file_name': info['file_name'],
                    'gt_label': labels,
                    'labeled': self.labeled,
                }
            )
        return data_list


@MODELS.register_module()
class SSMLL(BaseModel):
    """Semi-supervised multi-label classifier: a Mean Teacher over an mmpretrain ``ImageClassifier``.

    Loss = focal BCE on labeled images (multi-hot ground truth) + ``unsup_weight`` x focal BCE on unlabeled
    images against the teacher's thresholded sigmoid scores. Prediction uses the teacher (or the student,
    ``predict_on='student'``) and returns sigmoid class scores in ``pred_score``.

    Args:
        classifier (dict): an mmpretrain ``ImageClassifier`` config whose head outputs K logits
            (e.g. ``MultiLabelLinearClsHead``).
        loss (dict): the loss, default mmpretrain's sigmoid ``FocalLoss``.
        unsup_weight (float): weight of the unlabeled loss. Defaults to 1.0.
        pseudo_thr (float): teacher score at which a class becomes an image-level pseudo-label. Defaults
            to 0.5.
        predict_on (str): 'teacher' or 'student'. Defaults to 'teacher'.
        data_preprocessor (dict, optional): an mmpretrain ``ClsDataPreprocessor`` config.
        init_cfg (dict, optional): initialisation config.
    """

    def __init__(
        self,
        classifier: dict,
        loss: Optional[dict] = None,
        unsup_weight: float = 1.0,
        pseudo_thr: float = 0.5,
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
        if not 0 <= pseudo_thr <= 1 or unsup_weight < 0:
            raise ValueError(
                f'SSMLL needs pseudo_thr in [0, 1] and unsup_weight >= 0, got {pseudo_thr}, {unsup_weight}'
            )
        self.student = MODELS.build(copy.deepcopy(classifier))
        self.teacher = MODELS.build(copy.deepcopy(classifier))
        self.teacher.requires_grad_(False)
        self.loss_module = MODELS.build(loss or dict(type='FocalLoss', gamma=2.0, alpha=0.25))
        self.unsup_weight = unsup_weight
        self.pseudo_thr = pseudo_thr
        self.predict_on = predict_on
        self.num_classes = self.student.head.num_classes

    @staticmethod
    def _logits(classifier, inputs: Tensor) -> Tensor:
        return classifier.head(classifier.extract_feat(inputs))

    def forward(self, inputs: Tensor, data_samples: Optional[list] = None, mode: str = 'tensor'):
        """mmengine entry point: 'loss', 'predict' or 'tensor' (student logits)."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        return self._logits(self.student, inputs)

    def loss(self, inputs: Tensor, data_samples: list) -> dict:
        """Focal BCE on labeled images plus the teacher-pseudo-labelled focal BCE on unlabeled images.

        Args:
            inputs (Tensor): (N, 3, H, W) normalised images.
            data_samples (list[DataSample]): with ``gt_label`` and ``labeled`` metainfo.

        Returns:
            dict: ``loss_sup`` and ``loss_unsup``.
        """
        labeled = torch.tensor(
            [bool(ds.metainfo.get('labeled', True)) for ds in data_samples], device=inputs.device
        )
        logits = self._logits(self.student, inputs)
        gt = image_level_targets(
            [ds.gt_label.tolist() if 'gt_label' in ds else [] for ds in data_samples], self.num_classes
        ).to(logits)
        with torch.no_grad():
            self.teacher.eval()
            pseudo = teacher_pseudo_targets(self._logits(self.teacher, inputs), self.pseudo_thr)
        targets = torch.where(labeled[:, None], gt, pseudo)
        losses = {}
        for name, rows, weight in (('loss_sup', labeled, 1.0), ('loss_unsup', ~labeled, self.unsup_weight)):
            if rows.any():
                losses[name] = weight * self.loss_module(logits[rows], targets[rows])
            else:
                losses[name] = logits.sum() * 0.0
        return losses

    @torch.no_grad()
    def predict(self, inputs: Tensor, data_samples: Optional[list] = None) -> list:
        """Sigmoid class scores per image in ``pred_score`` (and the thresholded ``pred_label``)."""
        model = self.teacher if self.predict_on == 'teacher' else self.student
        scores = self._logits(model, inputs).sigmoid()
        if data_samples is None:
            data_samples = [DataSample() for _ in range(len(scores))]
        for ds, score in zip(data_samples, scores):
            ds.set_pred_score(score)
            ds.set_pred_label(torch.nonzero(score >= self.pseudo_thr).flatten())
        return data_samples
