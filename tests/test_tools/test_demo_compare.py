"""The demo's side-by-side report (tools/analysis_tools/demo_compare.py) on fabricated CocoMetric outputs, and
its supervised arm derived from the demo's ACRST config (no training)."""

import importlib.util
import json
import os.path as osp

import pytest
from mmengine.config import Config

from ..conftest import REPO_ROOT

spec = importlib.util.spec_from_file_location(
    'demo_compare', osp.join(REPO_ROOT, 'tools/analysis_tools/demo_compare.py')
)
demo_compare = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo_compare)

ACRST_DEMO = osp.join(
    REPO_ROOT, 'configs/acrst/acrst_faster-rcnn_efficientnet-lite0_fpn_semi-0.25-composited-demo.py'
)
FREQ = {'cat': 30, 'dog': 3, 'bird': 12, 'fish': 1}  # rarest third (rounded up): fish, dog


def coco_metrics(per_class, m_ap, m_ap50, prefix='coco/'):
    """What CocoMetric(classwise=True) logs: fractions, per class ``<name>_precision``."""
    out = {f'{prefix}{c}_precision': v for c, v in per_class.items()}
    return dict(out, **{f'{prefix}bbox_mAP': m_ap, f'{prefix}bbox_mAP_50': m_ap50})


@pytest.fixture
def summaries():
    classes, rare = list(FREQ), demo_compare.rarest_third(FREQ)
    sup = coco_metrics({'cat': 0.5, 'dog': 0.1, 'bird': 0.4, 'fish': 0.0}, 0.25, 0.5)
    acrst = coco_metrics(  # ACRST's metrics as its val loop names the teacher's
        {'cat': 0.6, 'dog': 0.3, 'bird': 0.4, 'fish': 0.2}, 0.375, 0.7, prefix='teacher/coco/'
    )
    return {
        'supervised': demo_compare.arm_summary(sup, classes, rare),
        'acrst': demo_compare.arm_summary(acrst, classes, rare),
    }


def test_rarest_third_and_summary(summaries):
    assert demo_compare.rarest_third(FREQ) == ['fish', 'dog']
    acrst = summaries['acrst']
    assert acrst['mAP'] == pytest.approx(37.5) and acrst['mAP_50'] == pytest.approx(70.0)
    assert acrst['rare_AP'] == pytest.approx((20 + 30) / 2)
    assert summaries['supervised']['rare_AP'] == pytest.approx((0 + 10) / 2)


def test_side_by_side_rows(summaries):
    text = demo_compare.side_by_side(summaries, list(FREQ), FREQ, demo_compare.rarest_third(FREQ))
    rows = {line.split()[0]: line.split() for line in text.splitlines()[2:] if line.strip('-')}
    assert text.splitlines()[0].split()[-3:] == ['supervised', 'acrst', 'diff']
    assert rows['dog'] == ['dog', '*', '3', '10.0', '30.0', '+20.0']
    assert rows['bird'] == ['bird', '12', '40.0', '40.0', '+0.0']
    assert rows['mAP'] == ['mAP', '25.0', '37.5', '+12.5']
    assert rows['rarest'][-3:] == ['5.0', '25.0', '+20.0']


def test_plot_side_by_side(summaries, tmp_path):
    out = tmp_path / 'chart' / 'supervised_vs_acrst.png'
    rare = demo_compare.rarest_third(FREQ)
    ax = demo_compare.plot_side_by_side(summaries, list(FREQ), rare, str(out))
    with open(out, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    sup_bars, acrst_bars = ax.containers
    assert [b.get_height() for b in sup_bars] == pytest.approx([50, 10, 40, 0, 25, 5])
    assert [b.get_height() for b in acrst_bars] == pytest.approx([60, 30, 40, 20, 37.5, 25])
    assert [t.get_text() for t in ax.get_xticklabels()][:4] == ['cat', 'dog *', 'bird', 'fish *']


def test_read_test_metrics_takes_the_latest_run(tmp_path):
    for stamp, m_ap in (('20260101_000000', 0.1), ('20260102_000000', 0.2)):
        (tmp_path / stamp).mkdir()
        (tmp_path / stamp / f'{stamp}.json').write_text(json.dumps({'coco/bbox_mAP': m_ap}) + '\n')
    assert demo_compare.read_test_metrics(str(tmp_path))['coco/bbox_mAP'] == 0.2
    with pytest.raises(FileNotFoundError, match='tools/test.py'):
        demo_compare.read_test_metrics(str(tmp_path / 'none'))


def test_supervised_arm_of_the_demo_config(tmp_path):
    acrst = Config.fromfile(ACRST_DEMO)
    options = {'train_cfg.max_iters': 8}
    cfg = demo_compare.supervised_config(ACRST_DEMO, str(tmp_path), seed=3, cfg_options=options)
    assert cfg.model.type == 'FasterRCNN' and cfg.model.backbone == acrst.model.detector.backbone
    assert cfg.train_cfg.max_iters == 8 and cfg.randomness.seed == 3
    assert cfg.param_scheduler == acrst.param_scheduler and cfg.optim_wrapper == acrst.optim_wrapper
    assert cfg.train_dataloader.batch_size == acrst.train_dataloader.batch_size // 2  # the labeled share
    labeled = acrst.train_dataloader.dataset.datasets[0]
    assert cfg.train_dataloader.dataset.ann_file == labeled.ann_file
    types = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
    assert 'ACRSTPaste' not in types and 'MultiBranch' not in types and types[-1] == 'PackDetInputs'
    assert cfg.custom_hooks == [] and cfg.test_dataloader == acrst.test_dataloader
