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
