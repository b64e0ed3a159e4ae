"""tools/benchmarks/ddep_bench.py beyond the recipe: the stage probe (features of every decoder stage,
decoder BN statistics recomputed on data), the pairing of pretraining seeds with fine-tuning seeds, the
pretraining data size and the tables built from saved runs (no training here)."""

import importlib.util
import json
import os.path as osp

import numpy as np
import pytest
import torch

from ..conftest import REPO_ROOT

GATED = ['--finetune-lr', '1e-3', '--finetune-iters', '4000', '--budgets', '500', '1000', '2000', '4000']


@pytest.fixture(scope='module')
def bench():
    spec = importlib.util.spec_from_file_location(
        'ddep_bench_probe', osp.join(REPO_ROOT, 'tools/benchmarks/ddep_bench.py')
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_decoder():
    from mmssod.models.ddep import UNetDecoder

    torch.manual_seed(0)
    return UNetDecoder(in_channels=(4, 8, 16), in_strides=(2, 4, 8), decoder_channels=(8, 6, 4))


def tiny_feats(n=2, side=32, shift=0.0):
    g = torch.Generator().manual_seed(1)
    return [
        torch.randn(n, c, side // s, side // s, generator=g) + shift for c, s in ((4, 2), (8, 4), (16, 8))
    ]


def test_stage_features_shapes_and_sets(bench):
    dec = tiny_decoder().eval()
    feats = tiny_feats()
    x = bench.decoder_stage_features(dec, feats, (20, 24))
    assert x.shape == (2, 8 + 6 + 4, 20, 24)
    sets = bench.probe_feature_sets(dec.stage_channels, dec.stage_strides)
    assert list(sets) == ['stride4', 'stride2', 'stride1', 'concat']
    assert [(v.start, v.stop) for v in sets.values()] == [(0, 8), (8, 14), (14, 18), (0, 18)]
    # the last stage's columns are the decoder output (what the 1x1 classifier sees), resized
    with torch.no_grad():
        out = torch.nn.functional.interpolate(dec(feats), size=(20, 24), mode='bilinear', align_corners=False)
        assert torch.allclose(x[:, sets['stride1']], out, atol=1e-6)
    # no hook is left on the stages
    assert all(not st._forward_hooks for st in dec.stages)
    # the benchmark's 1x decoder over EfficientNet-Lite0 has the feature sets its tables list
    from mmssod.models.ddep import UNetDecoder

    one_x = UNetDecoder(in_channels=bench.LITE_CHANNELS['lite0'], decoder_channels=(256, 128, 64, 32, 16))
    assert tuple(bench.probe_feature_sets(one_x.stage_channels, one_x.stage_strides)) == bench.PROBE_SETS
    with pytest.raises(ValueError, match='stage'):
        bench.probe_feature_sets((8, 4), (2,))


def test_bn_recompute_moves_stats_off_defaults(bench):
    from torch.nn.modules.batchnorm import _BatchNorm

    dec = tiny_decoder().eval()
    bns = [m for m in dec.modules() if isinstance(m, _BatchNorm)]
    assert bns and all(
        float(m.running_mean.abs().max()) == 0 and float((m.running_var - 1).abs().max()) == 0 for m in bns
    )
    batches = [tiny_feats(shift=3.0), tiny_feats(n=3, shift=1.0)]
    assert bench.recompute_bn_stats(dec, lambda b: dec(b), batches) == len(bns)
    first = [(m.running_mean.clone(), m.running_var.clone()) for m in bns]
    assert all(float(mean.abs().max()) > 1e-3 and float((var - 1).abs().max()) > 1e-3 for mean, var in first)
    # momentum and mode restored; no gradient was taken
    assert all(m.momentum == 0.1 and not m.training for m in bns)
    assert all(p.grad is None for p in dec.parameters())
    # cumulative: recomputing on the same batches gives the same statistics, whatever they were before
    bench.recompute_bn_stats(dec, lambda b: dec(b), batches)
    for m, (mean, var) in zip(bns, first):
        assert torch.allclose(m.running_mean, mean, atol=1e-5) and torch.allclose(
            m.running_var, var, atol=1e-5
        )
    # one BN layer: the running mean is the average of the per-batch channel means
    bn = torch.nn.BatchNorm2d(2).eval()
    a, b = torch.randn(4, 2, 3, 3) + 5, torch.randn(4, 2, 3, 3) - 1
    bench.recompute_bn_stats(bn, bn, [a, b])
    want = (a.mean((0, 2, 3)) + b.mean((0, 2, 3))) / 2
    assert torch.allclose(bn.running_mean, want, atol=1e-5) and not bn.training


def test_pick_pixels(bench):
    keep = torch.zeros(6, 5, dtype=torch.bool)
    keep[1:4, 2:] = True  # 9 usable pixels
    gen = torch.Generator().manual_seed(0)
    idx = bench.pick_pixels(keep, 4, gen)
    assert len(idx) == 4 and len(set(idx.tolist())) == 4 and bool(keep.flatten()[idx].all())
    assert sorted(bench.pick_pixels(keep, 50, gen).tolist()) == torch.nonzero(keep.flatten())[:, 0].tolist()


def test_pretraining_seed_and_size_keying(bench, tmp_path):
    args = bench.parse_args(['--work-dir', str(tmp_path), *GATED])
    # seed 0 and the default data size keep the names (and settings) of the runs saved before
    assert bench.ddep_tag(args) == 'ddep' and bench.unlabeled_tag(args) == ''
    saved = json.load(
        open(osp.join(REPO_ROOT, 'docs/benchmarks/results/ddep/lr1e-3_4000it/ft_ddep_1pct_s0.json'))
    )
    assert bench.finetune_settings(args, 1, 0, 'ddep') == saved['settings']
    p1 = bench.with_pretraining(args, 1)
    assert (p1.pretrain_seed, args.pretrain_seed) == (1, 0) and bench.ddep_tag(p1) == 'ddep_p1'
    # the probes of another pretraining are saved under other names, not over seed 0's
    names = {osp.basename(f(a, 1, 3)) for f in (bench.probe_path, bench.stage_probe_path) for a in (args, p1)}
    assert names == {'probe_1pct_s3.json', 'probe_p1_1pct_s3.json'} | {
        f'probe-stages_1pct_p{p}_s3.json' for p in (0, 1)
    }
    d0, d1 = (bench.finetune_settings(a, 1, 3, 'ddep') for a in (args, p1))
    assert (d0['pretrain']['seed'], d1['pretrain']['seed'], d1['seed']) == (0, 1, 3)
    # the random-init arm reads no pretraining: one run per fine-tuning seed, shared by the pretraining seeds
    assert bench.finetune_settings(args, 1, 3, 'random') == bench.finetune_settings(p1, 1, 3, 'random')
    # the pretraining data size: only the pretraining's set changes, not the labeled / val data
    small = bench.parse_args(['--work-dir', str(tmp_path), '--pretrain-unlabeled', '250', *GATED])
    assert bench.ddep_tag(bench.with_pretraining(small, 2)) == 'ddep_unl250_p2'
    pre = bench.pretrain_settings(small)
    assert pre['data']['num_unlabeled'] == 250 and bench.data_config(small).num_unlabeled == 1000
    assert bench.finetune_settings(small, 1, 0, 'random') == bench.finetune_settings(args, 1, 0, 'random')
    assert bench.build_pretrain_data(args, 'root/') == 'root/'  # the default size reads the benchmark's set
    same = bench.parse_args(['--pretrain-unlabeled', '1000'])
    assert bench.unlabeled_tag(same) == '' and bench.pretrain_settings(same) == bench.pretrain_settings(args)
    for bad in (['--pretrain-seeds', '1', '1'], ['--pretrain-unlabeled', '0']):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)


def save_ft(bench, folder, args, seed, arm, miou, pretrain_seed=0, name=None):
    a = bench.with_pretraining(args, pretrain_seed)
    settings = bench.finetune_settings(a, 1, seed, arm)
    tag = bench.ddep_tag(a) if arm == 'ddep' else 'random'
    path = osp.join(folder, name or f'ft_{tag}_1pct_s{seed}.json')
    json.dump(dict(settings=settings, miou=miou), open(path, 'w'))


def test_pairs_table_from_saved_runs(bench, tmp_path):
    args = bench.parse_args(['--work-dir', str(tmp_path), *GATED])
    a, b = tmp_path / 'a', tmp_path / 'b'
    a.mkdir(), b.mkdir()
    for s in range(3):
        save_ft(bench, a, args, s, 'random', {'2000': 10.0 + s, '4000': 11.0 + s})
        for p in (0, 1):  # DDeP gains 1 + 0.1 p + 0.05 s at 2,000 steps
            save_ft(
                bench,
                b if p else a,
                args,
                s,
                'ddep',
                {'2000': 11.0 + s + 0.1 * p + 0.05 * s, '4000': 11.0 + s},
                p,
            )
    # runs of another regime or fraction are not read; a partial run neither
    other = bench.parse_args(
        ['--finetune-lr', '1e-4', '--finetune-iters', '4000', '--budgets', '2000', '4000']
    )
    save_ft(bench, b, other, 0, 'random', {'2000': 99.0, '4000': 99.0}, name='ft_random_1pct_s9.json')
    save_ft(bench, b, args, 0, 'random', {'2000': 99.0}, name='ft_random_1pct_s0.partial.json')
    random, ddep = bench.saved_pairs([str(a), str(b)], 1)
    assert sorted(random) == [0, 1, 2] and random[0]['2000'] == 10.0
    assert sorted(ddep) == [(p, 1000, s) for p in (0, 1) for s in range(3)]
    table = bench.pretrain_seeds_table(random, ddep, (0, 1, 2), (0, 1, 2), ('2000', '4000'))
    lines = table.splitlines()
    assert lines[2].startswith('| 0 | 0 | 10.00 | 11.00 | +1.00 | 11.00 | 11.00 | +0.00 |')
    assert '| 1 | 2 | 12.00 | 13.20 | +1.20 |' in table
    assert lines[2 + 6].startswith('| 2 | 0 | 10.00 | - | not run |')  # pretraining seed 2 not run
    all_pairs = next(line for line in lines if 'all pairs' in line)
    gains = [1.0, 1.05, 1.1, 1.1, 1.15, 1.2]
    assert f'+{np.mean(gains):.2f} +- {np.std(gains, ddof=1):.2f}, n=6 (resolved)' in all_pairs
    assert '+0.00 +- 0.00, n=6 (not resolved)' in all_pairs  # no gain at 4,000 steps
    over = next(line for line in lines if 'over pretraining seeds' in line)
    assert 'n=2 (not resolved)' in over  # two pretraining seeds cannot resolve anything
    # a run saved twice with other numbers is an error naming the file
    save_ft(bench, b, args, 1, 'random', {'2000': 5.0, '4000': 5.0}, name='ft_random_1pct_s1.json')
    with pytest.raises(ValueError, match='ft_random_1pct_s1.json'):
        bench.saved_pairs([str(a), str(b)], 1)


def test_data_size_table_and_plot(bench, tmp_path):
    args = bench.parse_args(['--work-dir', str(tmp_path), *GATED])
    for s in range(3):
        save_ft(bench, tmp_path, args, s, 'random', {'2000': 10.0, '4000': 10.0 + s})
        save_ft(bench, tmp_path, args, s, 'ddep', {'2000': 10.5, '4000': 10.0 + 2 * s})
    small = bench.parse_args(['--work-dir', str(tmp_path), '--pretrain-unlabeled', '250', *GATED])
    save_ft(bench, tmp_path, small, 0, 'ddep', {'2000': 9.0, '4000': 9.0})
    random, ddep = bench.saved_pairs([str(tmp_path)], 1)
    assert (0, 250, 0) in ddep
    table = bench.data_size_table(random, ddep, (250, 1000, 4000), ('2000', '4000'), (0, 1, 2))
    assert (
        '| 250 | 2,000 | 0 | 10.00 (10.00 +- -) | 9.00 (9.00 +- -) | -1.00 (-1.00 +- -) (not resolved) |'
        in table
    )
    assert (
        '| 1,000 | 2,000 | 0 / 1 / 2 |' in table
        and '+0.50 / +0.50 / +0.50 (+0.50 +- 0.00) (resolved)' in table
    )
    assert '| 4,000 | 4,000 | - | not run | not run | not run |' in table
    png = tmp_path / 'gain.png'
    assert bench.plot_data_size(random, ddep, str(png)) and png.stat().st_size > 0
    assert not bench.plot_data_size({}, {}, str(tmp_path / 'none.png'))
    assert not (tmp_path / 'none.png').exists()


def test_stage_probe_table_and_gate(bench, tmp_path):
    args = bench.parse_args(['--work-dir', str(tmp_path)])
    for seed, concat in ((0, 12.0), (1, 13.0), (2, 14.0)):
        miou = {arm: {name: 8.0 for name in bench.PROBE_SETS} for arm in ('random', 'ddep')}
        miou['random']['concat'], miou['ddep']['concat'] = concat, concat - 1
        path = bench.stage_probe_path(args, 1, seed)
        assert osp.basename(path) == f'probe-stages_1pct_p0_s{seed}.json'
        json.dump(dict(settings=bench.stage_probe_settings(args, 1, seed), miou=miou), open(path, 'w'))
    # another pretraining seed's probe is not mixed in
    p1 = bench.with_pretraining(args, 1)
    json.dump(
        dict(settings=bench.stage_probe_settings(p1, 1, 0), miou={}),
        open(bench.stage_probe_path(p1, 1, 0), 'w'),
    )
    probes = bench.saved_stage_probes(str(tmp_path))
    assert list(probes) == [1.0] and sorted(probes[1.0]) == [0, 1, 2]
    table = bench.probe_stages_table(probes)
    concat = next(line for line in table.splitlines() if '| concat |' in line)
    assert '12.00 / 13.00 / 14.00 (13.00 +- 1.00)' in concat and '**passes**' in concat  # 13.0 >= 1.5 x 7.60
    assert '-1.00 / -1.00 / -1.00 (-1.00 +- 0.00) (resolved)' in concat
    assert '| 5% | all | - | not run |' in table
    low = bench.probe_stages_table(probes, (1,), background=10.0)
    assert '| fails |' in low.splitlines()[-1]
    assert 'bn' in bench.stage_probe_settings(args, 1, 0)
