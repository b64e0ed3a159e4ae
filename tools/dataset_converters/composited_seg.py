"""Build the composited semantic-segmentation benchmark (mmseg / mmdet BaseSegDataset layout).

Label maps: 0 = background, k + 1 = Fashion-MNIST class k, 255 = ignore (never written by the generator).
Also writes few-label train subsets (``splits/train.{fold}@{percent}.txt``) and an unlabeled image folder
(``img_dir/unlabeled``) for decoder pretraining. Results on it are "composited from real images".

Example::

    python tools/dataset_converters/composited_seg.py --out data/composited_seg --seed 0 --preview
"""

import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # run from a source checkout
from tools.benchmarks.composited.cli import base_parser, int_range, run_cli  # noqa: E402
from tools.benchmarks.composited.segmentation import SegmentationConfig, build_segmentation  # noqa: E402


def main(argv=None):
    d = SegmentationConfig()
    p = base_parser('Composited semantic-segmentation benchmark.', 'data/composited_seg')
    p.add_argument('--num-train', type=int, default=d.num_train, help='labeled train canvases')
    p.add_argument('--num-val', type=int, default=d.num_val, help='val canvases')
    p.add_argument('--num-unlabeled', type=int, default=d.num_unlabeled, help='unlabeled canvases')
    p.add_argument('--height', type=int, default=d.height, help='canvas height (px)')
    p.add_argument('--width', type=int, default=d.width, help='canvas width (px)')
    p.add_argument(
        '--objects',
        type=int,
        nargs=2,
        default=d.objects_per_image,
        metavar=('MIN', 'MAX'),
        help='items per canvas',
    )
    p.add_argument(
        '--object-size',
        type=int,
        nargs=2,
        default=d.size_range,
        metavar=('MIN', 'MAX'),
        help="item's longer side (px, log-uniform)",
    )
    p.add_argument(
        '--imbalance-ratio',
        type=float,
        default=d.imbalance_ratio,
        help='head/tail ratio of item classes (1 = balanced)',
    )
    p.add_argument('--percents', type=float, nargs='+', default=d.percents, help='few-label percentages')
    p.add_argument('--folds', type=int, default=len(d.folds), help='number of folds (fold ids 1..N)')
    args = p.parse_args(argv)
    cfg = SegmentationConfig(
        num_train=args.num_train,
        num_val=args.num_val,
        num_unlabeled=args.num_unlabeled,
        height=args.height,
        width=args.width,
        objects_per_image=int_range(args.objects, '--objects'),
        size_range=int_range(args.object_size, '--object-size'),
        imbalance_ratio=args.imbalance_ratio,
        percents=tuple(args.percents),
        folds=tuple(range(1, args.folds + 1)),
    )
    meta = build_segmentation(args.out, args.seed, cfg, args.fmnist_root, not args.no_progress, args.preview)
    print(f'wrote {args.out}: images {meta["num_images"]}, few-label splits {meta["few_label_splits"]}')
    return meta


if __name__ == '__main__':
    sys.exit(run_cli(main))
