"""The SpCL accuracy benchmark's report: the ordering gaps per seed and the > 2 sd target check."""

import importlib.util
import json
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
