"""Draw ground truth next to a detector's predictions on a few images, as one PNG.

Reads the predictions that ``tools/test.py --out results.pkl`` dumps and the COCO annotation file of the same
set; each row is one image: its ground-truth boxes on the left, the predictions scoring >= ``--score-thr`` on
the right, with class names (and scores).

Example::

    python tools/test.py CONFIG CKPT --out work_dirs/x/results.pkl
    python tools/analysis_tools/show_detections.py work_dirs/x/results.pkl \
        data/set/annotations/instances_val.json --out work_dirs/x/detections.png
"""

import argparse
import os
import os.path as osp

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from mmengine.fileio import load  # noqa: E402
from PIL import Image  # noqa: E402
from pycocotools.coco import COCO  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description='ground truth next to predictions on a few images (one PNG)')
    parser.add_argument('results', help='predictions dumped by tools/test.py --out (.pkl)')
    parser.add_argument('ann_file', help='COCO annotation file of the same images')
    parser.add_argument('--out', required=True, help='PNG file to write')
    parser.add_argument('--num', type=int, default=4, help='number of images (rows)')
    parser.add_argument('--score-thr', type=float, default=0.5, help='draw predictions scoring at least this')
    return parser.parse_args()


def draw_boxes(ax, image, boxes, names, color):
    """Draw (N, 4) xyxy ``boxes`` with their ``names`` on ``image`` in matplotlib axes ``ax``."""
    ax.imshow(image)
    for (x1, y1, x2, y2), name in zip(boxes, names):
        ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=color, linewidth=1.5))
        ax.text(x1, y1, name, fontsize=6, color='white', va='bottom', bbox=dict(facecolor=color, pad=1, lw=0))
    ax.axis('off')


def main():
    args = parse_args()
    results = load(args.results)
    coco = COCO(args.ann_file)
    cat_ids = sorted(coco.getCatIds())  # mmdet's label i is the i-th category id in this order
    names = {i: coco.cats[c]['name'] for i, c in enumerate(cat_ids)}
    rows = results[: args.num]
    if not rows:
        raise ValueError(f'{args.results} holds no predictions')
    fig, axes = plt.subplots(len(rows), 2, figsize=(6, 3 * len(rows)), squeeze=False)
    for (ax_gt, ax_pred), result in zip(axes, rows):
        if result['img_id'] not in coco.imgs:
            raise ValueError(f'image id {result["img_id"]} of {args.results} is not in {args.ann_file}')
        image = np.asarray(Image.open(result['img_path']).convert('RGB'))
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[result['img_id']]))
        gt_boxes = [[x, y, x + w, y + h] for x, y, w, h in (a['bbox'] for a in anns)]
        draw_boxes(ax_gt, image, gt_boxes, [coco.cats[a['category_id']]['name'] for a in anns], 'tab:green')
        pred = result['pred_instances']
        keep = np.asarray(pred['scores']) >= args.score_thr
        labels = [names[int(c)] for c in np.asarray(pred['labels'])[keep]]
        scores = np.asarray(pred['scores'])[keep]
        draw_boxes(
            ax_pred,
            image,
            np.asarray(pred['bboxes'])[keep],
            [f'{n} {s:.2f}' for n, s in zip(labels, scores)],
            'tab:red',
        )
        ax_gt.set_title('ground truth', fontsize=8)
        ax_pred.set_title(f'predictions (score >= {args.score_thr})', fontsize=8)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(f'ground truth | predictions of {len(rows)} images: {args.out}')


if __name__ == '__main__':
    main()
