"""Annotation file for Foggy Cityscapes (Sakaridis et al.): Cityscapes' COCO-style json with foggy file names.

Foggy Cityscapes reuses Cityscapes' labels; only the images differ (``leftImg8bit_foggy/<split>/<city>/
<name>_leftImg8bit_foggy_beta_<beta>.png``). Convert Cityscapes first with mmdet's
``tools/dataset_converters/cityscapes.py`` (gives ``annotations/instancesonly_filtered_gtFine_val.json``).

Example::

    python tools/dataset_converters/foggy_cityscapes.py \
        --ann data/cityscapes/annotations/instancesonly_filtered_gtFine_val.json \
        --out data/cityscapes/annotations/instancesonly_filtered_gtFine_val_foggy_beta_0.02.json \
        --beta 0.02 --check-dir data/cityscapes/leftImg8bit_foggy/val
"""

import argparse
import json
import os
import os.path as osp


def foggy_name(file_name: str, beta: float) -> str:
    """``x_leftImg8bit.png`` -> ``x_leftImg8bit_foggy_beta_<beta>.png``."""
    if not file_name.endswith('_leftImg8bit.png'):
        raise ValueError(f'{file_name!r} is not a Cityscapes leftImg8bit file name')
    return file_name[: -len('.png')] + f'_foggy_beta_{beta}.png'


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--ann', required=True, help='Cityscapes COCO-style annotation file')
    p.add_argument('--out', required=True, help='output annotation file')
    p.add_argument('--beta', type=float, default=0.02, choices=[0.005, 0.01, 0.02], help='fog density')
    p.add_argument('--check-dir', help='foggy image folder: fail if an image is missing')
    args = p.parse_args(argv)
    with open(args.ann) as f:
        coco = json.load(f)
    for img in coco['images']:
        img['file_name'] = foggy_name(img['file_name'], args.beta)
        if args.check_dir and not osp.isfile(osp.join(args.check_dir, img['file_name'])):
            raise FileNotFoundError(f'foggy image {img["file_name"]!r} not found under {args.check_dir}')
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(coco, f)
    print(f'wrote {args.out} ({len(coco["images"])} images, beta {args.beta})')


if __name__ == '__main__':
    main()
