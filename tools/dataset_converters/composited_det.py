"""Build the composited long-tailed detection benchmark (COCO json, semi-supervised splits, corrupted val).

Fashion-MNIST items (exact masks and boxes) are pasted onto scikit-image photos/textures; class frequencies
follow an exponential long tail. Results on it are "composited from real images".

Example::

    python tools/dataset_converters/composited_det.py --out data/composited_lt_det --seed 0 --preview
    python tools/dataset_converters/composited_det.py --demo --out data/composited_det_demo
"""

import dataclasses
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # run from a source checkout
from tools.benchmarks.composited.cli import base_parser, int_range, run_cli  # noqa: E402
from tools.benchmarks.composited.detection import (  # noqa: E402
    DEMO_CONFIG,
    DetectionConfig,
    build_detection,
    resolve_class_order,
)


def main(argv=None):
    d = DetectionConfig()
    p = base_parser('Composited long-tailed detection benchmark.', 'data/composited_lt_det')
    p.add_argument('--demo', action='store_true', help='use the small demo sizes (flags below are ignored)')
    p.add_argument('--num-train', type=int, default=d.num_train, help='train canvases')
    p.add_argument('--num-val', type=int, default=d.num_val, help='val canvases')
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
        '--imbalance-ratio', type=float, default=d.imbalance_ratio, help='train head/tail instance ratio'
    )
    p.add_argument(
        '--val-imbalance-ratio',
        type=float,
        default=d.val_imbalance_ratio,
        help='val head/tail ratio (milder, so tail classes have enough val instances)',
    )
    p.add_argument(
        '--class-order',
        default='natural',
        help="frequency order: 'natural' (T-shirt/top head ... Ankle boot tail), 'random' (seeded), "
        'or comma-separated class ids/names, head first',
    )
    p.add_argument(
        '--min-visible',
        type=float,
        default=d.min_visible,
        help='fraction of its pixels each item keeps visible under later pastes',
    )
    p.add_argument('--percents', type=float, nargs='+', default=d.percents, help='labeled percentages')
    p.add_argument('--folds', type=int, default=len(d.folds), help='number of folds (fold ids 1..N)')
    p.add_argument('--no-corrupt', action='store_true', help='skip the corrupted val copy')
    args = p.parse_args(argv)
    if args.demo:
        cfg = DEMO_CONFIG
    else:
        cfg = DetectionConfig(
            num_train=args.num_train,
            num_val=args.num_val,
            height=args.height,
            width=args.width,
            objects_per_image=int_range(args.objects, '--objects'),
            size_range=int_range(args.object_size, '--object-size'),
            imbalance_ratio=args.imbalance_ratio,
            val_imbalance_ratio=args.val_imbalance_ratio,
            class_order=resolve_class_order(args.class_order, args.seed),
            min_visible=args.min_visible,
            percents=tuple(args.percents),
            folds=tuple(range(1, args.folds + 1)),
            corrupt=not args.no_corrupt,
        )
    meta = build_detection(args.out, args.seed, cfg, args.fmnist_root, not args.no_progress, args.preview)
    print(f'wrote {args.out}: images {meta["num_images"]}, class histogram {meta["class_histogram"]}')
    print('parameters:', dataclasses.asdict(cfg))
    return meta


if __name__ == '__main__':
    sys.exit(run_cli(main))
