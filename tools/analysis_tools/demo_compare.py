"""The demo's supervised arm beside ACRST: its config, then per-class AP side by side (text and one PNG).

``supervised-config`` writes the supervised arm of an ACRST config: ``acrst_bench``'s ``supervised`` arm (the
same detector on the labeled split only, the labeled share of each batch, no CropBank, no paste, no teacher)
with the ACRST config's own schedule, logging and checkpoints, and the given seed. ``--cfg-options`` are
applied to the ACRST config first, so both arms see the same overrides.

``compare`` reads the test metrics that ``tools/test.py`` logged for each arm (CocoMetric, classwise) and
prints per-class AP, mAP, mAP_50 and the AP of the rarest third of classes (by labeled-set frequency) side by
side, and draws them as one grouped bar chart. One run of each arm, one seed: it shows what each arm detects,
not whether one method beats the other (that needs seeds: ``tools/benchmarks/acrst_bench.py``).

Example::

    python tools/analysis_tools/demo_compare.py supervised-config ACRST_CONFIG --work-dir W/supervised \\
        --seed 0 --out W/supervised/supervised.py
    python tools/analysis_tools/demo_compare.py compare ACRST_CONFIG --supervised W/supervised/test \\
        --acrst W/test --out W/test/supervised_vs_acrst.png
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import os.path as osp
import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from tools.benchmarks.acrst_bench import class_ap, derive_config  # noqa: E402

#: The arms in the order they are printed and drawn.
ARMS = ('supervised', 'acrst')


def supervised_config(acrst_config: str, work_dir: str, seed: int, cfg_options: dict | None = None):
    """The supervised arm of ``acrst_config`` (``acrst_bench``'s derivation), on the ACRST config's schedule.

    Args:
        acrst_config (str): the ACRST config file.
        work_dir (str): the supervised run's work dir.
        seed (int): the run's seed (give the ACRST run the same one).
        cfg_options (dict, optional): ``--cfg-options`` applied to the ACRST config before deriving.

    Returns:
        Config: the supervised config.
    """
    from mmengine.config import Config

    acrst = Config.fromfile(acrst_config)
    if cfg_options:
        acrst.merge_from_dict(cfg_options)
    os.makedirs(work_dir, exist_ok=True)
    source = osp.join(work_dir, 'acrst_source.py')  # derive_config reads a file
    acrst.dump(source)
    (bank,) = [h for h in acrst.custom_hooks if h.type == 'CropBankHook']
    backbone = {'EfficientNetLite': 'efficientnet-lite0', 'ResNet': 'r18-scratch'}.get(
        acrst.model.detector.backbone.type
    )
    if backbone is None:  # derive_config would put the detector on another backbone
        raise ValueError(
            f'{acrst_config}: the supervised arm is derived for EfficientNetLite or ResNet backbones, not '
            f'{acrst.model.detector.backbone.type}; write its config by hand (model = the ACRST detector)'
        )
    args = argparse.Namespace(
        iters=acrst.train_cfg.max_iters,
        lr=None,
        batch_size=None,
        val_images=None,
        backbone=backbone,
        ml_scores=None,
        burn_in=acrst.model.semi_train_cfg.burn_in_iters,
        tau_cls=None,
        refresh_interval=bank.refresh_interval,
        deterministic=False,
    )
    cfg = derive_config(args, 'supervised', work_dir, seed, {'config': source})
    for key in ('param_scheduler', 'default_hooks', 'log_processor'):  # the demo's schedule, not the bench's
        cfg[key] = acrst[key]
    return cfg


def read_test_metrics(test_dir: str) -> dict:
    """The metrics of the latest ``tools/test.py`` run logged under ``test_dir`` (``<stamp>/<stamp>.json``).

    Raises:
        FileNotFoundError: when no run under ``test_dir`` logged bbox metrics.
    """
    files = sorted(glob.glob(osp.join(test_dir, '*', '*.json')))
    for path in reversed(files):
        with open(path) as f:
            lines = [json.loads(line) for line in f if line.strip()]
        if lines and any(k.endswith('bbox_mAP') for k in lines[-1]):
            return lines[-1]
    raise FileNotFoundError(
        f'no test metrics (a <timestamp>/<timestamp>.json with bbox_mAP) under {test_dir}: run tools/test.py '
        f'with --work-dir {test_dir} first'
    )


def rarest_third(freq: dict) -> list:
    """The rarest third of the classes (rounded up) by ``freq`` (class -> labeled instances), rarest first."""
    return sorted(freq, key=lambda c: freq[c])[: math.ceil(len(freq) / 3)]


def arm_summary(metrics: dict, classes: list, rare: list) -> dict:
    """mAP, mAP_50, rarest-third AP and per-class AP (percent) of one arm's CocoMetric output."""
    m_ap, m_ap50, per_class = class_ap(metrics, classes)
    return {
        'mAP': m_ap,
        'mAP_50': m_ap50,
        'rare_AP': sum(per_class[c] for c in rare) / len(rare),
        'per_class_AP': per_class,
    }


def side_by_side(summaries: dict, classes: list, freq: dict, rare: list) -> str:
    """A text table: one row per class (labeled instances, rarest third marked) and the totals, one column per
    arm of ``summaries`` (arm -> :func:`arm_summary`), and the last arm minus the first."""
    arms = list(summaries)
    first, last = summaries[arms[0]], summaries[arms[-1]]
    head = f'{"class":<16}{"labeled":>8}' + ''.join(f'{a:>12}' for a in arms) + f'{"diff":>8}'
    rows = [head, '-' * len(head)]

    def row(name, count, key_of):
        values = [key_of(summaries[a]) for a in arms]
        cells = ''.join(f'{v:>12.1f}' for v in values)
        return f'{name:<16}{count:>8}{cells}{key_of(last) - key_of(first):>+8.1f}'

    for c in classes:
        rows.append(row(c + (' *' if c in rare else ''), freq[c], lambda s, c=c: s['per_class_AP'][c]))
    rows.append('-' * len(head))
    for key, name in (('mAP', 'mAP'), ('mAP_50', 'mAP_50'), ('rare_AP', 'rarest third *')):
        rows.append(row(name, '', lambda s, key=key: s[key]))
    return '\n'.join(rows)


def plot_side_by_side(summaries: dict, classes: list, rare: list, out: str, title: str = ''):
    """Grouped bars of per-class AP, mAP and rarest-third AP, one colour per arm; written to ``out`` (PNG).

    Returns:
        Axes: the chart (one bar container per arm, in the order of ``summaries``).
    """
    groups = [*classes, 'mAP', 'rarest third']
    width = 0.8 / len(summaries)
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(groups)), 3.5))
    for i, (arm, s) in enumerate(summaries.items()):
        heights = [s['per_class_AP'][c] for c in classes] + [s['mAP'], s['rare_AP']]
        offset = (i - (len(summaries) - 1) / 2) * width
        ax.bar([g + offset for g in range(len(groups))], heights, width, label=arm)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([g + (' *' if g in rare else '') for g in groups], rotation=45, ha='right', fontsize=8)
    ax.axvline(len(classes) - 0.5, color='grey', lw=0.8)
    ax.set_ylabel('box AP (x100)')
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return ax


def labeled_frequency(acrst_config: str) -> dict:
    """Labeled instances per class name (in category id order) of the ACRST config's labeled split."""
    from mmengine.config import Config

    labeled = Config.fromfile(acrst_config).train_dataloader.dataset.datasets[0]
    ann_file = osp.join(labeled.data_root, labeled.ann_file)
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'labeled split {ann_file} of {acrst_config} not found: build the data first')
    with open(ann_file) as f:
        ann = json.load(f)
    cats = sorted(ann['categories'], key=lambda c: c['id'])
    return {c['name']: sum(a['category_id'] == c['id'] for a in ann['annotations']) for c in cats}


def parse_args(argv=None):
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    sup = sub.add_parser('supervised-config', help='write the supervised arm of an ACRST config')
    sup.add_argument('config', help='ACRST config')
    sup.add_argument('--work-dir', required=True, help="the supervised run's work dir")
    sup.add_argument('--seed', type=int, required=True, help='seed (the ACRST run takes the same)')
    sup.add_argument('--out', required=True, help='config file to write')
    sup.add_argument('--cfg-options', nargs='+', action=DictAction, help='applied to the ACRST config first')
    cmp = sub.add_parser('compare', help='per-class AP of both arms side by side (text and PNG)')
    cmp.add_argument('config', help='ACRST config (its labeled split gives the rarest third)')
    cmp.add_argument('--supervised', required=True, help="the supervised arm's tools/test.py --work-dir")
    cmp.add_argument('--acrst', required=True, help="the ACRST arm's tools/test.py --work-dir")
    cmp.add_argument('--out', required=True, help='PNG file to write')
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == 'compare':
        parser.error(f'compare takes no {extra}')
    if extra:  # the demo passes its tools/train.py arguments; only --cfg-options concern the config
        print(f'[demo] not applied to the supervised config: {extra}')
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.command == 'supervised-config':
        cfg = supervised_config(args.config, args.work_dir, args.seed, args.cfg_options)
        cfg.dump(args.out)
        print(f'[demo] supervised arm of {args.config} (labeled split only, seed {args.seed}): {args.out}')
        return
    freq = labeled_frequency(args.config)
    classes, rare = list(freq), rarest_third(freq)
    summaries = {
        'supervised': arm_summary(read_test_metrics(args.supervised), classes, rare),
        'acrst': arm_summary(read_test_metrics(args.acrst), classes, rare),
    }
    print('box AP x100 on the test split (* rarest third by labeled instances); one run each, one seed:')
    print(side_by_side(summaries, classes, freq, rare))
    title = 'one seed, composited from real images, CPU scale (* rarest third)'
    plot_side_by_side(summaries, classes, rare, args.out, title)
    print(f'[demo] supervised beside ACRST, per-class AP: {args.out}')


if __name__ == '__main__':
    main()
