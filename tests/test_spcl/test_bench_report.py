"""The SpCL accuracy benchmark: the report (ordering gaps per seed, > 2 sd target check, target-domain goals,
label quality per epoch), the arms' options and the data root of each target domain."""

import importlib.util
import json
import math
import os
import os.path as osp

import pytest

from tests.conftest import REPO_ROOT

spec = importlib.util.spec_from_file_location(
    'spcl_bench', osp.join(REPO_ROOT, 'tools/benchmarks/spcl_bench.py')
)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def rows(uda, no_rel, source):
    """Accuracy rows as the bench prints them, one per arm and seed (mAP per seed given)."""
    out = []
    for arm, maps in (('SpCL (UDA)', uda), ('SpCL w/o reliability', no_rel), ('source-only', source)):
        for seed, m in enumerate(maps):
            epochs = (
                [dict(epoch=0, clusters=50 + seed, outliers=100, ARI=0.1, NMI=0.7)]
                if arm != 'source-only'
                else []
            )
            out.append(dict(arm=arm, seed=seed, mAP=m, top1=m + 1, epochs=epochs))
    return out


def test_gaps_per_seed_and_goal():
    summary = bench.accuracy_report(rows([30, 31, 32], [25, 25.5, 26], [20, 20, 21]))
    assert summary['SpCL (UDA) - SpCL w/o reliability']['per_seed'] == pytest.approx([5, 5.5, 6])
    assert summary['SpCL w/o reliability - source-only']['per_seed'] == pytest.approx([5, 5.5, 5])
    assert summary['goal'] is True


def test_goal_fails_when_a_gap_is_within_noise():
    # UDA - w/o reliability: +4, -3, +5 -> mean 2 < 2 sd
    summary = bench.accuracy_report(rows([29, 22, 31], [25, 25, 26], [20, 20, 21]))
    assert summary['SpCL (UDA) - SpCL w/o reliability']['gap_above_2sd'] is False
    assert summary['goal'] is False


def test_report_merges_the_rows_of_several_logs(tmp_path, capsys):
    all_rows = rows([30, 31, 32], [25, 25.5, 26], [20, 20, 21])
    for i, part in enumerate((all_rows[:4], all_rows[4:])):
        (tmp_path / f'{i}.log').write_text('noise line\n' + '\n'.join(json.dumps(r) for r in part) + '\n')
    args = bench.argparse.Namespace(logs=[str(tmp_path / '0.log'), str(tmp_path / '1.log')])
    summary = bench.run_report(args)
    assert summary['SpCL (UDA)']['seeds'] == [0, 1, 2]
    assert summary['goal'] is True
    assert 'mean over seeds [0, 1, 2]' in capsys.readouterr().out


def test_report_refuses_logs_that_measure_an_arm_twice_in_different_regimes(tmp_path):
    row = dict(arm='SpCL (UDA)', seed=0, mAP=13.0, top1=11.0, target_domain='hard', refresh_memory=False)
    (tmp_path / 'gate.log').write_text(json.dumps(row) + '\n')
    (tmp_path / 'same.log').write_text(json.dumps(row) + '\n')
    (tmp_path / 'refresh.log').write_text(json.dumps(dict(row, mAP=14.6, refresh_memory=True)) + '\n')
    assert bench.conflicting_rows([row, dict(row)]) == []  # the same run read twice is not a clash
    with pytest.raises(SystemExit, match='one regime only'):
        bench.run_report(
            bench.argparse.Namespace(logs=[str(tmp_path / 'gate.log'), str(tmp_path / 'refresh.log')])
        )
    summary = bench.run_report(
        bench.argparse.Namespace(logs=[str(tmp_path / 'gate.log'), str(tmp_path / 'same.log')])
    )
    assert summary['SpCL (UDA)']['mAP'][0] == 13.0


AFTER_EPOCH_LOG = """
SpCL epoch 0: 58 clusters, 821 un-clustered instances, independence threshold 0.1000 (1.0 s)
SpCL epoch 0 pseudo-label quality: ARI 0.1140 NMI 0.7830
SpCL after epoch 0: memory ARI {mem:.4f} NMI 0.7000 (24 clusters) | \
fresh eval features ARI {fresh:.4f} NMI 0.7900 (55 clusters) (2.0 s)
"""


@pytest.mark.parametrize('mem, fresh, passed', [(0.052, 0.122, False), (0.110, 0.122, True)])
def test_after_epoch_measurements_are_parsed_and_gated(mem, fresh, passed):
    row = dict(arm='SpCL (UDA)', seed=0, **bench.parse_log(AFTER_EPOCH_LOG.format(mem=mem, fresh=fresh)))
    assert row['after_epoch'] == [
        dict(
            epoch=0,
            memory_ARI=mem,
            memory_NMI=0.7,
            memory_clusters=24,
            fresh_ARI=fresh,
            fresh_NMI=0.79,
            fresh_clusters=55,
        )
    ]
    gate = bench.memory_gate(row)
    assert gate['passed'] is passed
    assert gate['memory_ARI'] == mem and gate['fresh_ARI'] == fresh


def test_gate_is_undecided_without_an_epoch_0_measurement():
    assert bench.memory_gate(dict(after_epoch=[]))['passed'] is None


def accuracy_args(tmp_path, **kw):
    args = bench.argparse.Namespace(
        data_root=str(tmp_path),
        backbone='lite0',
        iters=30,
        batch=32,
        eps=0.4,
        refresh_memory=False,
        seeds=[0, 1, 2],
        skip_gate=False,
        gate_json=None,
    )
    for k, v in kw.items():
        setattr(args, k, v)
    return args


def test_multi_seed_accuracy_needs_a_passed_gate_of_the_same_schedule(tmp_path):
    args = accuracy_args(tmp_path)
    with pytest.raises(SystemExit, match='needs a passed memory-quality gate'):
        bench.check_gate_json(args)
    gate_json = tmp_path / 'gate.json'
    bench.write_json(str(gate_json), dict(schedule=bench.schedule_key(args), gate=dict(passed=False)))
    with pytest.raises(SystemExit, match='did not pass'):
        bench.check_gate_json(accuracy_args(tmp_path, gate_json=str(gate_json)))
    bench.write_json(str(gate_json), dict(schedule=bench.schedule_key(args), gate=dict(passed=True)))
    bench.check_gate_json(accuracy_args(tmp_path, gate_json=str(gate_json)))  # passes
    with pytest.raises(SystemExit, match='rerun the gate'):
        bench.check_gate_json(accuracy_args(tmp_path, gate_json=str(gate_json), iters=84))
    bench.check_gate_json(accuracy_args(tmp_path, seeds=[0]))  # one seed: no gate needed
    bench.check_gate_json(accuracy_args(tmp_path, skip_gate=True))


def test_gate_passes_with_refresh_memory_but_records_the_rows_own_result():
    row = bench.parse_log(AFTER_EPOCH_LOG.format(mem=0.052, fresh=0.122))
    gate = bench.memory_gate(dict(row, refresh_memory=True))
    assert gate['memory_passed'] is False and gate['refresh_memory'] is True and gate['passed'] is True


def option_args(tmp_path, **kw):
    """What arm_options reads, for a small schedule."""
    args = bench.argparse.Namespace(
        data_root=str(tmp_path),
        backbone='lite0',
        epochs=3,
        iters=5,
        batch=16,
        workers=0,
        width=64,
        eps=0.4,
        refresh_memory=False,
    )
    for k, v in kw.items():
        setattr(args, k, v)
    return args


def option_diff(a, b):
    """(options only in a, options only in b)."""
    return sorted(set(a) - set(b)), sorted(set(b) - set(a))


@pytest.mark.parametrize('backbone', sorted(bench.ARMS))
def test_oracle_differs_from_source_only_only_in_its_train_set(tmp_path, backbone):
    arms = bench.ARMS[backbone]
    assert arms['target oracle'][0] == arms['source-only'][0]  # same config: the same loss and model
    args = option_args(tmp_path, backbone=backbone)
    oracle = bench.arm_options(args, arms['target oracle'][1], 0)
    source = bench.arm_options(args, arms['source-only'][1], 0)
    assert option_diff(oracle, source) == (
        [f'train_dataloader.dataset.data_root={tmp_path}/target/'],
        [f'train_dataloader.dataset.data_root={tmp_path}/source/'],
    )
    # both evaluate on the target test set, and neither clusters
    assert f'val_dataloader.dataset.datasets.0.data_root={tmp_path}/target/' in oracle
    assert not any('label_quality' in o or 'custom_hooks.0.eps' in o for o in oracle)


@pytest.mark.parametrize('backbone', sorted(bench.ARMS))
def test_uda_without_reliability_differs_from_uda_only_in_the_criterion(tmp_path, backbone):
    from mmengine.config import Config

    arms = bench.ARMS[backbone]
    (cfg_a, kind_a), (cfg_b, kind_b) = arms['SpCL (UDA)'], arms['SpCL w/o reliability']
    args = option_args(tmp_path, backbone=backbone)
    assert kind_a == kind_b == 'uda'
    assert bench.arm_options(args, kind_a, 1) == bench.arm_options(args, kind_b, 1)
    a = Config.fromfile(osp.join(REPO_ROOT, cfg_a), import_custom_modules=False).to_dict()
    b = Config.fromfile(osp.join(REPO_ROOT, cfg_b), import_custom_modules=False).to_dict()
    hook_a, hook_b = a.pop('custom_hooks'), b.pop('custom_hooks')
    assert a == b
    assert len(hook_a) == len(hook_b) == 1
    assert hook_b[0].pop('use_reliability') is False and hook_a[0].pop('use_reliability', True) is True
    assert hook_a == hook_b


@pytest.mark.parametrize('backbone', sorted(bench.ARMS))
def test_usl_trains_the_start_it_is_compared_with(tmp_path, backbone):
    arms = bench.ARMS[backbone]
    start = [a for a in bench.START_ARMS if a in arms]
    assert len(start) == 1
    (cfg_start, kind_start), (cfg_usl, kind_usl) = arms[start[0]], arms['SpCL USL']
    assert (kind_start, kind_usl) == ('eval', 'usl') and cfg_start == cfg_usl
    args = option_args(tmp_path, backbone=backbone)
    assert bench.arm_options(args, kind_start, 2) == bench.arm_options(args, kind_usl, 2)


def goal_rows(**maps):
    """Rows of the arms given as keyword lists of per-seed mAP (keys: short arm names)."""
    names = {
        'start': 'pretrained start',
        'source': 'source-only',
        'uda': 'SpCL (UDA)',
        'usl': 'SpCL USL',
        'oracle': 'target oracle',
    }
    return [
        dict(arm=names[k], seed=s, mAP=m, top1=m + 2)
        for k, per_seed in maps.items()
        for s, m in enumerate(per_seed)
    ]


GOOD = dict(
    start=[10, 11, 10], source=[15, 16, 15.5], uda=[19, 20, 19.5], usl=[12, 12.5, 11], oracle=[28, 27, 26]
)


def test_goal_checks_pass_on_made_up_numbers():
    checks = bench.goal_checks(goal_rows(**GOOD))
    assert checks['target oracle - source-only']['per_seed'] == pytest.approx([13, 11, 10.5])
    assert checks['target oracle - source-only']['mean'] == pytest.approx(11.5)
    assert checks['SpCL (UDA) - source-only']['per_seed'] == pytest.approx([4, 4, 4])
    assert checks['SpCL USL - pretrained start']['per_seed'] == pytest.approx([2, 1.5, 1])
    assert all(c['passed'] for k, c in checks.items() if k != 'passed') and checks['passed'] is True


@pytest.mark.parametrize(
    'change, failing',
    [
        (dict(oracle=[24, 26, 25]), 'target oracle - source-only'),  # mean gap 9.5 < 10
        (dict(uda=[21, 16.5, 20]), 'SpCL (UDA) - source-only'),  # gaps 6, 0.5, 4.5: mean 3.7 < 2 sd = 5.7
        (dict(uda=[19, 20, 15]), 'SpCL (UDA) - source-only'),  # gaps 4, 4, -0.5: seed 2 below source-only
        (dict(usl=[12, 10.5, 11]), 'SpCL USL - pretrained start'),  # seed 1 below its start
    ],
)
def test_goal_checks_fail_where_a_goal_is_missed(change, failing):
    checks = bench.goal_checks(goal_rows(**{**GOOD, **change}))
    assert [k for k, c in checks.items() if k != 'passed' and not c['passed']] == [failing]
    assert checks['passed'] is False


def test_goal_checks_with_too_few_seeds_or_a_missing_arm():
    two_seeds = {k: v[:2] for k, v in GOOD.items()}
    checks = bench.goal_checks(goal_rows(**two_seeds))
    assert checks['SpCL (UDA) - source-only']['passed'] is False  # needs >= 3 seeds
    no_oracle = {k: v for k, v in GOOD.items() if k != 'oracle'}
    checks = bench.goal_checks(goal_rows(**no_oracle))
    assert checks['target oracle - source-only']['passed'] is None and checks['passed'] is False


def test_report_prints_goals_and_label_quality_per_epoch(capsys):
    rows = goal_rows(**GOOD)
    for r in rows:
        if r['arm'] == 'SpCL (UDA)':
            r['epochs'] = [dict(epoch=0, clusters=40, outliers=100, ARI=0.1 + r['seed'] / 10, NMI=0.7)]
            r['after_epoch'] = [
                dict(
                    epoch=0,
                    memory_ARI=0.05,
                    memory_NMI=0.6,
                    memory_clusters=20,
                    fresh_ARI=0.12 + r['seed'] / 10,
                    fresh_NMI=0.8,
                    fresh_clusters=50,
                )
            ]
    summary = bench.accuracy_report(rows)
    out = capsys.readouterr().out
    assert summary['checks']['passed'] is True and 'goals: met' in out
    table = summary['SpCL (UDA)']['epochs']
    assert table[0]['ARI'] == pytest.approx(0.2) and table[0]['fresh_ARI'] == pytest.approx(0.22)
    assert table[0]['memory_ARI'] == pytest.approx(0.05) and 'epochs' not in summary['target oracle']
    assert summary['target oracle']['mAP'][0] == pytest.approx(27)
    assert '| 0 | 40.0 | 100.0 | 0.200 | 0.700 | 0.050 / 0.600 | 0.220 / 0.800 |' in out


def test_label_quality_of_an_epoch_without_after_epoch_measurement_is_nan():
    table = bench.label_quality_per_epoch(
        [dict(epochs=[dict(epoch=1, clusters=3, outliers=4, ARI=0.5, NMI=0.6)])]
    )
    assert table[0]['ARI'] == 0.5 and math.isnan(table[0]['fresh_ARI'])
    assert bench.label_quality_per_epoch([dict(epochs=[dict(epoch=0, clusters=3, outliers=0)])]) == []


def data_args(tmp_path, domain, root=None):
    return bench.argparse.Namespace(target_domain=domain, data_root=root, data_seed=0)


def write_meta(root, params, complete=True):
    os.makedirs(root, exist_ok=True)
    with open(osp.join(root, 'meta.json'), 'w') as f:
        json.dump(dict(generator='composited_reid', params=params, complete=complete), f)


def test_data_root_must_hold_the_requested_target_domain(tmp_path):
    from tools.benchmarks.composited.reid import TARGET_DOMAIN_ROOTS, ReIDConfig

    hard, default = str(tmp_path / 'hard'), str(tmp_path / 'default')
    write_meta(hard, ReIDConfig.for_target_domain('hard', train_ids=3).to_dict())
    write_meta(default, ReIDConfig(train_ids=3).to_dict())
    assert bench.prepare_data(data_args(tmp_path, 'hard', hard)) == hard
    assert bench.prepare_data(data_args(tmp_path, 'default', default)) == default
    with pytest.raises(SystemExit, match="holds a 'hard' target-domain build, not --target-domain default"):
        bench.prepare_data(data_args(tmp_path, 'default', hard))
    with pytest.raises(SystemExit, match="holds a 'default' target-domain build, not --target-domain hard"):
        bench.prepare_data(data_args(tmp_path, 'hard', default))
    custom = str(tmp_path / 'custom')
    write_meta(custom, ReIDConfig(palette_size=6).to_dict())
    with pytest.raises(SystemExit, match="'custom' target-domain build"):
        bench.prepare_data(data_args(tmp_path, 'default', custom))
    unfinished = str(tmp_path / 'unfinished')
    write_meta(unfinished, ReIDConfig.for_target_domain('hard').to_dict(), complete=False)
    with pytest.raises(SystemExit, match='unfinished build'):
        bench.prepare_data(data_args(tmp_path, 'hard', unfinished))
    args = data_args(tmp_path, 'hard')
    args.data_root = None
    # without --data-root: the domain's own folder (not built here: it is checked like any other root)
    write_meta(str(tmp_path / TARGET_DOMAIN_ROOTS['hard']), ReIDConfig.for_target_domain('hard').to_dict())
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        assert bench.prepare_data(args) == TARGET_DOMAIN_ROOTS['hard']
    finally:
        os.chdir(cwd)


def test_clustered_purity_is_parsed_per_epoch_and_tabled():
    log = (
        'SpCL epoch 0: 40 clusters, 500 un-clustered instances, independence threshold 0.9 (0.1 s)\n'
        'SpCL epoch 0 pseudo-label quality: ARI 0.0500 NMI 0.7000 | clustered 0.4000 of the images, on them: '
        'ARI 0.0800, pairwise precision 0.0600\n'
        'SpCL epoch 1: 42 clusters, 480 un-clustered instances, independence threshold 0.9 (0.1 s)\n'
        'SpCL epoch 1 pseudo-label quality: ARI 0.0600 NMI 0.7100 | clustered 0.0000 of the images, on them: '
        'ARI nan, pairwise precision nan\n'
    )
    epochs = bench.parse_log(log)['epochs']
    assert epochs[0] == dict(
        epoch=0,
        clusters=40,
        outliers=500,
        ARI=0.05,
        NMI=0.7,
        clustered=0.4,
        ARI_clustered=0.08,
        pairwise_precision=0.06,
    )
    assert math.isnan(epochs[1]['pairwise_precision'])
    runs = [dict(arm='SpCL (UDA)', seed=s, mAP=10.0, top1=10.0, epochs=epochs) for s in (0, 1)]
    table = bench.purity_table(runs, ['SpCL (UDA)'])
    assert '| SpCL (UDA) | 0 | 2 | 0.400 | 0.080 | 0.060 | 0.050 |' in table
    assert '| SpCL (UDA) | 1 | 2 | 0.000 | - | - | 0.060 |' in table


def test_one_arm_under_several_hook_settings_is_compared_by_run_name(tmp_path):
    for name, maps in (('a', [10, 11, 12]), ('b', [12, 14, 13])):
        rows_ = [dict(arm='SpCL (UDA)', seed=s, mAP=m, top1=m) for s, m in enumerate(maps)]
        rows_.append(dict(arm='source-only', seed=0, mAP=1.0, top1=1.0))
        (tmp_path / 'spcl').mkdir(exist_ok=True)
        (tmp_path / 'spcl' / f'{name}.json').write_text(json.dumps(dict(rows=rows_)))
    got = bench.uda_rows(str(tmp_path), (('official', 'spcl/a.json'), ('fresh', 'spcl/b.json')))
    assert sorted((r['arm'], r['seed']) for r in got) == [
        (n, s) for n in ('fresh', 'official') for s in range(3)
    ]
    gaps = bench.gaps_table(got, [('fresh', 'official')])
    assert '+2.00 / +3.00 / +1.00 (+2.00 +- 1.00)' in gaps and 'not resolved' in gaps


def test_gate_eps_rule_picks_each_sources_best_eps_and_tables_it(tmp_path):
    rows_ = [
        dict(eps=0.3, ARI=0.05),
        dict(eps=0.35, ARI=0.09),
        dict(eps=0.4, ARI=0.09),
        dict(eps=0.5, ARI=0.02),
    ]
    assert bench.best_eps(rows_)['eps'] == 0.35  # highest ARI, the smaller eps on a tie
    (tmp_path / 'spcl' / 'gate_eps').mkdir(parents=True)
    for seed, (mem, fresh, passed) in enumerate(((0.08, 0.09, True), (0.03, 0.10, False))):
        best = dict(
            memory=dict(eps=0.45, ARI=mem, clustered=0.5), fresh=dict(eps=0.35, ARI=fresh, clustered=0.6)
        )
        (tmp_path / 'spcl' / 'gate_eps' / f'gate_eps_x_seed{seed}.json').write_text(
            json.dumps(dict(seed=seed, best=best, passed=passed))
        )
    table = bench.gate_eps_table(str(tmp_path))
    assert '| 0 | 0.45 / 0.080 / 0.50 | 0.35 / 0.090 / 0.60 | 0.89 | passed |' in table
    assert '| 1 | 0.45 / 0.030 / 0.50 | 0.35 / 0.100 / 0.60 | 0.30 | failed |' in table


def test_purity_gaps_pair_the_seeds_at_the_last_epoch():
    def run(arm, seed, clustered):
        epochs = [
            dict(epoch=e, clustered=clustered + e, ARI_clustered=0.1, pairwise_precision=0.05)
            for e in range(3)
        ]
        return dict(arm=arm, seed=seed, mAP=1.0, top1=1.0, epochs=epochs)

    rows_ = [run('a', s, 0.5 + 0.01 * s) for s in range(3)] + [run('b', s, 0.4) for s in range(3)]
    table = bench.purity_gaps_table(rows_, [('a', 'b')])
    assert '| a - b | clustered fraction | 2 | +0.100 / +0.110 / +0.120 (+0.110 +- 0.010) | effect |' in table
    assert (
        '| a - b | ARI on the clustered | 2 | +0.000 / +0.000 / +0.000 (+0.000 +- 0.000) | not resolved |'
        in table
    )
