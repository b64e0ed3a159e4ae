"""ACRST detector: Soft Teacher's Mean-Teacher framework with ACRST's two-stage pseudo-label filter and
selective supervision (Zhang et al., "Semi-Supervised Object Detection with Adaptive Class-Rebalancing
Self-Training", AAAI 2022).

What changes against :class:`mmdet.models.SoftTeacher` (every other step is the parent's):

* :meth:`ACRST.get_pseudo_instances` - teacher detections pass the two-stage filter (``score >= tau_cls``,
  then the SSMLL classifier's image-level class scores ``>= tau_ml``) and are recorded for the CropBank.
* :meth:`ACRST.project_pseudo_instances` - on the student view, pseudo boxes occluded by CropBank pastes are
  dropped (CopyPaste rule) and the pasted instances join the pseudo-labels, flagged ``pasted``.
* :meth:`ACRST.rpn_loss_by_pseudo_instances` / :meth:`ACRST.rcnn_reg_loss_by_pseudo_instances` - selective
  supervision: the unlabeled box-regression losses (RPN and R-CNN) see only pasted instances; RPN objectness,
  the proposals and R-CNN classification keep all filtered pseudo-labels.
* :meth:`ACRST.loss` - a supervised-only burn-in, at whose end the teacher becomes a copy of the student.
* :meth:`ACRST.compute_uncertainty_with_aug` - Soft Teacher's box-jitter uncertainty is not needed.
"""

from __future__ import annotations

import copy
import json
import os.path as osp
from typing import Optional

import numpy as np
import torch
from mmdet.models.detectors import SoftTeacher
from mmdet.models.utils import filter_gt_instances, unpack_gt_instances
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmengine.config import ConfigDict
from mmengine.logging import MessageHub
from mmengine.structures import InstanceData
from torch import Tensor

from ...datasets.transforms.acrst_paste import boxes_paste_mask, paste_occlusion
from ...utils.config import check_known_keys
from .functional import check_probability, selective_regression_mask, two_stage_filter

#: Most teacher records kept when no CropBankHook collects them (bounded memory).
MAX_PENDING_RECORDS = 4096


def to_device(host, device, dtype=None) -> Tensor:
    """Host data (array, list or CPU tensor) as a tensor on ``device``, copied without waiting for it."""
    return torch.as_tensor(host, dtype=dtype).to(device, non_blocking=True)


def load_ml_scores(path: str, num_classes: int, classes: Optional[tuple] = None) -> dict:
    """Read the per-image multi-label class scores written by ``tools/acrst/ssmll_scores.py``.

    Args:
        path (str): the JSON file (``semi_train_cfg.ml_scores_file``).
        num_classes (int): the detector's class count.
        classes (tuple[str], optional): the detector's class names, checked against the file's.

    Returns:
        dict: ``{'scores': {img_id (str): Tensor (K,)}, 'file_names': {img_id: file name}}``.
    """
    setting = 'semi_train_cfg.ml_scores_file'
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{setting}={path!r} does not exist: write it with tools/acrst/ssmll_scores.py (SSMLL scores of '
            'the unlabeled set), or set tau_ml=None to switch filter stage 2 off'
        )
    try:
        with open(path) as f:
            data = json.load(f)
        scores, file_names = data['scores'], data.get('file_names', {})
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f'{setting}={path!r} is not a SSMLL scores file ({err})') from err
    check_ml_classes(path, data.get('classes'), classes)
    out = {}
    for img_id, values in scores.items():
        if len(values) != num_classes:
            raise ValueError(
                f'{setting}={path!r}: image {img_id} has {len(values)} class scores, the detector has '
                f'{num_classes} classes'
            )
        out[str(img_id)] = torch.tensor(values, dtype=torch.float32)
    return {
        'scores': out,
        'file_names': {str(k): v for k, v in file_names.items()},
        'classes': data.get('classes'),
    }


def check_ml_classes(path: str, file_classes: Optional[list], classes: Optional[tuple]) -> None:
    """Raise when a SSMLL scores file lists other classes (or another order) than the dataset's.

    Filter stage 2 reads the scores by class index, so a file written for other classes would filter with
    the wrong class' scores. Either side being None (unknown) skips the check.
    """
    if classes is not None and file_classes is not None and tuple(file_classes) != tuple(classes):
        raise ValueError(
            f'semi_train_cfg.ml_scores_file={path!r} was written for classes {tuple(file_classes)}, but the '
            f'dataset has {tuple(classes)}: rerun tools/acrst/ssmll_scores.py with an SSMLL config of these '
            'classes'
        )


def check_loss_thresholds(semi_train_cfg: dict) -> None:
    """Raise a ValueError when Soft Teacher's loss thresholds would drop filtered pseudo-labels.

    Soft Teacher keeps only pseudo-labels with ``score > rpn_pseudo_thr`` for the RPN and ``score >
    cls_pseudo_thr`` for the R-CNN classification. ACRST's filtered pseudo-labels have ``score >=
    max(tau_cls, pseudo_label_initial_score_thr)`` (``tau_cls=None``: the initial threshold alone), so both
    thresholds must not exceed that bound, or part of the filtered pseudo-labels would silently get no
    objectness / classification loss. (At equality only a score exactly at the threshold is dropped.)

    Args:
        semi_train_cfg (dict): the semi-supervised training config.
    """
    tau_cls = semi_train_cfg.get('tau_cls')
    initial = semi_train_cfg.get('pseudo_label_initial_score_thr') or 0.0
    bound_name = 'tau_cls' if tau_cls is not None and tau_cls >= initial else 'pseudo_label_initial_score_thr'
    bound = max(tau_cls if tau_cls is not None else 0.0, initial)
    for key in ('rpn_pseudo_thr', 'cls_pseudo_thr'):
        value = semi_train_cfg.get(key)
        if value is not None and value > bound:
            raise ValueError(
                f'semi_train_cfg.{key}={value} is above semi_train_cfg.{bound_name}={bound}: pseudo-labels '
                f'that pass the two-stage filter with a score in [{bound}, {value}] would silently get no '
                f'{"RPN objectness" if key == "rpn_pseudo_thr" else "classification"} loss; set '
                f'{key} <= {bound_name} (e.g. equal)'
            )


#: ``semi_train_cfg`` keys that mmdet's Soft Teacher reads, and those ACRST adds (see :class:`ACRST`).
SOFT_TEACHER_TRAIN_KEYS = (
    'freeze_teacher',
    'sup_weight',
    'unsup_weight',
    'pseudo_label_initial_score_thr',
    'rpn_pseudo_thr',
    'cls_pseudo_thr',
    'reg_pseudo_thr',
    'jitter_times',
    'jitter_scale',
    'min_pseudo_bbox_wh',
)
ACRST_TRAIN_KEYS = (
    'tau_cls',
    'tau_ml',
    'ml_scores_file',
    'regress_pseudo',
    'burn_in_iters',
    'bbox_occluded_thr',
    'mask_occluded_thr',
)
#: ``semi_test_cfg`` keys that mmdet's semi-supervised detectors read.
SEMI_TEST_KEYS = ('predict_on', 'forward_on', 'extract_feat_on')


@MODELS.register_module()
class ACRST(SoftTeacher):
    """ACRST on Soft Teacher: two-stage pseudo-label filtering, CropBank pastes, selective supervision.

    ``semi_train_cfg`` keys used on top of Soft Teacher's (``rpn_pseudo_thr``, ``cls_pseudo_thr``,
    ``min_pseudo_bbox_wh``, ``sup_weight``, ``unsup_weight``):

    * ``pseudo_label_initial_score_thr`` (float): teacher detections kept for the CropBank statistics
      (the AAAI pseudo-recall sums confidences above 0.1). Defaults to 0.1.
    * ``tau_cls`` (float | None): filter stage 1, detection score threshold. Defaults to 0.7.
    * ``tau_ml`` (float | None): filter stage 2, multi-label score threshold. Defaults to 0.2.
    * ``ml_scores_file`` (str | None): SSMLL scores of the unlabeled images; None switches stage 2 off.
      Read on first use (training only: testing and inference do not need the file).
    * ``regress_pseudo`` (bool): also regress the teacher's pseudo boxes (turns selective supervision
      off). Defaults to False.
    * ``burn_in_iters`` (int): supervised-only iterations at the start; the teacher becomes a copy of the
      student when it ends (Unbiased Teacher). Defaults to 0.
    * ``bbox_occluded_thr`` / ``mask_occluded_thr`` (float): the CopyPaste occlusion rule applied to
      pseudo boxes covered by pastes. Defaults to 10 / 300.

    Soft Teacher's ``rpn_pseudo_thr`` / ``cls_pseudo_thr`` must not exceed ``tau_cls`` (or
    ``pseudo_label_initial_score_thr`` when ``tau_cls`` is None), so that RPN objectness and R-CNN
    classification see every filtered pseudo-label (:func:`check_loss_thresholds`, checked here).

    Args:
        detector (dict): the detector config (a two-stage detector, e.g. Faster R-CNN).
        semi_train_cfg (dict, optional): the semi-supervised training config.
        semi_test_cfg (dict, optional): the semi-supervised testing config.
        data_preprocessor (dict, optional): a ``MultiBranchDataPreprocessor`` config.
        init_cfg (dict, optional): initialisation config.
    """

    def __init__(
        self,
        detector: dict,
        semi_train_cfg: Optional[dict] = None,
        semi_test_cfg: Optional[dict] = None,
        data_preprocessor: Optional[dict] = None,
        init_cfg: Optional[dict] = None,
    ) -> None:
        semi_train_cfg = ConfigDict(copy.deepcopy(dict(semi_train_cfg or {})))
        check_known_keys('semi_train_cfg', semi_train_cfg, SOFT_TEACHER_TRAIN_KEYS + ACRST_TRAIN_KEYS)
        check_known_keys('semi_test_cfg', semi_test_cfg or {}, SEMI_TEST_KEYS)
        semi_train_cfg.setdefault('pseudo_label_initial_score_thr', 0.1)
        semi_train_cfg.setdefault('tau_cls', 0.7)
        semi_train_cfg.setdefault('tau_ml', 0.2)
        semi_train_cfg.setdefault('ml_scores_file', None)
        semi_train_cfg.setdefault('regress_pseudo', False)
        semi_train_cfg.setdefault('burn_in_iters', 0)
        semi_train_cfg.setdefault('reg_pseudo_thr', float('inf'))  # no uncertainty filter (see below)
        for key in (
            'pseudo_label_initial_score_thr',
            'tau_cls',
            'tau_ml',
            'cls_pseudo_thr',
            'rpn_pseudo_thr',
        ):
            check_probability(f'semi_train_cfg.{key}', semi_train_cfg.get(key))
        check_loss_thresholds(semi_train_cfg)
        if int(semi_train_cfg['burn_in_iters']) < 0:
            raise ValueError(
                f'semi_train_cfg.burn_in_iters must be >= 0, got {semi_train_cfg["burn_in_iters"]}'
            )
        super().__init__(
            detector=detector,
            semi_train_cfg=semi_train_cfg,
            semi_test_cfg=semi_test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg,
        )
        self.num_classes = self.student.roi_head.bbox_head.num_classes
        self._ml_scores: Optional[dict] = None  # read on first use: testing and inference never need it
        self._cropbank_records: list[dict] = []
        # class histograms of what the student learnt from on unlabeled images after burn-in (this rank):
        # pasted CropBank instances and the teacher's filtered pseudo-labels
        self.register_buffer('pasted_class_counts', torch.zeros(self.num_classes, dtype=torch.long), False)
        self.register_buffer('pseudo_class_counts', torch.zeros(self.num_classes, dtype=torch.long), False)

    @property
    def ml_scores(self) -> Optional[dict]:
        """The SSMLL scores file's content (read on first use), None when filter stage 2 is off."""
        cfg = self.semi_train_cfg
        if not cfg.get('ml_scores_file') or cfg.get('tau_ml') is None:
            return None
        if self._ml_scores is None:
            self._ml_scores = load_ml_scores(cfg.ml_scores_file, self.num_classes)
        return self._ml_scores

    def check_ml_scores(self, classes: Optional[tuple], unlabeled_infos: Optional[list] = None) -> None:
        """Raise before training when the SSMLL scores file does not fit the data.

        Checks that the file exists, has this detector's class count, the dataset's classes in the dataset's
        order, and a score row for every unlabeled image under the same file name. Called by
        :class:`CropBankHook` before training, where the datasets are known.

        Args:
            classes (tuple[str], optional): the dataset's class names.
            unlabeled_infos (list[dict], optional): data infos of the unlabeled dataset (``img_id``,
                ``img_path``).
        """
        scores = self.ml_scores
        if scores is None:
            return
        check_ml_classes(self.semi_train_cfg.ml_scores_file, scores['classes'], classes)
        for info in unlabeled_infos or []:
            self._ml_scores_of(info.get('img_id'), info.get('img_path'))

    def _ml_scores_of(self, img_id, img_path: Optional[str]) -> Tensor:
        """The (K,) SSMLL scores of one unlabeled image; raise when the file has none under that name."""
        scores, path = self.ml_scores, self.semi_train_cfg.ml_scores_file
        img_id = str(img_id)
        if img_id not in scores['scores']:
            raise KeyError(
                f'unlabeled image id {img_id} ({img_path}) has no scores in '
                f'semi_train_cfg.ml_scores_file={path!r}: the file was written for another unlabeled set; '
                'rerun tools/acrst/ssmll_scores.py on this ann_file'
            )
        expected = scores['file_names'].get(img_id)
        if expected and img_path and osp.basename(img_path) != osp.basename(expected):
            raise ValueError(
                f'semi_train_cfg.ml_scores_file={path!r} gives image id {img_id} the file {expected!r}, '
                f'but the dataset has {img_path!r}: the scores file does not match the unlabeled ann_file'
            )
        return scores['scores'][img_id]

    def check_dataset_classes(self, classes: tuple) -> None:
        """Raise when the SSMLL scores file was written for other classes than ``classes`` (the dataset's)."""
        self.check_ml_scores(classes)

    # ----- pseudo-labels ---------------------------------------------------------------------------------
    def image_class_scores(self, data_sample) -> Optional[Tensor]:
        """The SSMLL class scores of an unlabeled image, None when filter stage 2 is off.

        Args:
            data_sample (DetDataSample): an unlabeled sample with ``img_id`` and ``img_path`` metainfo.

        Returns:
            Tensor | None: (K,) scores.
        """
        if self.ml_scores is None:
            return None
        return self._ml_scores_of(data_sample.metainfo.get('img_id'), data_sample.metainfo.get('img_path'))

    @torch.no_grad()
    def get_pseudo_instances(
        self, batch_inputs: Tensor, batch_data_samples: SampleList
    ) -> tuple[SampleList, dict]:
        """Soft Teacher's teacher pass, then the two-stage filter; raw detections are kept for CropBank.

        The filter runs on the device; the detections and their filter flags of the whole batch then reach
        the host in one copy (the CropBank records and the kept indices both need them there).
        """
        self.teacher.eval()  # as SemiBaseDetector: BatchNorm statistics, not batch statistics
        batch_data_samples, batch_info = super().get_pseudo_instances(batch_inputs, batch_data_samples)
        cfg = self.semi_train_cfg
        class_scores = self.batch_class_scores(batch_data_samples, batch_inputs.device)
        batch = []
        for i, data_sample in enumerate(batch_data_samples):
            inst = data_sample.gt_instances
            image_scores = None if class_scores is None else class_scores[i]
            keep = two_stage_filter(inst.scores, inst.labels, image_scores, cfg.tau_cls, cfg.tau_ml)
            columns = (inst.bboxes, inst.labels[:, None], inst.scores[:, None], keep[:, None])
            batch.append(torch.cat([c.double() for c in columns], 1))
        host = torch.cat(batch).numpy(force=True) if batch else None  # (sum N, 7): the batch's one host copy
        start = 0
        for data_sample in batch_data_samples:
            inst = data_sample.gt_instances
            rows, start = host[start : start + len(inst)], start + len(inst)
            kept = rows[:, 6] > 0
            self._cropbank_records.append(
                {
                    'img_path': data_sample.metainfo.get('img_path'),
                    'bboxes': rows[:, :4].astype(np.float32),
                    'labels': rows[:, 4].astype(np.int64),
                    'scores': rows[:, 5].astype(np.float32),
                    'kept': kept,
                }
            )
            data_sample.gt_instances = inst[to_device(np.flatnonzero(kept), inst.scores.device)]
        del self._cropbank_records[:-MAX_PENDING_RECORDS]
        return batch_data_samples, batch_info

    def batch_class_scores(self, batch_data_samples: SampleList, device) -> Optional[Tensor]:
        """(B, K) SSMLL class scores of a batch of unlabeled images on ``device`` (one copy), None when filter
        stage 2 is off."""
        if self.ml_scores is None:
            return None
        return to_device(torch.stack([self.image_class_scores(ds) for ds in batch_data_samples]), device)

    def pop_cropbank_records(self) -> list[dict]:
        """Teacher detections on unlabeled images since the last call (read by ``CropBankHook``)."""
        records, self._cropbank_records = self._cropbank_records, []
        return records

    def compute_uncertainty_with_aug(self, x, batch_data_samples: SampleList) -> list[Tensor]:
        """Zero uncertainty: ACRST regresses pasted boxes only, so Soft Teacher's box jitter is skipped."""
        return [ds.gt_instances.scores.new_zeros(len(ds.gt_instances)) for ds in batch_data_samples]

    def project_pseudo_instances(
        self, batch_pseudo_instances: SampleList, batch_data_samples: SampleList
    ) -> SampleList:
        """Project pseudo-labels to the student view, then merge the CropBank pastes of that view.

        Pseudo boxes covered by a paste follow CopyPaste's occlusion rule; pasted instances (from the
        ``pasted_bboxes`` / ``pasted_labels`` metainfo written by ``ACRSTPaste``) join last, with score 1 and
        ``pasted=True``; their number goes to the ``num_pasted`` metainfo. The occlusion flags of the whole
        batch reach the host in one copy.
        """
        batch_data_samples = super().project_pseudo_instances(batch_pseudo_instances, batch_data_samples)
        cfg = self.semi_train_cfg
        pastes, occluded = [], []  # occlusion flags of every image with pastes: one copy to the host
        for data_sample in batch_data_samples:
            pseudo = data_sample.gt_instances
            device = pseudo.bboxes.device
            pasted_boxes = to_device(
                data_sample.metainfo.get('pasted_bboxes', np.zeros((0, 4))), device, torch.float32
            ).reshape(-1, 4)
            pasted_labels = to_device(data_sample.metainfo.get('pasted_labels', []), device, torch.long)
            pastes.append((pasted_boxes, pasted_labels.reshape(-1)))
            if len(pasted_boxes) and len(pseudo):
                height, width = data_sample.img_shape
                mask = boxes_paste_mask(pasted_boxes, height, width)
                keep, updated = paste_occlusion(
                    pseudo.bboxes, mask, cfg.get('bbox_occluded_thr', 10), cfg.get('mask_occluded_thr', 300)
                )
                pseudo.bboxes = updated.to(pseudo.bboxes.dtype)
                occluded.append(keep)
        keep_all = torch.cat(occluded).numpy(force=True) if occluded else None
        start = 0
        for data_sample, (pasted_boxes, pasted_labels) in zip(batch_data_samples, pastes):
            pseudo = data_sample.gt_instances
            device = pseudo.bboxes.device
            if len(pasted_boxes) and len(pseudo):
                keep, start = keep_all[start : start + len(pseudo)], start + len(pseudo)
                pseudo = pseudo[to_device(np.flatnonzero(keep), device)]
            pseudo.pasted = torch.zeros(len(pseudo), dtype=torch.bool, device=device)
            pasted = InstanceData(
                bboxes=pasted_boxes,
                labels=pasted_labels,
                scores=pasted_boxes.new_ones(len(pasted_boxes)),
                pasted=torch.ones(len(pasted_boxes), dtype=torch.bool, device=device),
            )
            if 'reg_uncs' in pseudo:
                pasted.reg_uncs = pasted_boxes.new_zeros(len(pasted_boxes))
            data_sample.gt_instances = InstanceData.cat([pseudo, pasted])
            data_sample.set_metainfo(dict(num_pasted=len(pasted)))
        return batch_data_samples

    # ----- losses ------------------------------------------------------------------------------------
    def regression_samples(self, batch_data_samples: SampleList) -> SampleList:
        """Copies of the student samples keeping only the instances with a box-regression loss.

        Selective supervision: pasted CropBank instances only (:func:`.functional.selective_regression_mask`),
        unless ``semi_train_cfg.regress_pseudo``. Samples from :meth:`project_pseudo_instances` hold their
        pastes last and their number in the ``num_pasted`` metainfo: a slice known on the host, where a mask
        of the ``pasted`` flags would wait for the device (the mask serves samples made elsewhere).

        Args:
            batch_data_samples (list[DetDataSample]): student samples whose ``gt_instances`` carry ``pasted``.

        Returns:
            list[DetDataSample]: clones with ``gt_instances`` restricted to the regressed instances.
        """
        reg_samples = []
        for data_sample in batch_data_samples:
            data_sample = data_sample.clone()
            instances = data_sample.gt_instances
            if self.semi_train_cfg.regress_pseudo:
                pass
            elif 'num_pasted' in data_sample.metainfo:
                data_sample.gt_instances = instances[len(instances) - data_sample.num_pasted :]
            else:
                data_sample.gt_instances = instances[selective_regression_mask(instances.pasted)]
            reg_samples.append(data_sample)
        return reg_samples

    def rpn_loss_by_pseudo_instances(self, x, batch_data_samples: SampleList) -> tuple[dict, list]:
        """Soft Teacher's RPN loss, its box-regression part taken from the pasted instances only.

        Objectness and proposals are the parent's: all filtered pseudo-labels (score > ``rpn_pseudo_thr``,
        see :func:`check_loss_thresholds`). ``loss_rpn_bbox`` is recomputed from the same RPN head outputs
        (captured during the parent's pass, no second forward) against :meth:`regression_samples`, labels
        set to 0 as Soft Teacher does. An image without pasted instances has no positive anchor there, hence
        a zero regression loss. ``regress_pseudo=True`` gives the parent's loss unchanged.

        Args:
            x (tuple[Tensor]): student FPN features, each (N, C, H_l, W_l).
            batch_data_samples (list[DetDataSample]): student samples with pseudo + pasted ``gt_instances``.

        Returns:
            tuple[dict, list[InstanceData]]: ``loss_rpn_cls`` / ``loss_rpn_bbox`` and the proposals.
        """
        if self.semi_train_cfg.regress_pseudo:
            return super().rpn_loss_by_pseudo_instances(x, batch_data_samples)
        rpn_head = self.student.rpn_head
        head_outputs = []
        handle = rpn_head.register_forward_hook(lambda module, args, outputs: head_outputs.append(outputs))
        try:
            rpn_losses, rpn_results_list = super().rpn_loss_by_pseudo_instances(x, batch_data_samples)
        finally:
            handle.remove()
        reg_samples = self.regression_samples(batch_data_samples)
        score_thr = self.semi_train_cfg.rpn_pseudo_thr
        # the pastes score 1: the parent's RPN filter (score > thr) keeps every one unless thr >= 1, and a
        # mask per image and field would wait for the device
        if score_thr is not None and score_thr >= 1:
            reg_samples = filter_gt_instances(reg_samples, score_thr=score_thr)
        gt_instances, gt_instances_ignore, img_metas = unpack_gt_instances(reg_samples)
        for instances in gt_instances:
            instances.labels = torch.zeros_like(instances.labels)
        (outputs,) = head_outputs  # the parent ran the RPN head exactly once
        reg_losses = rpn_head.loss_by_feat(*outputs, gt_instances, img_metas, gt_instances_ignore)
        rpn_losses['loss_rpn_bbox'] = reg_losses['loss_rpn_bbox']
        return rpn_losses, rpn_results_list

    def rcnn_reg_loss_by_pseudo_instances(
        self, x, unsup_rpn_results_list, batch_data_samples: SampleList
    ) -> dict:
        """Selective supervision: the unlabeled R-CNN box-regression loss sees only pasted instances."""
        return super().rcnn_reg_loss_by_pseudo_instances(
            x, unsup_rpn_results_list, self.regression_samples(batch_data_samples)
        )

    def in_burn_in(self) -> bool:
        """True during the supervised-only burn-in (``semi_train_cfg.burn_in_iters``)."""
        burn_in = int(self.semi_train_cfg.get('burn_in_iters', 0))
        return burn_in > 0 and MessageHub.get_current_instance().get_info('iter', 0) < burn_in

    @torch.no_grad()
    def copy_student_to_teacher(self) -> None:
        """Teacher = student (weights and buffers), as Unbiased Teacher does at the end of burn-in."""
        self.teacher.load_state_dict(self.student.state_dict())

    def train_step(self, data: dict, optim_wrapper) -> dict:
        """mmengine's train step; during burn-in only the labeled branch is preprocessed.

        The burn-in loss reads the ``sup`` branch alone, so the unlabeled teacher / student views of the
        batch are dropped before the data preprocessor (no normalisation, padding or device copy of images
        nobody reads). The dataloader still delivers them: mmdet's ``GroupMultiSourceSampler`` puts a fixed
        labeled : unlabeled ratio in every batch and dataloader workers cannot see the iteration, so skipping
        them in the workers would change the labeled batch size during burn-in.
        """
        if self.in_burn_in() and isinstance(data.get('inputs'), dict):
            data = {key: {'sup': value.get('sup', [])} for key, value in data.items()}
        return super().train_step(data, optim_wrapper)

    def loss(self, multi_batch_inputs: dict, multi_batch_data_samples: dict) -> dict:
        """Supervised loss only during burn-in, Soft Teacher's supervised + unsupervised losses after.

        The first iteration after the burn-in starts by copying the student into the teacher (Unbiased
        Teacher, which ACRST follows): the first pseudo-labels and PR statistics come from the burnt-in
        detector, not from an EMA still dominated by the initial weights. The EMA hook takes over from there.
        """
        if self.in_burn_in():
            return self.loss_by_gt_instances(multi_batch_inputs['sup'], multi_batch_data_samples['sup'])
        burn_in = int(self.semi_train_cfg.get('burn_in_iters', 0))
        if burn_in > 0 and MessageHub.get_current_instance().get_info('iter', 0) == burn_in:
            self.copy_student_to_teacher()
        losses = super().loss(multi_batch_inputs, multi_batch_data_samples)
        # logged, not optimised (no 'loss' in the names): pasted / pseudo instances per unlabeled image
        student = multi_batch_data_samples['unsup_student']
        pasted = sum(ds.num_pasted for ds in student)  # samples of project_pseudo_instances
        total = sum(len(ds.gt_instances) for ds in student)
        if total:
            labels = torch.cat([ds.gt_instances.labels for ds in student])
            is_pasted = torch.cat([ds.gt_instances.pasted for ds in student]).long()
            self.pasted_class_counts.index_add_(0, labels, is_pasted)
            self.pseudo_class_counts.index_add_(0, labels, 1 - is_pasted)
        device = multi_batch_inputs['sup'].device
        losses['unsup_num_pasted'] = torch.full((), pasted / max(len(student), 1), device=device)
        losses['unsup_num_pseudo'] = torch.full((), (total - pasted) / max(len(student), 1), device=device)
        return losses
