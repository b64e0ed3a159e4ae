"""Build a CorCOCO-style out-of-domain copy of a COCO-format val set for Cal-DETR's calibration tests.

Each image gets one random corruption at a random severity 1-5 (``tools.benchmarks.composited.corruptions``:
gaussian / shot noise, gaussian / defocus blur, contrast, haze, JPEG, pixelate), drawn from a stream seeded by
``(seed, image id)``; annotations are unchanged. The paper's CorCOCO uses ImageNet-C corruptions with an
unpublished seed, so numbers on this copy are comparable with each other, not with the paper's.

Example (COCO val2017)::

    python tools/dataset_converters/corrupted_coco.py \
        --ann data/coco/annotations/instances_val2017.json --img-dir data/coco/val2017 \
        --out-img-dir data/coco/val2017_corrupted \
        --out-ann data/coco/annotations/instances_val2017_corrupted.json --seed 0
"""

import argparse
import json
import os
import os.path as osp
import sys
from collections import Counter

import cv2
import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # run from a source checkout
from tools.benchmarks.composited.corruptions import random_corruption  # noqa: E402


def corrupt_coco(ann: str, img_dir: str, out_img_dir: str, out_ann: str, seed: int = 0) -> dict:
    """Write the corrupted images and an annotation file that records each image's corruption.

    Args:
        ann (str): COCO annotation file of the clean split.
        img_dir (str): Folder of the clean images (``file_name`` relative to it).
        out_img_dir (str): Folder for the corrupted images (same file names).
        out_ann (str): Output annotation file.
        seed (int): Seed of the corruption draws. Defaults to 0.

    Returns:
        dict: how many images got each corruption.
    """
    if not osp.isfile(ann):
        raise FileNotFoundError(f'--ann {ann!r} does not exist')
    with open(ann) as f:
        coco = json.load(f)
    images = []
    for img in coco['images']:
        src = osp.join(img_dir, img['file_name'])
        pixels = cv2.imread(src, cv2.IMREAD_COLOR)  # grey COCO images become 3-channel
        if pixels is None:
            raise FileNotFoundError(f'cannot read image {src!r} (check --img-dir)')
        rng = np.random.default_rng([seed, int(img['id'])])
        out, name, severity = random_corruption(np.ascontiguousarray(pixels[..., ::-1]), rng)
        dst = osp.join(out_img_dir, img['file_name'])
        os.makedirs(osp.dirname(dst), exist_ok=True)
        cv2.imwrite(dst, np.ascontiguousarray(out[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 95])
        images.append({**img, 'corruption': name, 'severity': severity})
    os.makedirs(osp.dirname(osp.abspath(out_ann)), exist_ok=True)
    with open(out_ann, 'w') as f:
        json.dump({**coco, 'images': images}, f)
    return dict(Counter(img['corruption'] for img in images))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--ann', required=True, help='clean COCO annotation file')
    p.add_argument('--img-dir', required=True, help='folder of the clean images')
    p.add_argument('--out-img-dir', required=True, help='folder for the corrupted images')
    p.add_argument('--out-ann', required=True, help='output annotation file')
    p.add_argument('--seed', type=int, default=0)
    args = p.parse_args(argv)
    counts = corrupt_coco(args.ann, args.img_dir, args.out_img_dir, args.out_ann, args.seed)
    print(f'wrote {sum(counts.values())} images to {args.out_img_dir}: {counts}')


if __name__ == '__main__':
    main()
