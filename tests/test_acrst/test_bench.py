"""The ACRST benchmark: evaluation math (pseudo-label precision / recall), the ablation arms' configs, the
pilot gate and the report's differences."""

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


@pytest.fixture(scope='module')
def arm_configs(demo_det_root, tmp_path_factory):
    """Every arm's config derived from the demo ACRST config, same seed and work dir (so only arms differ)."""
    from mmengine.config import Config

    args = bench.parse_args(
        [
            '--demo',
            '--iters',
            '10',
            '--burn-in',
            '4',
            '--ml-scores',
            'scores.json',
            '--methods',
            *bench.METHODS,
        ]
    )
    labeled, unlabeled = Config.fromfile(bench.DEMO_CONFIG).train_dataloader.dataset.datasets
    splits = (labeled.ann_file, unlabeled.ann_file)  # the demo config's own split (pytest's demo data)
    setup = {'config': bench.DEMO_CONFIG, 'root': demo_det_root, 'splits': splits}
    work_dir = str(tmp_path_factory.mktemp('arm'))
    return {m: bench.derive_config(args, m, work_dir, 3, setup) for m in args.methods}


def test_arms_share_data_and_schedule_and_use_the_pretrained_backbone(arm_configs, demo_det_root):
    args = bench.parse_args(['--demo', '--mechanism'])
    assert args.methods == list(bench.DEFAULT_ARMS) + ['acrst_beta0']
    assert 'soft_teacher_mmdet' not in bench.DEFAULT_ARMS
    assert bench.parse_args(['--methods', 'soft_teacher', 'acrst']).methods == ['soft_teacher_mmdet', 'acrst']
    for method, cfg in arm_configs.items():
        assert cfg.randomness.seed == 3 and cfg.train_cfg.max_iters == 10
        supervised = method.startswith('supervised')
        detector = cfg.model if supervised else cfg.model.detector
        assert detector.backbone.type == 'EfficientNetLite' and detector.backbone.pretrained
        assert len(detector.rpn_head.anchor_generator.strides) == detector.neck.num_outs
        dataset = cfg.train_dataloader.dataset if supervised else cfg.train_dataloader.dataset.datasets[0]
        assert dataset.data_root.startswith(demo_det_root)
        if method in bench.ACRST_RECIPE_ARMS:
            assert cfg.model.type == 'ACRST' and cfg.model.semi_train_cfg.burn_in_iters == 4
    hooks = {m: {h.type: h for h in arm_configs[m].custom_hooks} for m in ('acrst', 'acrst_beta0')}
    assert hooks['acrst']['CropBankHook'].beta == 0.6 and hooks['acrst_beta0']['CropBankHook'].beta == 0.0
    assert hooks['acrst']['CropBankHook'].label_cap is None  # the whole labeled set
    mmdet = arm_configs['soft_teacher_mmdet']
    assert mmdet.model.type == 'SoftTeacher' and mmdet.model.semi_train_cfg.cls_pseudo_thr == 0.9
    assert not any(h.type == 'CropBankHook' for h in mmdet.custom_hooks)


def _no_paste(cfg_dict: dict) -> dict:
    """A config dict without ACRSTPaste, pasted_* meta keys and CropBankHook (what the paste arms add)."""
    import copy

    out = copy.deepcopy(cfg_dict)
    out['custom_hooks'] = [h for h in out['custom_hooks'] if h['type'] != 'CropBankHook']
    dataset = out['train_dataloader']['dataset']
    for ds in dataset.get('datasets', [dataset]):
        ds['pipeline'] = bench.strip_paste(ds['pipeline'])
    return out


def test_each_arm_differs_from_its_neighbour_only_in_the_part_under_test(arm_configs):
    cfg = {m: c.to_dict() for m, c in arm_configs.items()}
    hook = [h['type'] for h in cfg['acrst']['custom_hooks']].index('CropBankHook')
    semi = 'model.semi_train_cfg.'
    expected = {
        ('acrst', 'acrst_no_stage2'): [semi + 'tau_ml'],
        ('acrst', 'acrst_regress_all'): [semi + 'regress_pseudo'],
        ('acrst', 'acrst_label_bank'): [f'custom_hooks.{hook}.pseudo_cap'],
        ('acrst', 'acrst_pseudo_bank'): [f'custom_hooks.{hook}.label_cap'],
        ('acrst', 'acrst_beta0'): [f'custom_hooks.{hook}.beta'],
        ('soft_teacher_fbr', 'acrst'): [
            f'custom_hooks.{hook}.beta',
            semi + 'regress_pseudo',
            semi + 'tau_ml',
        ],
    }
    for (a, b), paths in expected.items():
        assert bench.config_diff(cfg[a], cfg[b]) == sorted(paths), (a, b)
    assert cfg['acrst_no_stage2']['model']['semi_train_cfg']['tau_ml'] is None
    assert cfg['acrst_regress_all']['model']['semi_train_cfg']['regress_pseudo'] is True
    assert cfg['acrst_label_bank']['custom_hooks'][hook]['pseudo_cap'] == 0
    assert cfg['acrst_pseudo_bank']['custom_hooks'][hook]['label_cap'] == 0

    # c vs d and a vs b: only the paste and the bank; without them the configs are the same
    for base, paste in (('soft_teacher_base', 'soft_teacher_fbr'), ('supervised', 'supervised_fbr')):
        diff = bench.config_diff(cfg[base], cfg[paste])
        assert diff and all(p.startswith('custom_hooks') or '.pipeline' in p for p in diff), diff
        assert bench.config_diff(cfg[base], _no_paste(cfg[paste])) == []
    sup_pipeline = cfg['supervised_fbr']['train_dataloader']['dataset']['pipeline']
    (paste,) = [t for t in sup_pipeline if t['type'] == 'ACRSTPaste']
    assert paste['bank_file'] == bench.label_bank_file(cfg['supervised_fbr']['work_dir'])
    assert not any(h['type'] == 'CropBankHook' for h in cfg['supervised_fbr']['custom_hooks'])
    # c is ACRST's recipe with stage 2 and selective supervision off
    c = cfg['soft_teacher_base']['model']['semi_train_cfg']
    e = cfg['acrst']['model']['semi_train_cfg']
    assert c['tau_ml'] is None and c['regress_pseudo'] is True and e['regress_pseudo'] is False
    assert {k: v for k, v in c.items() if k not in ('tau_ml', 'regress_pseudo')} == {
        k: v for k, v in e.items() if k not in ('tau_ml', 'regress_pseudo')
    }


def test_tau_cls_changes_every_arm_on_acrsts_recipe_alike(demo_det_root, tmp_path):
    from mmengine.config import Config

    args = bench.parse_args(['--demo', '--tau-cls', '0.5', '--methods', *bench.METHODS])
    labeled, unlabeled = Config.fromfile(bench.DEMO_CONFIG).train_dataloader.dataset.datasets
    setup = {
        'config': bench.DEMO_CONFIG,
        'root': demo_det_root,
        'splits': (labeled.ann_file, unlabeled.ann_file),
    }
    for method in bench.ACRST_RECIPE_ARMS + ('soft_teacher_mmdet',):
        semi = bench.derive_config(args, method, str(tmp_path), 0, setup).model.semi_train_cfg
        if method == 'soft_teacher_mmdet':  # mmdet's own recipe keeps its thresholds
            assert semi.cls_pseudo_thr == 0.9 and 'tau_cls' not in semi
        else:
            assert semi.tau_cls == semi.rpn_pseudo_thr == semi.cls_pseudo_thr == 0.5, method


def test_label_bank_of_the_supervised_paste_arm_feeds_the_paste_without_a_hook(arm_configs, monkeypatch):
    import json

    from mmssod.datasets.cropbank import read_bank_file
    from mmssod.datasets.transforms import ACRSTPaste

    monkeypatch.delenv('MMSSOD_CROPBANK_FILE', raising=False)
    cfg = arm_configs['supervised_fbr']
    path = bench.write_label_bank(cfg)
    bank = read_bank_file(path)
    label, pseudo = bank['banks']
    dataset = cfg.train_dataloader.dataset
    with open(osp.join(dataset.data_root, dataset.ann_file)) as f:
        ann = json.load(f)
    assert len(pseudo['records']) == 0 and len(label['records']) == len(ann['annotations']) > 0
    assert np.allclose(bank['mu'], 1 / bank['num_classes'])  # uniform classes: beta 0
    paste = ACRSTPaste(bank_file=path, num_paste=(2, 2), scale_range=(0.5, 0.5))
    np.random.seed(0)
    out = paste.transform(
        dict(
            img=np.zeros((200, 200, 3), np.uint8),
            gt_bboxes=np.zeros((0, 4), np.float32),
            gt_bboxes_labels=np.zeros(0, np.int64),
        )
    )
    assert len(out['pasted_labels']) == 2 and len(out['gt_bboxes']) == 2 and out['img'].any()


def test_pilot_gate_counts_classes_at_the_recall_threshold():
    recall = {'a': 0.3, 'b': 0.29, 'c': float('nan'), 'd': 0.9, 'e': 0.0}
    gate = bench.recall_gate(recall, min_recall=0.3, min_classes=2)
    assert gate['covered'] == 2 and gate['covered_classes'] == ['a', 'd'] and gate['passed']
    assert not bench.recall_gate(recall, min_recall=0.3, min_classes=3)['passed']
    assert bench.recall_gate(recall, min_recall=0.95, min_classes=0)['covered'] == 0
    assert bench.pilot_checkpoints(250, 100) == [100, 200, 250]
    assert bench.pilot_checkpoints(200, 100) == [100, 200]


def test_extrapolated_crossing_of_the_gate():
    # covered = 1 + its / 100: reaches 6 at iteration 500
    assert bench.extrapolate_crossing([100, 200, 300], [2, 3, 4], 6) == pytest.approx(500)
    # least squares through (100, 2), (200, 4), (300, 3): slope 100 / 20000, through the means (200, 3)
    assert bench.extrapolate_crossing([100, 200, 300], [2, 4, 3], 6) == pytest.approx(200 + 3 / 0.005)
    assert bench.extrapolate_crossing([100, 200], [3, 3], 6) is None  # flat: never
    assert bench.extrapolate_crossing([100, 200], [4, 2], 6) is None  # falling: never
    assert bench.extrapolate_crossing([100], [4], 6) is None  # one point: no line
    assert bench.extrapolate_crossing([100, 200], [5, 7], 6) == 200  # not before the last checkpoint


def _arm(m_ap, rare, time_s=1.0):
    return dict(mAP=m_ap, mAP_50=2 * m_ap, rare_AP=rare, iter_time_s=time_s)


def test_report_differences_on_made_up_seeds():
    results = {
        '0': {'supervised': _arm(20, 5), 'supervised_fbr': _arm(21, 7), 'soft_teacher_base': _arm(22, 6),
              'soft_teacher_fbr': _arm(23, 8), 'acrst': _arm(24, 10)},
        '1': {'supervised': _arm(19, 4), 'supervised_fbr': _arm(19, 5), 'soft_teacher_base': _arm(21, 5),
              'soft_teacher_fbr': _arm(22, 7), 'acrst': _arm(22, 9.5)},
        '2': {'supervised': _arm(20, 6), 'supervised_fbr': _arm(22, 6), 'soft_teacher_base': _arm(21, 6),
              'soft_teacher_fbr': _arm(21, 9), 'acrst': _arm(23, 10.5)},
    }  # fmt: skip
    c_a = bench.arm_differences(results, 'soft_teacher_base', 'supervised')
    assert c_a['seeds'] == ['0', '1', '2'] and c_a['mAP']['per_seed'] == [2, 2, 1]
    e_c = bench.arm_differences(results, 'acrst', 'soft_teacher_base')
    assert e_c['rare_AP']['per_seed'] == [4, 4.5, 4.5]
    mean, sd = np.mean([4, 4.5, 4.5]), np.std([4, 4.5, 4.5], ddof=1)
    assert e_c['rare_AP']['mean'] == pytest.approx(mean) and e_c['rare_AP']['sd'] == pytest.approx(sd)
    assert e_c['rare_AP']['above_2sd'] == [v > 2 * sd for v in (4, 4.5, 4.5)] == [True] * 3
    e_b = bench.arm_differences(results, 'acrst', 'supervised_fbr')
    assert e_b['rare_AP']['per_seed'] == [3, 4.5, 4.5] and e_b['mAP']['per_seed'] == [3, 3, 1]
    e_d = bench.arm_differences(results, 'acrst', 'soft_teacher_fbr')
    assert e_d['rare_AP']['per_seed'] == [2, 2.5, 1.5]
    assert bench.goal_met(e_c, [1.0, 1.1, 1.0], 1.15)
    assert not bench.goal_met(e_c, [1.0, 1.2, 1.0], 1.15)  # too slow on one seed
    # a seed whose gain is not above twice the sd fails the goal
    results['2']['acrst'] = _arm(23, 7)
    spread = bench.arm_differences(results, 'acrst', 'soft_teacher_base')
    assert not all(spread['rare_AP']['above_2sd']) and not bench.goal_met(spread, [1.0] * 3, 1.15)
    assert bench.arm_differences(results, 'acrst', 'acrst_no_stage2') is None
    one = bench.arm_differences({'0': results['0']}, 'acrst', 'supervised')
    assert one['rare_AP']['above_2sd'] == [False]  # one seed has no sd


def test_saved_runs_are_reused_only_with_equal_settings(arm_configs, tmp_path):
    import json

    args = bench.parse_args(['--demo'])
    settings = bench.run_settings(args, 'acrst', 0, arm_configs['acrst'])
    assert settings != bench.run_settings(args, 'acrst', 0, arm_configs['acrst_no_stage2'])
    assert settings != bench.run_settings(bench.parse_args(['--demo', '--iters', '7']), 'acrst', 0,
                                          arm_configs['acrst'])  # fmt: skip
    path = tmp_path / 'acrst_result.json'
    path.write_text(json.dumps(dict(_arm(20, 5), settings=settings)))
    assert bench.saved_run(str(path), settings)['mAP'] == 20
    assert bench.saved_run(str(path), dict(settings, seed=1)) is None
    assert bench.saved_run(str(tmp_path / 'missing.json'), settings) is None


def test_a_pilot_counts_as_its_arms_training_only_with_equal_settings(demo_det_root, tmp_path):
    import json

    from mmengine.config import Config

    labeled, unlabeled = Config.fromfile(bench.DEMO_CONFIG).train_dataloader.dataset.datasets
    setup = {
        'config': bench.DEMO_CONFIG,
        'root': demo_det_root,
        'splits': (labeled.ann_file, unlabeled.ann_file),
    }
    argv = ['--demo', '--iters', '10', '--burn-in', '4', '--work-dir', str(tmp_path)]
    args = bench.parse_args([*argv, '--pilot', '--pilot-interval', '5'])
    pilot_dir = tmp_path / 'pilot_acrst_seed0'
    cfg = bench.derive_config(args, 'acrst', str(pilot_dir), 0, setup)
    cfg.default_hooks.checkpoint = bench.pilot_checkpoint_hook(5)
    settings = dict(
        bench.run_settings(args, 'acrst', 0, cfg), pilot_interval=5, iteration=10, gate_recall=0.3
    )
    assert bench.pilot_training(args, 'acrst', 0, setup) is None  # no pilot yet
    pilot_dir.mkdir()
    (pilot_dir / 'pilot_iter10.json').write_text(json.dumps({'settings': settings}))
    arm_args = bench.parse_args(argv)  # the benchmark run, without the pilot flags
    assert bench.pilot_training(arm_args, 'acrst', 0, setup) == str(pilot_dir)
    assert bench.pilot_training(arm_args, 'acrst', 1, setup) is None  # another seed
    assert bench.pilot_training(bench.parse_args([*argv, '--tau-cls', '0.5']), 'acrst', 0, setup) is None
    assert bench.pilot_training(bench.parse_args([*argv[:2], '20', *argv[3:]]), 'acrst', 0, setup) is None


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


def _results_file(path, seeds, freq, acrst_rare, base='soft_teacher'):
    """A results.json as the bench writes it, for ``seeds`` (ACRST's rare-third AP per seed given)."""
    import json

    results = {
        str(s): {'supervised': _arm(20, 5), base: _arm(22, 6), 'acrst': _arm(22, acrst_rare[i])}
        for i, s in enumerate(seeds)
    }
    run = dict(args=vars(bench.parse_args([])), device='cpu', rare_classes=['b'], labeled_instances=freq)
    with open(path, 'w') as f:
        json.dump(dict(run, results=results), f)
    return str(path)


def test_merge_reports_the_seeds_of_separate_runs_as_one(tmp_path):
    """Seeds run as separate processes merge into one report with every seed and the goal check; the former
    ``soft_teacher`` arm is read as mmdet's recipe."""
    import json

    freq = {'a': 10, 'b': 2}
    first = _results_file(tmp_path / 'a.json', [0], freq, [9.0])
    second = _results_file(tmp_path / 'b.json', [1, 2], freq, [9.5, 8.5])
    out = tmp_path / 'merged.json'
    bench.main(['--merge', first, second, '--out', str(out)])
    merged = json.loads(out.read_text())
    assert sorted(merged['results']) == ['0', '1', '2']
    assert all('soft_teacher_mmdet' in per for per in merged['results'].values())
    per_seed = merged['summary']['differences']['acrst - soft_teacher_mmdet']['rare_AP']['per_seed']
    assert per_seed == pytest.approx([3.0, 3.5, 2.5])
    assert 'goal' not in merged['summary']  # the goal is read against Soft Teacher on ACRST's recipe
    assert merged['provenance'] == 'composited from real images, CPU scale'

    new = [
        _results_file(tmp_path / f'n{s}.json', [s], freq, [r], 'soft_teacher_base')
        for s, r in enumerate((9, 9.5, 8.5))
    ]
    bench.main(['--merge', *new, '--out', str(out)])
    merged = json.loads(out.read_text())
    diff = merged['summary']['differences']['acrst - soft_teacher_base']['rare_AP']
    assert diff['per_seed'] == pytest.approx([3.0, 3.5, 2.5]) and merged['summary']['goal']['met'] is True

    other = _results_file(tmp_path / 'c.json', [3], {'a': 11, 'b': 2}, [9.0])
    with pytest.raises(SystemExit, match='other than'):
        bench.main(['--merge', first, other, '--out', str(out)])
