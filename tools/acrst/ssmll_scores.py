"""Write SSMLL's per-image class scores for the unlabeled set: the file ACRST's filter stage 2 reads.

    python tools/acrst/ssmll_scores.py SSMLL_CONFIG CHECKPOINT --out work_dirs/.../unlabeled_scores.json

The images scored are the config's ``score_dataset`` (by default the unlabeled split, test pipeline);
``--ann-file`` scores another COCO file with the same image folder. The output JSON holds ``classes``,
``ann_file``, ``scores`` (``{img_id: [K scores]}``) and ``file_names`` (``{img_id: file name}``); point the
detector config's ``model.semi_train_cfg.ml_scores_file`` at it.
"""

from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys
import tempfile

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


def score_images(cfg: Config, checkpoint: str, batch_size: int = 16) -> dict:
    """Run the SSMLL model over ``cfg.score_dataset``; return the JSON-ready scores dict."""
    from mmpretrain.registry import DATASETS, MODELS
    from mmpretrain.utils import register_all_modules

    import mmssod  # noqa: F401  (registers SSMLL / CocoMultiLabelDataset, applies the compat fixes)

    register_all_modules(init_default_scope=True)
    if 'score_dataset' not in cfg:
        raise SystemExit(f'{cfg.filename} has no score_dataset: it is not an SSMLL config')
    dataset = DATASETS.build(cfg.score_dataset)
    model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu')
    model.eval()
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=False, collate_fn=pseudo_collate
    )
    scores, file_names = {}, {}
    with torch.no_grad():
        for batch in loader:
            for ds in model.test_step(batch):
                img_id = str(ds.metainfo['img_id'])
                scores[img_id] = [round(float(v), 6) for v in ds.pred_score]
                file_names[img_id] = osp.basename(ds.metainfo['img_path'])
    return {
        'classes': list(dataset.metainfo['classes']),
        'ann_file': dataset.ann_file,
        'checkpoint': osp.abspath(checkpoint),
        'scores': scores,
        'file_names': file_names,
    }


def main(argv=None) -> None:
    args = parse_args(argv)
    check_writable(args.out)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.ann_file:
        cfg.score_dataset.ann_file = args.ann_file
    result = score_images(cfg, args.checkpoint, args.batch_size)
    tmp = args.out + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(result, f)
    os.replace(tmp, args.out)
    print(f'[ssmll_scores] {len(result["scores"])} images x {len(result["classes"])} classes -> {args.out}')


if __name__ == '__main__':
    main()
