"""Write SSMLL's per-image class scores for the unlabeled set: the file ACRST's filter stage 2 reads.

    python tools/acrst/ssmll_scores.py SSMLL_CONFIG CHECKPOINT --out work_dirs/.../unlabeled_scores.json

The images scored are the config's ``score_dataset`` (by default the unlabeled split, test pipeline);
``--ann-file`` scores another COCO file with the same image folder. Runs on the GPU when there is one
(``--device``), batches with DataLoader workers (``--num-workers``) and shows a progress bar. The output JSON
holds ``classes``, ``ann_file``, ``scores`` (``{img_id: [K scores]}``) and ``file_names`` (``{img_id: file
name}``); point the detector config's ``model.semi_train_cfg.ml_scores_file`` at it.

``--eval-negatives`` also reports the image-level precision / recall of SSMLL's negative labels (score <
``--tau-ml``, the classes filter stage 2 calls absent) against the annotations of the scored file, when it has
them (the composited sets and mmdet's COCO splits keep the unlabeled images' boxes); the numbers are printed
and stored under ``negative_labels``.
"""

from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys
import tempfile
from typing import Optional

import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.runner import load_checkpoint

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Write SSMLL class scores of the unlabeled images')
    parser.add_argument('config', help='SSMLL config file')
    parser.add_argument('checkpoint', help='SSMLL checkpoint')
    parser.add_argument('--out', required=True, help='output JSON (ACRST semi_train_cfg.ml_scores_file)')
    parser.add_argument(
        '--ann-file', help='score this COCO file instead of the config score_dataset.ann_file'
    )
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--num-workers', type=int, default=2, help='DataLoader workers')
    parser.add_argument('--device', default=None, help="'cuda' / 'cpu' (default: cuda when available)")
    parser.add_argument(
        '--eval-negatives',
        action='store_true',
        help='report precision / recall of the negative labels against the scored file annotations',
    )
    parser.add_argument('--tau-ml', type=float, default=0.2, help='negative-label threshold (ACRST tau_ml)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    return parser.parse_args(argv)


def check_writable(path: str) -> None:
    """Fail before any work when ``--out`` cannot be written."""
    folder = osp.dirname(osp.abspath(path)) or '.'
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise SystemExit(f'--out {path!r}: cannot write to {folder!r} ({err.strerror or err})') from err


def score_images(
    cfg: Config, checkpoint: str, batch_size: int = 16, num_workers: int = 2, device: Optional[str] = None
) -> dict:
    """Run the SSMLL model over ``cfg.score_dataset``; return the JSON-ready scores dict."""
    from mmpretrain.registry import DATASETS, MODELS
    from mmpretrain.utils import register_all_modules
    from tqdm import tqdm

    import mmssod  # noqa: F401  (registers SSMLL / CocoMultiLabelDataset, applies the compat fixes)

    register_all_modules(init_default_scope=True)
    if 'score_dataset' not in cfg:
        raise SystemExit(f'{cfg.filename} has no score_dataset: it is not an SSMLL config')
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    dataset = DATASETS.build(cfg.score_dataset)
    model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu')
    model.to(device).eval()
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=pseudo_collate,
        pin_memory=device.startswith('cuda'),
    )
    scores, file_names = {}, {}
    with torch.no_grad():
        for batch in tqdm(loader, desc='SSMLL scores', unit='batch', dynamic_ncols=True):
            for ds in model.test_step(batch):
                img_id = str(ds.metainfo['img_id'])
                scores[img_id] = [round(float(v), 6) for v in ds.pred_score.cpu()]
                file_names[img_id] = osp.basename(ds.metainfo['img_path'])
    return {
        'classes': list(dataset.metainfo['classes']),
        'ann_file': dataset.ann_file,
        'checkpoint': osp.abspath(checkpoint),
        'scores': scores,
        'file_names': file_names,
    }


def evaluate_negatives(result: dict, ann_file: str, tau_ml: float) -> dict:
    """Precision / recall of the negative labels of ``result`` against the boxes of the COCO ``ann_file``."""
    from mmssod.models.acrst.ssmll import negative_label_precision_recall

    with open(ann_file) as f:
        ann = json.load(f)
    if not ann.get('annotations'):
        raise SystemExit(
            f'--eval-negatives: {ann_file} has no annotations to compare the negative labels with'
        )
    cats = {c['id']: c['name'] for c in ann['categories']}
    index = {name: k for k, name in enumerate(result['classes'])}
    present = {str(im['id']): set() for im in ann['images']}
    for a in ann['annotations']:
        if not a.get('iscrowd', 0):
            present[str(a['image_id'])].add(index[cats[a['category_id']]])
    ids = sorted(result['scores'])
    scores = torch.tensor([result['scores'][i] for i in ids])
    targets = torch.zeros_like(scores)
    for row, img_id in enumerate(ids):
        for k in present.get(img_id, ()):
            targets[row, k] = 1.0
    out = negative_label_precision_recall(scores, targets, tau_ml)
    out['tau_ml'] = tau_ml
    # the same per class: how often filter stage 2 would wrongly drop a class that is there
    out['per_class_present_dropped'] = {
        name: int(((scores[:, k] < tau_ml) & (targets[:, k] > 0)).sum()) for name, k in index.items()
    }
    return out


def main(argv=None) -> None:
    args = parse_args(argv)
    check_writable(args.out)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.ann_file:
        cfg.score_dataset.ann_file = args.ann_file
    result = score_images(cfg, args.checkpoint, args.batch_size, args.num_workers, args.device)
    if args.eval_negatives:
        result['negative_labels'] = evaluate_negatives(result, result['ann_file'], args.tau_ml)
        neg = result['negative_labels']
        print(
            f'[ssmll_scores] negative labels (score < {args.tau_ml}): precision {neg["precision"]:.4f}, '
            f'recall {neg["recall"]:.4f} ({neg["num_correct"]} right of {neg["num_negative_labels"]}, '
            f'{neg["num_absent"]} absent image-class pairs; {neg["num_present_dropped"]} present classes '
            'called absent)'
        )
    tmp = args.out + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(result, f)
    os.replace(tmp, args.out)
    print(f'[ssmll_scores] {len(result["scores"])} images x {len(result["classes"])} classes -> {args.out}')


if __name__ == '__main__':
    main()
