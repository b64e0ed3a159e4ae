"""(Re)build the corrupted val copy of a composited detection set (out-of-domain set for calibration).

One random corruption (gaussian_noise, shot_noise, gaussian_blur, defocus_blur, contrast, haze, jpeg,
pixelate) at a random severity 1-5 per val image, fixed by ``--seed``; annotations are unchanged.
``composited_det.py`` already writes this copy; use this tool to redraw it with another seed.

Example::

    python tools/dataset_converters/composited_corrupt.py --out data/composited_lt_det --seed 0 --preview
"""

import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # run from a source checkout
from tools.benchmarks.composited.cli import base_parser, run_cli  # noqa: E402
from tools.benchmarks.composited.detection import build_corrupted  # noqa: E402


def main(argv=None):
    p = base_parser(
        'Corrupted copy of a composited detection val set (writes <out>/val_corrupted/ and '
        '<out>/annotations/instances_val_corrupted.json).',
        'data/composited_lt_det',
    )
    args = p.parse_args(argv)
    meta = build_corrupted(args.out, args.seed, not args.no_progress, args.preview)
    print(f'wrote {args.out}/val_corrupted: corruptions {meta["corruptions"]}')
    return meta


if __name__ == '__main__':
    sys.exit(run_cli(main))
