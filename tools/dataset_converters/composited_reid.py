"""Build the composited two-domain re-ID benchmark (Market-1501 layout and file names).

Identity = one Fashion-MNIST item with its own colour; camera = background source + colour cast + zoom /
blur / noise / resolution; ``source`` and ``target`` domains render in different styles with disjoint items.
Results on it are "composited from real images".

``--target-domain hard`` draws source and target items from disjoint Fashion-MNIST classes and gives the
identities colours from a small shared palette (written to data/composited_reid_hard unless --out is given).

Example::

    python tools/dataset_converters/composited_reid.py --out data/composited_reid --seed 0 --preview
    python tools/dataset_converters/composited_reid.py --target-domain hard --seed 0
"""

import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # run from a source checkout
from tools.benchmarks.composited.cli import base_parser, int_range, run_cli  # noqa: E402
from tools.benchmarks.composited.reid import (  # noqa: E402
    DOMAIN_STYLES,
    TARGET_DOMAIN_ROOTS,
    TARGET_DOMAINS,
    ReIDConfig,
    build_reid,
)


def main(argv=None):
    d = ReIDConfig()
    p = base_parser('Composited two-domain re-ID benchmark.', 'data/composited_reid')
    p.add_argument(
        '--domains', nargs='+', default=d.domains, choices=sorted(DOMAIN_STYLES), help='domains to render'
    )
    p.add_argument('--train-ids', type=int, default=d.train_ids, help='train identities per domain')
    p.add_argument('--test-ids', type=int, default=d.test_ids, help='test identities per domain')
    p.add_argument('--cameras', type=int, default=d.num_cameras, help='cameras per domain')
    p.add_argument(
        '--cameras-per-id',
        type=int,
        nargs=2,
        default=d.cameras_per_id,
        metavar=('MIN', 'MAX'),
        help='cameras that see one identity',
    )
    p.add_argument(
        '--images-per-camera',
        type=int,
        nargs=2,
        default=d.images_per_camera,
        metavar=('MIN', 'MAX'),
        help='crops per (identity, camera); >= 2',
    )
    p.add_argument('--height', type=int, default=d.height, help='crop height (px)')
    p.add_argument('--width', type=int, default=d.width, help='crop width (px)')
    p.add_argument(
        '--distractors', type=int, default=d.num_distractors, help='gallery distractors (pid 0000)'
    )
    p.add_argument('--junk', type=int, default=d.num_junk, help='gallery junk crops (pid -1)')
    p.add_argument(
        '--target-domain',
        default='default',
        choices=sorted(TARGET_DOMAINS),
        help='hard: disjoint Fashion-MNIST classes per domain, 4 palette colours shared by the identities; '
        f'without --out, written to {TARGET_DOMAIN_ROOTS}[target domain]',
    )
    p.set_defaults(out=None)
    args = p.parse_args(argv)
    args.out = args.out or TARGET_DOMAIN_ROOTS[args.target_domain]
    cfg = ReIDConfig.for_target_domain(
        args.target_domain,
        domains=tuple(args.domains),
        train_ids=args.train_ids,
        test_ids=args.test_ids,
        num_cameras=args.cameras,
        cameras_per_id=int_range(args.cameras_per_id, '--cameras-per-id'),
        images_per_camera=int_range(args.images_per_camera, '--images-per-camera'),
        height=args.height,
        width=args.width,
        num_distractors=args.distractors,
        num_junk=args.junk,
    )
    meta = build_reid(args.out, args.seed, cfg, args.fmnist_root, not args.no_progress, args.preview)
    for dom, info in meta['domains'].items():
        print(f'wrote {args.out}/{dom}: {info["images"]}')
    return meta


if __name__ == '__main__':
    sys.exit(run_cli(main))
