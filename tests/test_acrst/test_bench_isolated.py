"""The ACRST bench's isolated ablation: the Soft Teacher selection grid (choice from saved points, gate
fallback, recipe file), the arms' configs under the selected settings, and the report's "not run" cells."""

import importlib.util
import json
import os.path as osp

import pytest

from tests.conftest import REPO_ROOT

spec = importlib.util.spec_from_file_location(
    'acrst_bench', osp.join(REPO_ROOT, 'tools/benchmarks/acrst_bench.py')
)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def _point(index: int, val_map: float, passed: bool) -> dict:
    thr, weight = bench.SELECTION_GRID[index]
    return {
        'index': index,
        'score_thr': thr,
        'unsup_weight': weight,
        'val_mAP': val_map,
        'val_mAP_50': val_map + 20,
        'val_rare_AP': val_map / 2,
        'gate': {'covered': 7 if passed else 2, 'passed': passed},
        'pseudo_quality': {'recall': {str(k): 0.5 for k in range(10)}},
    }


def test_grid_is_threshold_by_weight():
    assert bench.SELECTION_GRID == ((0.5, 2), (0.5, 4), (0.7, 2), (0.7, 4), (0.9, 2), (0.9, 4))


def test_selection_picks_the_best_val_map_and_the_best_gate_passing_fallback():
    points = [_point(0, 20, True), _point(1, 25, True), _point(2, 31, False), _point(3, 30, False),
              _point(4, 28, True), _point(5, 10, False)]  # fmt: skip
    choice = bench.select_setting(points)
    assert choice['complete'] and choice['missing'] == []
    assert choice['selected']['index'] == 2 and choice['selected_passes_gate'] is False
    assert choice['gate_fallback']['index'] == 4  # best val mAP among the gate-passing points
    # a selected point that passes the gate has no fallback
    points[4]['val_mAP'] = 40
    choice = bench.select_setting(points)
    assert (
        choice['selected']['index'] == 4
        and choice['selected_passes_gate']
        and choice['gate_fallback'] is None
    )


def test_selection_waits_for_every_point_breaks_ties_by_index_and_may_have_no_gate_passing_point():
    partial = bench.select_setting([_point(0, 20, True), _point(3, 30, True)])
    assert not partial['complete'] and partial['missing'] == [1, 2, 4, 5] and partial['selected'] is None
    tied = bench.select_setting([_point(i, 30 if i in (1, 3) else 10, False) for i in range(6)])
    assert tied['selected']['index'] == 1
    assert tied['selected_passes_gate'] is False and tied['gate_fallback'] is None


def test_recipe_file_sets_the_shared_settings_and_refuses_an_incomplete_grid_or_a_conflict(tmp_path):
    path = tmp_path / 'selection.json'
    points = [_point(i, 10 + i, i == 1) for i in range(6)]
    path.write_text(json.dumps({'complete': True, **bench.select_setting(points)}))
    args = bench.parse_args(['--recipe', str(path)])
    assert (args.tau_cls, args.unsup_weight) == bench.SELECTION_GRID[5]
    assert args.box_jitter and args.supervised_ema
    args = bench.parse_args(['--recipe', str(path), '--recipe-use', 'gate_fallback'])
    assert (args.tau_cls, args.unsup_weight) == bench.SELECTION_GRID[1]
    with pytest.raises(SystemExit, match='conflicts'):
        bench.parse_args(['--recipe', str(path), '--tau-cls', '0.5'])
    path.write_text(json.dumps(bench.select_setting(points[:3])))
    with pytest.raises(SystemExit, match='incomplete'):
        bench.parse_args(['--recipe', str(path)])
    with pytest.raises(SystemExit, match='--select first'):
        bench.parse_args(['--recipe', str(tmp_path / 'missing.json')])


def test_grid_point_runs_arm_c_at_its_setting_in_its_own_folder():
    args = bench.parse_args(['--select', '--grid-points', '3', '4', '--work-dir', 'w'])
    point = bench.grid_args(args, 3)
    assert (point.tau_cls, point.unsup_weight, point.box_jitter) == (0.7, 4.0, True)
    assert point.work_dir == osp.join('w', 'select', 'point3') and args.tau_cls is None
    with pytest.raises(SystemExit, match='grid-points'):
        bench.parse_args(['--select', '--grid-points', '6'])


@pytest.fixture(scope='module')
def isolated_configs(demo_det_root, tmp_path_factory):
    """The isolated arms' configs at one grid setting (threshold 0.9, weight 4), same seed and work dir."""
    from mmengine.config import Config

    args = bench.parse_args(
        ['--demo', '--iters', '10', '--burn-in', '4', '--ml-scores', 'scores.json', '--tau-cls', '0.9',
         '--unsup-weight', '4', '--box-jitter', '--supervised-ema']
    )  # fmt: skip
    labeled, unlabeled = Config.fromfile(bench.DEMO_CONFIG).train_dataloader.dataset.datasets
    setup = {
        'config': bench.DEMO_CONFIG,
        'root': demo_det_root,
        'splits': (labeled.ann_file, unlabeled.ann_file),
    }
    work_dir = str(tmp_path_factory.mktemp('isolated'))
    return {m: bench.derive_config(args, m, work_dir, 1, setup).to_dict() for m in bench.ISOLATED_ARMS}


def test_semi_supervised_arms_share_threshold_weight_and_box_jitter_and_differ_only_where_stated(
    isolated_configs,
):
    cfg = isolated_configs
    semi_arms = bench.ISOLATED_ARMS[2:]
    for arm in semi_arms:
        model = cfg[arm]['model']
        semi = model['semi_train_cfg']
        assert model['type'] == bench.BOX_JITTER_MODEL, arm
        assert semi['tau_cls'] == semi['rpn_pseudo_thr'] == semi['cls_pseudo_thr'] == 0.9, arm
        assert semi['unsup_weight'] == 4.0, arm
        assert {k: semi[k] for k in bench.BOX_JITTER_RULE} == bench.BOX_JITTER_RULE, arm
        assert bench.BOX_JITTER_RULE == {'reg_pseudo_thr': 0.02, 'jitter_times': 10, 'jitter_scale': 0.06}
        assert 'tools.benchmarks.acrst_bench' in cfg[arm]['custom_imports']['imports']
    hook = [h['type'] for h in cfg['acrst']['custom_hooks']].index('CropBankHook')
    semi = 'model.semi_train_cfg.'
    expected = {
        ('acrst', 'acrst_beta0'): [f'custom_hooks.{hook}.beta'],  # AFFR alone
        ('acrst', 'acrst_no_stage2'): [semi + 'tau_ml'],
        ('acrst', 'acrst_regress_all'): [semi + 'regress_pseudo'],
        ('acrst_beta0', 'soft_teacher_fbr'): [semi + 'regress_pseudo', semi + 'tau_ml'],
    }
    for (a, b), paths in expected.items():
        assert bench.config_diff(cfg[a], cfg[b]) == sorted(paths), (a, b)
    assert (
        cfg['acrst_beta0']['custom_hooks'][hook]['beta'] == 0
        and cfg['acrst']['custom_hooks'][hook]['beta'] == 0.6
    )
    # c vs d: only the paste and the bank
    diff = bench.config_diff(cfg['soft_teacher_base'], cfg['soft_teacher_fbr'])
    assert diff and all(p.startswith('custom_hooks') or '.pipeline' in p for p in diff), diff


def test_supervised_arms_are_scored_on_an_ema_with_the_teachers_momentum(isolated_configs):
    (teacher,) = [h for h in isolated_configs['acrst']['custom_hooks'] if h['type'] == 'MeanTeacherHook']
    for arm in ('supervised', 'supervised_fbr'):
        (ema,) = isolated_configs[arm]['custom_hooks']
        assert ema['type'] == 'EMAHook' and ema['ema_type'] == 'ExponentialMovingAverage', arm
        assert ema['momentum'] == teacher['momentum'], arm
        assert ema['update_buffers'] is (not teacher['skip_buffer'])
        assert ema['begin_iter'] == 4  # the teacher's reset: the end of burn-in
    # a and b still differ only in the paste
    diff = bench.config_diff(isolated_configs['supervised'], isolated_configs['supervised_fbr'])
    assert diff and all('.pipeline' in p for p in diff), diff


def test_supervised_ema_hook_needs_one_teacher_hook():
    hooks = [dict(type='MeanTeacherHook', momentum=0.002, skip_buffer=True)]
    assert bench.supervised_ema_hook(hooks, 7) == dict(
        type='EMAHook',
        ema_type='ExponentialMovingAverage',
        momentum=0.002,
        update_buffers=False,
        begin_iter=7,
    )
    with pytest.raises(ValueError, match='MeanTeacherHook'):
        bench.supervised_ema_hook([], 7)


def test_without_the_recipe_flags_the_arms_keep_their_earlier_configs(demo_det_root, tmp_path):
    from mmengine.config import Config

    labeled, unlabeled = Config.fromfile(bench.DEMO_CONFIG).train_dataloader.dataset.datasets
    setup = {
        'config': bench.DEMO_CONFIG,
        'root': demo_det_root,
        'splits': (labeled.ann_file, unlabeled.ann_file),
    }
    args = bench.parse_args(['--demo', '--iters', '10', '--burn-in', '4'])
    acrst = bench.derive_config(args, 'acrst', str(tmp_path), 0, setup)
    assert acrst.model.type == 'ACRST' and 'reg_pseudo_thr' not in acrst.model.semi_train_cfg
    assert bench.derive_config(args, 'supervised', str(tmp_path), 0, setup).custom_hooks == []
    # runs saved before the recipe flags keep their settings (a saved run is reused only with equal ones)
    assert not set(bench.RECIPE_KEYS) & set(bench.run_settings(args, 'acrst', 0, acrst))


def test_selection_val_set_replaces_only_the_scored_val_set(demo_det_root, tmp_path):
    from mmengine.config import Config

    labeled, unlabeled = Config.fromfile(bench.DEMO_CONFIG).train_dataloader.dataset.datasets
    splits = (labeled.ann_file, unlabeled.ann_file)
    setup = {
        'config': bench.DEMO_CONFIG,
        'root': demo_det_root,
        'splits': splits,
        'val_root': '/elsewhere/sv',
    }
    args = bench.parse_args(['--demo', '--iters', '10', '--burn-in', '4'])
    cfg = bench.derive_config(args, 'soft_teacher_base', str(tmp_path), 0, setup)
    assert cfg.val_dataloader.dataset.data_root == '/elsewhere/sv/'
    assert cfg.val_evaluator.ann_file.startswith('/elsewhere/sv/')
    assert cfg.test_evaluator.ann_file.startswith('/elsewhere/sv/')
    for ds in cfg.train_dataloader.dataset.datasets:
        assert ds.data_root.rstrip('/') == demo_det_root.rstrip('/')


def _result(m_ap: float, rare: float) -> dict:
    return {'mAP': m_ap, 'rare_AP': rare}


def test_report_tables_say_not_run_and_show_no_number_without_saved_runs():
    # leading columns that name the row (point and its settings, arm, difference and its arms)
    for table, named in (
        (bench.selection_table(None), 3),
        (bench.isolated_arms_table({}), 1),
        (bench.isolated_differences_table({}), 2),
    ):
        rows = table.split('\n')[2:]
        assert rows
        for row in rows:
            cells = [c.strip() for c in row.strip('|').split('|')][named:]
            assert all(part in ('not run', '') for c in cells for part in c.split(' / ')), row
            assert 'not run' in cells


def test_report_tables_on_made_up_partial_runs():
    selection = {
        'points': [_point(0, 20, True), _point(2, 31, False)],
        'selected': None,
        'gate_fallback': None,
    }
    rows = bench.selection_table(selection).split('\n')[2:]
    assert '| 0 | 0.5 | 2 | 20.0 |' in rows[0] and 'not run' in rows[1] and '| 31.0 |' in rows[2]
    results = {0: {'acrst': _result(30, 20), 'acrst_beta0': _result(29, 18)}, 1: {'acrst': _result(31, 22)}}
    arms = bench.isolated_arms_table(results)
    assert '30.0 / 31.0 / not run' in arms and '29.0 / not run / not run' in arms
    diffs = bench.isolated_differences_table(results).split('\n')
    (affr,) = [r for r in diffs if r.startswith('| AFFR')]
    assert '+2.00 / not run / not run' in affr and 'fewer than 3 seeds' in affr
    three = {s: {'acrst': _result(30 + s, 20 + 3 * s), 'acrst_beta0': _result(30, 20)} for s in (0, 1, 2)}
    three = {s: {**per, 'acrst_beta0': _result(28.5 + s, 20 + s)} for s, per in three.items()}
    (affr,) = [r for r in bench.isolated_differences_table(three).split('\n') if r.startswith('| AFFR')]
    # rarest third: +0 / +2 / +4 (mean 2, sd 2: not resolved); mAP +1.5 on every seed (sd 0: resolved)
    assert affr.endswith('| not resolved / resolved |'), affr


def test_two_sd_verdict():
    assert bench.two_sd_verdict([]) == 'not run'
    assert bench.two_sd_verdict([5.0, 5.1]) == 'fewer than 3 seeds'
    assert bench.two_sd_verdict([5.0, 5.1, 4.9]) == 'resolved'
    assert bench.two_sd_verdict([5.0, -5.0, 1.0]) == 'not resolved'


def test_write_selection_from_the_points_on_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, 'device_name', lambda: 'cpu')
    args = bench.parse_args(
        ['--select', '--work-dir', str(tmp_path / 'w'), '--select-out', str(tmp_path / 'o')]
    )
    (tmp_path / 'o').mkdir(parents=True)  # the points are saved beside selection.json (a saved-runs folder)
    for i in range(6):
        point = dict(_point(i, 10 + i, i < 3), settings={'x': 1})
        (tmp_path / 'o' / f'point{i}.json').write_text(json.dumps(point))
        selection = bench.write_selection(args, ['c'])
        assert selection['complete'] is (i == 5)
    saved = json.loads((tmp_path / 'o' / 'selection.json').read_text())
    assert saved['selected']['index'] == 5 and saved['gate_fallback']['index'] == 2
    assert (
        all('settings' not in p for p in saved['points'])
        and saved['box_jitter_rule'] == bench.BOX_JITTER_RULE
    )
    assert bench.read_recipe(str(tmp_path / 'o' / 'selection.json'))['score_thr'] == 0.9


def test_box_jitter_model_gives_mmdets_uncertainty_per_pseudo_box(demo_det_root, tmp_path):
    import torch
    from mmdet.models.detectors import SoftTeacher
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.structures import InstanceData

    from mmssod.models.acrst import ACRST

    init_default_scope('mmdet')
    cls = bench.register_box_jitter()
    assert issubclass(cls, ACRST) and bench.register_box_jitter() is cls  # idempotent
    labeled, unlabeled = Config.fromfile(bench.DEMO_CONFIG).train_dataloader.dataset.datasets
    setup = {
        'config': bench.DEMO_CONFIG,
        'root': demo_det_root,
        'splits': (labeled.ann_file, unlabeled.ann_file),
    }
    args = bench.parse_args(['--demo', '--backbone', 'r18-scratch', '--box-jitter', '--tau-cls', '0.5'])
    cfg = bench.derive_config(args, 'acrst', str(tmp_path), 0, setup)
    cfg.model.semi_train_cfg.ml_scores_file = None
    model = MODELS.build(cfg.model).eval()
    assert type(model) is cls
    torch.manual_seed(0)
    with torch.no_grad():
        x = model.teacher.extract_feat(torch.rand(2, 3, 64, 64))
    samples = []
    for n in (3, 0):  # an image with pseudo-boxes and one without
        ds = DetDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64), scale_factor=(1.0, 1.0)))
        boxes = torch.tensor([[4.0, 4, 30, 40], [20, 10, 60, 50], [0, 0, 12, 12]])[:n]
        ds.gt_instances = InstanceData(bboxes=boxes, labels=torch.tensor([1, 3, 5])[:n], scores=torch.ones(n))
        samples.append(ds)
    with torch.no_grad():
        torch.manual_seed(1)
        unc = model.compute_uncertainty_with_aug(x, samples)
        torch.manual_seed(1)
        mmdet_unc = SoftTeacher.compute_uncertainty_with_aug(model, x, samples)
        zeros = ACRST.compute_uncertainty_with_aug(model, x, samples)
    assert [u.shape for u in unc] == [
        torch.Size([3]),
        torch.Size([0]),
    ]  # mmdet gives (0, 4) for the empty one
    assert torch.equal(unc[0], mmdet_unc[0]) and bool((unc[0] > 0).all())
    assert not zeros[0].any()  # ACRST itself regresses no pseudo-box by uncertainty
