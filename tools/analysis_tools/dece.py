"""D-ECE and a reliability diagram from saved detections, plus a post-hoc temperature-scaling baseline.

Dump predictions with ``tools/test.py CONFIG CKPT --out results.pkl``, then::

    python tools/analysis_tools/dece.py results.pkl --ann-file data/coco/annotations/instances_val2017.json \
        --out-dir work_dirs/dece

Temperature scaling (the baseline Cal-DETR compares with): fit T on a held-out set's dumped predictions and
apply it to the evaluated ones::

    python tools/analysis_tools/dece.py results.pkl --ann-file val.json \
        --calib-results heldout.pkl --calib-ann-file heldout.json --out-dir work_dirs/dece

The evaluated detections are those with a raw score >= ``--score-thr`` in both sets: T is fit on that set of
the held-out predictions and only rescales the confidences of that set of the evaluated ones (the set does
not change with T).

Class indices are the annotation file's categories in the file's order, as mmdet's ``CocoDataset`` matches
them (label ``i`` = the ``i``-th category of the file among the dataset's classes); pass ``--classes`` (the
evaluated dataset's ``metainfo.classes``) when the dataset used a subset. Per-class D-ECE is named after those
categories. Results whose image ids are not in the annotation file, or whose labels lie outside its classes,
are refused.
"""

import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # run from a source checkout
import mmssod  # noqa: E402,F401
from mmssod.evaluation.functional import detection_ece, fit_temperature  # noqa: E402
from mmssod.evaluation.metrics import DECEMetric  # noqa: E402
from mmssod.utils.safe_load import load_data_pickle  # noqa: E402


def load_results(path: str) -> list:
    """Predictions dumped by ``tools/test.py --out``: dicts with ``img_id`` and ``pred_instances``."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'results file {path!r} does not exist (make it with tools/test.py --out)')
    results = load_data_pickle(path)
    if not isinstance(results, list) or (results and 'pred_instances' not in results[0]):
        raise ValueError(f'{path!r} does not hold detection results dumped by tools/test.py --out')
    return results


def build_metric(ann_file: str, classes, args, temperature: float = 1.0, prefix: str = 'dece') -> DECEMetric:
    metric = DECEMetric(
        ann_file=ann_file,
        score_thr=args.score_thr,
        iou_thr=args.iou_thr,
        num_bins=args.num_bins,
        include_empty_images=not args.exclude_empty_images,
        classwise=True,
        temperature=temperature,
        out_dir=args.out_dir,
        save_diagram=args.out_dir is not None,
        prefix=prefix,
    )
    metric.dataset_meta = dict(classes=classes or metric.class_names())
    return metric


def evaluate(results: list, metric: DECEMetric) -> dict:
    metric.process({}, results)
    return metric.evaluate(len(results))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description='D-ECE + reliability diagram from dumped detections')
    p.add_argument('results', help='predictions dumped by tools/test.py --out (.pkl)')
    p.add_argument('--ann-file', required=True, help='COCO annotation file of the evaluated set')
    p.add_argument(
        '--classes',
        nargs='+',
        help='the dataset classes (default: every category of --ann-file, in its order)',
    )
    p.add_argument('--score-thr', type=float, default=0.3)
    p.add_argument('--iou-thr', type=float, default=0.5)
    p.add_argument('--num-bins', type=int, default=10)
    p.add_argument('--exclude-empty-images', action='store_true', help='skip images without ground truth')
    p.add_argument('--out-dir', help='folder for the reliability diagram PNG(s) and dece.json')
    p.add_argument('--calib-results', help='held-out predictions (.pkl) to fit a temperature on')
    p.add_argument('--calib-ann-file', help='COCO annotation file of the held-out set')
    p.add_argument('--temperature', type=float, help='apply this temperature instead of fitting one')
    args = p.parse_args(argv)
    if bool(args.calib_results) != bool(args.calib_ann_file):
        p.error('--calib-results and --calib-ann-file go together')
    if args.calib_results and args.temperature:
        p.error('give either --temperature or a held-out set to fit it on, not both')

    results = load_results(args.results)
    summary = dict(settings=dict(score_thr=args.score_thr, iou_thr=args.iou_thr, num_bins=args.num_bins,
                                 include_empty_images=not args.exclude_empty_images))  # fmt: skip
    summary['raw'] = evaluate(results, build_metric(args.ann_file, args.classes, args))
    temperature = args.temperature
    if args.calib_results:
        held_out = build_metric(args.calib_ann_file, args.classes, args, prefix='dece_calib')
        held_out.process({}, load_results(args.calib_results))
        cal = held_out.calibration_set(held_out.results)
        temperature = fit_temperature(cal['confidences'], cal['is_tp'])
        summary['held_out'] = dict(
            num_dets=int(cal['confidences'].size), dece=100 * detection_ece(cal['confidences'], cal['is_tp'])
        )
    if temperature:
        metric = build_metric(args.ann_file, args.classes, args, temperature=temperature, prefix='dece_ts')
        summary['temperature'] = temperature
        summary['temperature_scaled'] = evaluate(results, metric)
    line = f'D-ECE (x100): raw {summary["raw"]["dece/D-ECE"]:.2f}'
    if temperature:
        scaled = summary['temperature_scaled']['dece_ts/D-ECE']
        line += f', temperature-scaled (T = {temperature:.3f}) {scaled:.2f}'
    print(line)
    if args.out_dir:
        with open(osp.join(args.out_dir, 'dece.json'), 'w') as f:
            json.dump(summary, f, indent=1, default=float)
    return summary


if __name__ == '__main__':
    main()
