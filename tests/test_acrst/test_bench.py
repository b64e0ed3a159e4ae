"""The ACRST benchmark's evaluation math (pseudo-label precision / recall against ground truth) and arms."""

import importlib.util
import math
import os.path as osp

import numpy as np
import pytest

from tests.conftest import REPO_ROOT

spec = importlib.util.spec_from_file_location(
    'acrst_bench', osp.join(REPO_ROOT, 'tools/benchmarks/acrst_bench.py')
)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_pseudo_label_quality_hand_computed():
    gt = [
        (np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.array([0, 1])),
        (np.array([[0, 0, 10, 10]]), np.array([2])),
    ]
    dets = [
        # right class 0; a duplicate of it (FP); class 1 on the class-1 box at IoU 0.25 (FP, class 1 missed)
        (
            np.array([[0, 0, 10, 10], [1, 0, 10, 10], [20, 20, 25, 25]]),
            np.array([0, 0, 1]),
            np.array([0.9, 0.8, 0.95]),
        ),
        (np.zeros((0, 4)), np.zeros(0, np.int64), np.zeros(0)),  # class 2 never found
    ]
    q = bench.pseudo_label_quality(dets, gt, 3)
    assert q['tp'].tolist() == [1, 0, 0] and q['fp'].tolist() == [1, 1, 0] and q['fn'].tolist() == [0, 1, 1]
    assert q['precision'][0] == 0.5 and q['recall'][0] == 1.0
    assert q['precision'][1] == 0.0 and q['recall'][1] == 0.0
    assert math.isnan(q['precision'][2]) and q['recall'][2] == 0.0
    assert q['precision_all'] == pytest.approx(1 / 3) and q['recall_all'] == pytest.approx(1 / 3)


def test_the_higher_score_matches_first():
    gt = [(np.array([[0, 0, 10, 10]]), np.array([0]))]
    dets = [(np.array([[0, 0, 10, 9], [0, 0, 10, 10]]), np.array([0, 0]), np.array([0.6, 0.9]))]
    q = bench.pseudo_label_quality(dets, gt, 1, iou_thr=0.5)
    assert q['tp'].tolist() == [1] and q['fp'].tolist() == [1]


def test_arms_share_data_and_schedule_and_use_the_pretrained_backbone(demo_det_root, tmp_path):
    args = bench.parse_args(['--demo', '--iters', '10', '--burn-in', '4', '--mechanism'])
    assert args.methods == ['supervised', 'soft_teacher', 'acrst', 'acrst_beta0']
    from mmengine.config import Config

    labeled, unlabeled = Config.fromfile(bench.DEMO_CONFIG).train_dataloader.dataset.datasets
    splits = (labeled.ann_file, unlabeled.ann_file)  # the demo config's own split, on the session's demo data
    setup = {'config': bench.DEMO_CONFIG, 'root': demo_det_root, 'splits': splits}
    cfgs = {m: bench.derive_config(args, m, str(tmp_path / m), 3, setup) for m in args.methods}
    for method, cfg in cfgs.items():
        assert cfg.randomness.seed == 3 and cfg.train_cfg.max_iters == 10
        detector = cfg.model if method == 'supervised' else cfg.model.detector
        assert detector.backbone.type == 'EfficientNetLite' and detector.backbone.pretrained
        assert len(detector.rpn_head.anchor_generator.strides) == detector.neck.num_outs
        dataset = (
            cfg.train_dataloader.dataset
            if method == 'supervised'
            else cfg.train_dataloader.dataset.datasets[0]
        )
        assert dataset.data_root.startswith(demo_det_root)
    hooks = {m: {h.type: h for h in cfgs[m].custom_hooks} for m in ('acrst', 'acrst_beta0')}
    assert hooks['acrst']['CropBankHook'].beta == 0.6 and hooks['acrst_beta0']['CropBankHook'].beta == 0.0
    assert hooks['acrst']['CropBankHook'].label_cap is None  # the whole labeled set
    assert cfgs['acrst'].model.semi_train_cfg.burn_in_iters == 4
    assert cfgs['soft_teacher'].model.type == 'SoftTeacher' and not any(
        h.type == 'CropBankHook' for h in cfgs['soft_teacher'].custom_hooks
    )


def test_backbone_swap_keeps_strides_consistent():
    from mmengine.config import Config

    detector = Config.fromfile(bench.LT_CONFIG).model.detector
    for name in ('efficientnet-lite0', 'r18-scratch', 'efficientnet-lite0'):
        bench.use_backbone(detector, name)
        strides = detector.rpn_head.anchor_generator.strides
        assert len(strides) == detector.neck.num_outs
        roi_strides = list(detector.roi_head.bbox_roi_extractor.featmap_strides)
        assert roi_strides == list(strides[: len(roi_strides)])  # RoI levels are the first FPN levels
        assert detector.backbone.type == ('ResNet' if name == 'r18-scratch' else 'EfficientNetLite')


def _results_file(path, seeds, freq, acrst_rare):
    """A results.json as the bench writes it, for ``seeds`` (ACRST's rare-third AP per seed given)."""
    import json

    arm = lambda m, r: dict(mAP=m, mAP_50=2 * m, rare_AP=r, iter_time_s=1.0)  # noqa: E731
    results = {
        str(s): {'supervised': arm(20, 5), 'soft_teacher': arm(22, 6), 'acrst': arm(22, acrst_rare[i])}
        for i, s in enumerate(seeds)
    }
    run = dict(args=vars(bench.parse_args([])), device='cpu', rare_classes=['b'], labeled_instances=freq)
    with open(path, 'w') as f:
        json.dump(dict(run, results=results), f)
    return str(path)


def test_merge_reports_the_seeds_of_separate_runs_as_one(tmp_path):
    """Seeds run as separate processes merge into one report with every seed and the goal check."""
    import json

    freq = {'a': 10, 'b': 2}
    first = _results_file(tmp_path / 'a.json', [0], freq, [9.0])
    second = _results_file(tmp_path / 'b.json', [1, 2], freq, [9.5, 8.5])
    out = tmp_path / 'merged.json'
    bench.main(['--merge', first, second, '--out', str(out)])
    merged = json.loads(out.read_text())
    assert sorted(merged['results']) == ['0', '1', '2']
    per_seed = merged['summary']['acrst_minus_soft_teacher']['per_seed']['rare_AP']
    assert per_seed == pytest.approx([3.0, 3.5, 2.5])

    other = _results_file(tmp_path / 'c.json', [3], {'a': 11, 'b': 2}, [9.0])
    with pytest.raises(SystemExit, match='other than'):
        bench.main(['--merge', first, other, '--out', str(out)])
