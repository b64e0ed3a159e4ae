"""D-ECE (detection expected calibration error) as an MMEngine metric, with a reliability diagram PNG."""

from __future__ import annotations

import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.fileio import get_local_path
from mmengine.logging import MMLogger, print_log

from ..functional.dece import (
    calibration_bins,
    classwise_detection_ece,
    collect_calibration_set,
    detection_ece,
    miscalibration_direction,
    signed_calibration_gap,
)
from ..functional.reliability_diagram import save_reliability_diagram
from ..functional.temperature_scaling import apply_temperature


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, 'detach') else np.asarray(x)


@METRICS.register_module()
class DECEMetric(BaseMetric):
    """Detection expected calibration error, pooled and per class, plus a reliability diagram.

    Usable alone or next to ``CocoMetric`` in a list evaluator::

        val_evaluator = [
            dict(type='CocoMetric', ann_file=ann, metric='bbox'),
            dict(type='DECEMetric', ann_file=ann),
        ]

    Conventions (see :mod:`mmssod.evaluation.functional.dece`): detections with ``score >= score_thr``;
    a true positive has the ground truth's class and IoU >= ``iou_thr`` with a not-yet-matched ground truth
    (greedy by score); detections that only cover crowd boxes are left out; detections on images without
    ground truth are false positives and count unless ``include_empty_images=False``; ``num_bins`` equal bins
    over [0, 1], bin ``b`` = ``[b/n, (b+1)/n)``. Reported values are x100. With no detection above the
    threshold D-ECE is undefined and reported as NaN (with a warning). ``signed_gap`` (x100) is the
    direction of miscalibration: bin-weighted confidence minus precision, > 0 over-, < 0 under-confident.
    Per-class values are named after the annotation file's categories in the order used for matching.
    Predictions for images not in ``ann_file`` or with labels outside its classes are refused.

    Args:
        ann_file (str, optional): COCO annotation file for the ground truth (crowd boxes from ``iscrowd``).
            Without it the ground truth is read from each data sample's ``gt_instances`` /
            ``ignored_instances`` (the test pipeline must then load annotations, after ``Resize``, as mmdet's
            COCO test pipelines do). Defaults to None.
        score_thr (float): Score threshold. Defaults to 0.3.
        iou_thr (float): IoU of a true positive. Defaults to 0.5.
        num_bins (int): Number of confidence bins. Defaults to 10.
        include_empty_images (bool): Count detections on images without ground truth. Defaults to True.
        classwise (bool): Also return ``D-ECE_<class>`` keys (the per-class table is always logged).
            Defaults to False.
        temperature (float): Rescale the confidences of the evaluated detections as
            ``sigmoid(logit(s) / T)`` (post-hoc temperature scaling; 1 = off). The detections evaluated are
            still those with a raw score ``>= score_thr``: T changes confidences, not the detection set.
            Defaults to 1.0.
        out_dir (str, optional): Folder for the reliability diagram. Defaults to None: the run's log folder
            (``<work_dir>/<timestamp>/``). Set ``save_diagram=False`` to skip it.
        save_diagram (bool): Save the diagram PNG. Defaults to True.
        collect_device (str): How MMEngine gathers the ranks' results: ``'cpu'`` through a temporary folder
            every rank writes to, which must be shared when the ranks span several machines; ``'gpu'``
            through the process group (NCCL), for clusters without a shared folder. Defaults to 'cpu'.
        prefix (str, optional): Metric prefix. Defaults to 'dece'.
        backend_args (dict, optional): File backend arguments for ``ann_file``. Defaults to None.
    """

    default_prefix: Optional[str] = 'dece'

    def __init__(
        self,
        ann_file: Optional[str] = None,
        score_thr: float = 0.3,
        iou_thr: float = 0.5,
        num_bins: int = 10,
        include_empty_images: bool = True,
        classwise: bool = False,
        temperature: float = 1.0,
        out_dir: Optional[str] = None,
        save_diagram: bool = True,
        collect_device: str = 'cpu',
        prefix: Optional[str] = None,
        backend_args: Optional[dict] = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not 0.0 <= score_thr <= 1.0:
            raise ValueError(f'DECEMetric: `score_thr` must be in [0, 1], got {score_thr}')
        if not 0.0 < iou_thr <= 1.0:
            raise ValueError(f'DECEMetric: `iou_thr` must be in (0, 1], got {iou_thr}')
        if not isinstance(num_bins, int) or num_bins < 1:
            raise ValueError(f'DECEMetric: `num_bins` must be a positive integer, got {num_bins!r}')
        if not temperature > 0:
            raise ValueError(f'DECEMetric: `temperature` must be > 0, got {temperature}')
        self.score_thr, self.iou_thr, self.num_bins = float(score_thr), float(iou_thr), num_bins
        self.include_empty_images, self.classwise = include_empty_images, classwise
        self.temperature = float(temperature)
        self.out_dir, self.save_diagram = out_dir, save_diagram
        self.ann_file = ann_file
        self._coco = None
        if ann_file is not None:
            from mmdet.datasets.api_wrappers import COCO

            if not osp.isfile(ann_file) and '://' not in ann_file:
                raise FileNotFoundError(
                    f'DECEMetric: ann_file {ann_file!r} does not exist; fix `ann_file` of the DECEMetric '
                    'entry in val_evaluator / test_evaluator'
                )
            with get_local_path(ann_file, backend_args=backend_args) as local_path:
                self._coco = COCO(local_path)
        self.last_diagram: Optional[str] = None

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Keep each image's predictions (and, without ``ann_file``, its ground truth)."""
        for sample in data_samples:
            pred = sample['pred_instances']
            result = dict(
                img_id=sample.get('img_id'),
                bboxes=_numpy(pred['bboxes']).reshape(-1, 4),
                scores=_numpy(pred['scores']).reshape(-1),
                labels=_numpy(pred['labels']).reshape(-1),
            )
            if self._coco is None:
                if 'gt_instances' not in sample:
                    raise ValueError(
                        'DECEMetric needs ground truth: set its `ann_file`, or load annotations in the test '
                        'pipeline (LoadAnnotations after Resize) so that data samples carry `gt_instances`'
                    )
                gt, ignored = sample['gt_instances'], sample.get('ignored_instances', {})
                gt_boxes, gt_labels = _numpy(gt['bboxes']).reshape(-1, 4), _numpy(gt['labels']).reshape(-1)
                ig_boxes = (
                    _numpy(ignored['bboxes']).reshape(-1, 4) if 'bboxes' in ignored else np.zeros((0, 4))
                )
                ig_labels = _numpy(ignored['labels']).reshape(-1) if 'labels' in ignored else np.zeros(0, int)
                result['gt'] = dict(
                    bboxes=np.concatenate([gt_boxes, ig_boxes]),
                    labels=np.concatenate([gt_labels, ig_labels]),
                    ignore=np.r_[np.zeros(len(gt_labels), bool), np.ones(len(ig_labels), bool)],
                )
            self.results.append(result)

    def _coco_ground_truth(self, img_id) -> dict:
        """Ground truth of one image from the COCO file (class indices follow ``dataset_meta['classes']``)."""
        if img_id is None:
            raise ValueError('DECEMetric with `ann_file` needs `img_id` in the data samples (meta_keys)')
        anns = self._coco.load_anns(self._coco.get_ann_ids(img_ids=[img_id]))
        anns = [a for a in anns if a['category_id'] in self._cat2label]
        xywh = np.array([a['bbox'] for a in anns], dtype=np.float64).reshape(-1, 4)
        boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        return dict(
            bboxes=boxes,
            labels=np.array([self._cat2label[a['category_id']] for a in anns], dtype=np.int64),
            ignore=np.array([bool(a.get('iscrowd', 0) or a.get('ignore', 0)) for a in anns], dtype=bool),
        )

    def _label_cat_ids(self) -> List[int]:
        """Category ids of the ann file in label order, as mmdet's ``CocoDataset`` / ``CocoMetric`` match.

        Label ``i`` is the ``i``-th category of the file (in the file's order) whose name is in
        ``dataset_meta['classes']``; without dataset classes, every category of the file in its order.
        """
        classes = (self.dataset_meta or {}).get('classes')
        if not classes:
            return list(self._coco.get_cat_ids())
        cat_ids = list(self._coco.get_cat_ids(cat_names=list(classes)))
        if len(cat_ids) != len(classes):
            names = {c['name'] for c in self._coco.load_cats(self._coco.get_cat_ids())}
            missing = [c for c in classes if c not in names]
            raise ValueError(
                f'DECEMetric: {len(classes)} dataset classes but {len(cat_ids)} matching categories in '
                f'{self.ann_file} (not there: {missing[:10]}); use the annotation file of the evaluated '
                'dataset (`ann_file` of the DECEMetric entry) or fix the dataset `metainfo.classes`'
            )
        return cat_ids

    def class_names(self) -> List[str]:
        """Class names in label order.

        With ``ann_file``: the names of the file's categories in the order used for matching (see
        :meth:`_label_cat_ids`), so per-class D-ECE always names the category whose ground truth it was
        matched to, even when ``dataset_meta['classes']`` lists the same names in another order. Without it:
        ``dataset_meta['classes']``.
        """
        if self._coco is not None:
            return [self._coco.cats[cat_id]['name'] for cat_id in self._label_cat_ids()]
        classes = (self.dataset_meta or {}).get('classes')
        if classes:
            return list(classes)
        raise ValueError('DECEMetric needs `dataset_meta["classes"]` (set by the runner from the dataset)')

    def _check_results(self, results: list, num_classes: int) -> None:
        """Refuse predictions that do not belong to the annotation file / class list."""
        if self._coco is not None:
            known = set(self._coco.get_img_ids())
            unknown = [r['img_id'] for r in results if r['img_id'] not in known]
            if unknown:
                raise ValueError(
                    f'DECEMetric: {len(unknown)} of {len(results)} predicted images are not in '
                    f'{self.ann_file} (image ids {unknown[:10]}); the results and `ann_file` must come from '
                    'the same dataset'
                )
        labels = np.concatenate([np.asarray(r['labels']).reshape(-1) for r in results] or [np.zeros(0)])
        bad = np.unique(labels[(labels < 0) | (labels >= num_classes)]).astype(np.int64).tolist()
        if bad:
            raise ValueError(
                f'DECEMetric: predicted labels {bad[:10]} lie outside the {num_classes} classes of '
                f'{self.ann_file or "dataset_meta"}; the results were made for other categories than the '
                'annotation file (check `ann_file` and the model\'s `num_classes`)'
            )

    def calibration_set(self, results: list) -> Dict[str, np.ndarray]:
        """Thresholded, matched detections of collected ``results`` (temperature applied if set).

        The evaluated set is defined on the raw scores (``score >= score_thr`` before any temperature), so
        a temperature changes the confidences of the detections, never which detections are evaluated: T is
        fit (``tools/analysis_tools/dece.py``) and evaluated on the same detection set definition.

        Args:
            results (list): What :meth:`process` collected (or dumped predictions passed through it).

        Returns:
            dict: ``confidences`` (temperature-scaled if set), ``raw_confidences``, ``is_tp``, ``labels``,
            each of shape (K,), see ``collect_calibration_set``.
        """
        num_classes = len(self.class_names())
        self._check_results(results, num_classes)
        if self._coco is not None:
            self._cat2label = {cat_id: i for i, cat_id in enumerate(self._label_cat_ids())}
        gts = [r['gt'] if self._coco is None else self._coco_ground_truth(r['img_id']) for r in results]
        cal = collect_calibration_set(results, gts, self.score_thr, self.iou_thr, self.include_empty_images)
        cal['raw_confidences'] = cal['confidences']
        if self.temperature != 1:
            cal['confidences'] = apply_temperature(cal['confidences'], self.temperature)
        return cal

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """D-ECE (x100) pooled and per class; saves the reliability diagram."""
        logger: MMLogger = MMLogger.get_current_instance()
        classes = self.class_names()
        cal = self.calibration_set(results)
        conf, is_tp, labels = cal['confidences'], cal['is_tp'], cal['labels']
        dece = 100 * detection_ece(conf, is_tp, self.num_bins)
        gap = 100 * signed_calibration_gap(conf, is_tp, self.num_bins)
        per_class = 100 * classwise_detection_ece(conf, is_tp, labels, len(classes), self.num_bins)
        if conf.size == 0:
            print_log(
                f'DECEMetric: no detection has score >= {self.score_thr}; D-ECE is undefined (NaN)',
                logger=logger,
                level=30,
            )
        rows = [f'{name:<20} {v:7.2f} {int((labels == i).sum()):6d}' for i, (name, v) in enumerate(
            zip(classes, per_class))]  # fmt: skip
        print_log(
            f'D-ECE (x100, score >= {self.score_thr}, IoU >= {self.iou_thr}, {self.num_bins} bins'
            f'{f", T = {self.temperature:.3f}" if self.temperature != 1 else ""}): {dece:.2f} over '
            f'{conf.size} detections, precision {is_tp.mean() if conf.size else float("nan"):.3f}, '
            f'signed gap {gap:+.2f} ({miscalibration_direction(gap)}-confident)\n'
            + '\n'.join([f'{"class":<20} {"D-ECE":>7} {"#dets":>6}', *rows]),
            logger=logger,
        )
        if self.save_diagram:
            self.last_diagram = self._save_diagram(calibration_bins(conf, is_tp, self.num_bins), dece, logger)
        metrics = {'D-ECE': dece, 'signed_gap': gap, 'num_dets': float(conf.size)}
        if self.classwise:
            metrics.update({f'D-ECE_{name}': float(v) for name, v in zip(classes, per_class)})
        return metrics

    def _save_diagram(self, bins: dict, dece: float, logger: MMLogger) -> Optional[str]:
        out_dir = self.out_dir
        if out_dir is None:
            log_file = getattr(logger, 'log_file', None)
            if not log_file:
                print_log(
                    'DECEMetric: no run log folder to save the reliability diagram in; set `out_dir`',
                    logger=logger,
                    level=30,
                )
                return None
            out_dir = osp.dirname(log_file)
        name = (self.prefix or 'dece').replace('/', '_')
        path = osp.join(out_dir, f'{name}_reliability_diagram.png')
        title = f'{name}: score >= {self.score_thr}, IoU >= {self.iou_thr}'
        save_reliability_diagram(bins, path, title=title, dece=dece)
        print_log(f'DECEMetric: reliability diagram saved to {path}', logger=logger)
        return path
