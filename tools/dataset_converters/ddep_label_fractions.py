"""Write few-label subsets (1 / 2 / 5 / 10 / 20 % of the train images) for DDeP fine-tuning.

The subsets are ``ann_file`` lists of mmseg's ``BaseSegDataset`` (image names relative to the image folder,
without the image suffix), chosen by a seeded permutation so every run and every method sees the same
images. ``configs/ddep/*_{p}pct.py`` read ``<data_root>/splits/train@{p}.txt``.

Examples::

    # Cityscapes: scan leftImg8bit/train recursively
    python tools/dataset_converters/ddep_label_fractions.py data/cityscapes \
        --img-dir leftImg8bit/train --img-suffix _leftImg8bit.png
    # ADE20K
    python tools/dataset_converters/ddep_label_fractions.py data/ade/ADEChallengeData2016 \
        --img-dir images/training --img-suffix .jpg
    # Pascal Context: subsets of an existing list
    python tools/dataset_converters/ddep_label_fractions.py data/VOCdevkit/VOC2010 \
        --source-list ImageSets/SegmentationContext/train.txt
"""

import argparse
import math
import os
import os.path as osp
import sys
from decimal import Decimal
from fractions import Fraction
from typing import List, Sequence

import numpy as np


def fraction_size(percent: float, total: int) -> int:
    """``floor(percent / 100 * total)`` in exact arithmetic, at least 1.

    ``percent`` is read through its shortest decimal form, so 29% of 100 is 29 (the float product
    ``0.29 * 100`` is 28.999999999999996 and floors to 28).

    Args:
        percent (float): Percentage in (0, 100].
        total (int): Number of images.

    Returns:
        int: Subset size.
    """
    exact = Fraction(Decimal(repr(float(percent)))) * total / 100
    return max(1, math.floor(exact))


def list_images(root: str, suffix: str) -> List[str]:
    """Image names under ``root`` (recursive), relative, without ``suffix``, sorted.

    Args:
        root (str): Image folder.
        suffix (str): File-name ending of the images (e.g. ``_leftImg8bit.png``).

    Returns:
        list[str]: Names such as ``aachen/aachen_000000_000019``.
    """
    names = []
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f.endswith(suffix):
                rel = osp.relpath(osp.join(dirpath, f), root)
                names.append(rel[: -len(suffix)].replace(os.sep, '/'))
    return sorted(names)


def label_fraction(names: Sequence[str], percent: float, seed: int) -> List[str]:
    """A seeded subset with ``floor(percent / 100 * N)`` names (exact, at least one), in the original order.

    Subsets of one seed are nested (the 1% subset is inside the 2% subset, and so on).

    Args:
        names (Sequence[str]): All train image names.
        percent (float): Percentage in (0, 100].
        seed (int): Permutation seed.

    Returns:
        list[str]: The chosen names.
    """
    if not 0 < percent <= 100:
        raise ValueError(f'--percents: {percent} is not in (0, 100]')
    n = fraction_size(percent, len(names))
    order = np.random.default_rng(seed).permutation(len(names))
    keep = set(order[:n].tolist())
    return [name for i, name in enumerate(names) if i in keep]


def main(argv=None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description='Few-label train subsets for DDeP fine-tuning')
    p.add_argument('data_root', help='dataset root (the data_root of the config)')
    p.add_argument('--img-dir', help='train image folder relative to data_root (scanned recursively)')
    p.add_argument('--img-suffix', default='.jpg', help='image file ending. Defaults to .jpg')
    p.add_argument('--source-list', help='existing train list relative to data_root (instead of --img-dir)')
    p.add_argument('--percents', type=float, nargs='+', default=[1, 2, 5, 10, 20])
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--out-dir', default='splits', help='output folder relative to data_root')
    args = p.parse_args(argv)
    if bool(args.img_dir) == bool(args.source_list):
        p.error('give exactly one of --img-dir or --source-list')
    if args.source_list:
        with open(osp.join(args.data_root, args.source_list)) as f:
            names = [line.strip() for line in f if line.strip()]
    else:
        folder = osp.join(args.data_root, args.img_dir)
        if not osp.isdir(folder):
            p.error(f'--img-dir: {folder} is not a folder')
        names = list_images(folder, args.img_suffix)
    if not names:
        p.error(f'no train images found (check --img-dir / --img-suffix {args.img_suffix!r} / --source-list)')
    out_dir = osp.join(args.data_root, args.out_dir)
    os.makedirs(out_dir, exist_ok=True)
    for percent in args.percents:
        chosen = label_fraction(names, percent, args.seed)
        tag = f'{percent:g}'
        with open(osp.join(out_dir, f'train@{tag}.txt'), 'w') as f:
            f.write('\n'.join(chosen) + '\n')
        print(f'{out_dir}/train@{tag}.txt: {len(chosen)} of {len(names)} images')
    return 0


if __name__ == '__main__':
    sys.exit(main())
