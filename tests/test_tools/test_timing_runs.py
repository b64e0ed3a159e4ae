"""The timing benches save what the docs' timing tables are rendered from: a tiny run of each with ``--out``
writes its rows, and the table rendered from the saved file holds those rows (no timing is asserted)."""

import json
import os.path as osp

import pytest

from tools.benchmarks import cropbank_cost, spcl_bench


def test_memory_update_run_is_saved_and_rendered(tmp_path):
    out = tmp_path / 'spcl' / 'memory_update.json'
    spcl_bench.main(
        ['update', '--batch', '32', '--memory', '1100', '--dim', '16', '--repeats', '1', '--device', 'cpu']
        + ['--out', str(out)]
    )
    run = json.loads(out.read_text())
    (row,) = run['rows']
    assert row['max_abs_diff'] < 1e-5 and row['max_abs_diff_vectorised'] < 1e-5  # same result as the loop
    rows = spcl_bench.saved_timing_rows(str(tmp_path), 'memory_update*.json')
    table = spcl_bench.columns_table(rows, spcl_bench.UPDATE)
    header, rule, line = table.split('\n')
    assert header.count('|') == rule.count('|') == line.count('|')
    assert line.startswith('| 32 into 1,100 x 16 |') and f'{row["loop_ms"]:.2f}' in line


def test_missing_timing_run_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='spcl/clustering_cost.json'):
        spcl_bench.saved_timing_rows(str(tmp_path), 'clustering_cost.json')


def test_cropbank_cost_run_is_saved_and_rendered(tmp_path):
    out = osp.join(tmp_path, 'cost.json')
    cropbank_cost.main(
        ['--images', '4', '--boxes', '4', '--classes', '5', '--candidates', '400', '--out', out]
    )
    with open(out) as f:
        run = json.load(f)
    assert run['marks'] == [400] and run['settings']['candidates'] == 400
    (row,) = run['rows']  # this tree only (no --compare-rev)
    assert row['module'].startswith('this tree') and len(row['ms_per_iteration']) == 1
    lines = cropbank_cost.table(out).split('\n')
    assert lines[0].startswith('| module | <= 400 |') and len(lines) == 3
    assert lines[2].startswith(f'| {row["module"]} | {row["ms_per_iteration"][0]:.2f} |')
