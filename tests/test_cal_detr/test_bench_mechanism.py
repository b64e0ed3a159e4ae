"""The Cal-DETR bench's test of the release's test-time logits, without training.

The release trains ``z - tanh(u)`` and tests the raw ``z``. The bench records ``tanh(u)`` of each prediction
(a recording subclass of the Cal heads), saves per-run prediction summaries, fits the logit offset of an arm
over the baseline at matched precision, and checks the mechanism's predictions on the saved summaries. Every
check here has a known answer: fabricated logits with a known shift, fabricated summaries, predictions made
from the demo set's own ground truth ("composited from real images").
"""

import importlib
import json
import math
import pickle

import numpy as np
import pytest
import torch

from mmssod.models.cal_detr.cal_detr_utils import logit_uncertainty, modulate_logits

from .conftest import DDETR_CFG, DINO_CFG
from .test_cal_detr_heads import _head, _head_inputs
from .test_caldetr_bench import _dump_from_ground_truth, _fake_tools, _load_bench


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_logit_offset_recovers_a_known_shift():
    bench = _load_bench()
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 1.5, 4000)
    tp = rng.random(z.size) < _sigmoid(z - 0.4)  # over-confident by 0.4 in logit space
    assert bench.logit_bias(_sigmoid(z), tp) == pytest.approx(0.4, abs=0.1)
    # the arm's logits are the baseline's + 0.7 with the same matches: b = 0.7 exactly
    assert bench.logit_offset(_sigmoid(z), tp, _sigmoid(z + 0.7), tp) == pytest.approx(0.7, abs=1e-9)
    assert bench.logit_offset(_sigmoid(z), tp, _sigmoid(z - 0.3), tp) == pytest.approx(-0.3, abs=1e-9)
    # other detections of a detector whose logits sit 0.7 higher at equal precision, each set kept at
    # score >= 0.3 as the bench keeps them: the offset is recovered up to sampling
    z_arm = rng.normal(0.0, 1.5, 20000)
    tp_arm = rng.random(z_arm.size) < _sigmoid(z_arm - 0.4 - 0.7)
    z_base = rng.normal(0.0, 1.5, 20000)
    tp_base = rng.random(z_base.size) < _sigmoid(z_base - 0.4)
    kb, ka = _sigmoid(z_base) >= 0.3, _sigmoid(z_arm) >= 0.3
    got = bench.logit_offset(_sigmoid(z_base[kb]), tp_base[kb], _sigmoid(z_arm[ka]), tp_arm[ka])
    assert got == pytest.approx(0.7, abs=0.1)


def test_logit_bias_is_undefined_without_both_outcomes():
    bench = _load_bench()
    assert math.isnan(bench.logit_bias(np.array([0.5, 0.6]), np.array([True, True])))
    assert math.isnan(bench.logit_bias(np.zeros(0), np.zeros(0, bool)))
    with pytest.raises(ValueError, match='shape'):
        bench.logit_bias(np.array([0.5, 0.6]), np.array([True]))


def test_released_modulated_test_tests_the_released_checkpoint_on_modulated_logits(
    demo_det_root, tmp_path, monkeypatch
):
    """``released-modulated-test`` trains nothing: the released run's checkpoint, the released config with
    ``modulate_at_test=True``; its test configs (like every Cal arm's) use the recording head."""
    from mmengine.config import Config

    bench = _load_bench()
    assert bench.source_arm('released-modulated-test') == 'released'
    assert bench.source_arm('paper-modulated-test') == 'paper' and bench.source_arm('released') == 'released'
    assert bench.base_arm('released-modulated-test') == 'released' and bench.base_arm('mixing') == 'paper'
    calls = _fake_tools(bench, monkeypatch)
    args = bench.parse_args(['--data-root', demo_det_root, '--work-dir', str(tmp_path), '--seeds', '0'])
    with pytest.raises(FileNotFoundError, match='train it first: --arms released'):
        bench.train_and_test(args, 'released-modulated-test', 0)
    bench.train_and_test(args, 'released', 0)
    run = tmp_path / 'dino_released_seed0'
    run.mkdir()
    (run / 'iter_900.pth').touch()
    calls.clear()
    tested = bench.train_and_test(args, 'released-modulated-test', 0)
    assert [c[0] for c in calls] == ['tools/test.py', 'tools/test.py']  # no training
    assert all(c[2] == str(run / 'iter_900.pth') for c in calls)
    assert tested['checkpoint'] == str(run / 'iter_900.pth')
    assert bench.checkpoint_path(args, 'released-modulated-test', 0) == str(run / 'iter_900.pth')
    released = Config.fromfile(bench.derived_config(args, 'released', 0)).model.bbox_head
    head = Config.fromfile(calls[0][1]).model.bbox_head
    assert head.modulate_at_test is True and head.type == 'UncertaintyRecordingCalDINOHead'
    assert released.modulation_mode == 'released' and released.type == 'CalDINOHead'
    drop = ('modulate_at_test', 'type')
    assert {k: v for k, v in head.items() if k not in drop} == {
        k: v for k, v in released.items() if k != 'type'
    }
    # the baseline's test config keeps mmdet's head (no tanh(u) to record)
    base = Config.fromfile(bench.derived_config(args, 'baseline', 0, record=True))
    assert base.model.bbox_head.type == 'DINOHead' and 'caldetr_record' not in str(base.get('custom_imports'))


@pytest.mark.parametrize(
    'config,head_type,recording',
    [
        (DINO_CFG, 'CalDINOHead', 'UncertaintyRecordingCalDINOHead'),
        (DDETR_CFG, 'CalDeformableDETRHead', 'UncertaintyRecordingCalDeformableDETRHead'),
    ],
)
@pytest.mark.parametrize('modulate_at_test', [False, True])
def test_recording_head_keeps_the_predictions_and_adds_tanh_u_of_each(
    config, head_type, recording, modulate_at_test
):
    bench = _load_bench()  # puts the repository on sys.path
    importlib.import_module(bench.RECORD_MODULE)
    kwargs = dict(modulation_mode='released', logit_mixing=False, modulate_at_test=modulate_at_test)
    plain, rec = _head(config, head_type, **kwargs), _head(config, recording, **kwargs)
    for head in (plain, rec):
        head.test_cfg = dict(max_per_img=10)
    cls, boxes, _, metas = _head_inputs(plain)
    want, got = plain.predict_by_feat(cls, boxes, metas), rec.predict_by_feat(cls, boxes, metas)
    scored = modulate_logits(cls, 'released') if modulate_at_test else cls[-1]
    tanh_u = torch.tanh(logit_uncertainty(cls))
    for img, (w, g) in enumerate(zip(want, got)):
        assert torch.equal(w.scores, g.scores) and torch.equal(w.labels, g.labels)
        assert torch.equal(w.bboxes, g.bboxes) and g.tanh_u.shape == g.scores.shape
        for score, label, value in zip(g.scores, g.labels, g.tanh_u):  # the query this score came from
            q = int((scored[img, :, label].sigmoid() - score).abs().argmin())
            assert torch.isclose(scored[img, q, label].sigmoid(), score) and value == tanh_u[img, q, label]
    with pytest.raises(RuntimeError, match='top-k'):
        importlib.import_module(bench.RECORD_MODULE).kept_query_values(
            cls[-1, 0], tanh_u[0], got[0].scores + 1
        )


def test_summary_round_trip_matches_the_benchs_own_numbers(demo_det_root, tmp_path):
    """A summary written from dumped predictions reads back unchanged, gives the D-ECE, signed gap and its
    bootstrap interval the bench computes from the predictions, and is never overwritten by other settings."""
    bench = _load_bench()
    args = bench.parse_args(
        ['--data-root', demo_det_root, '--work-dir', str(tmp_path), '--seeds', '0']
        + ['--summary-dir', str(tmp_path / 'summaries'), '--bootstrap-samples', '30']
    )
    classes = [c['name'] for c in json.loads(open(bench.ann_file(args, 'clean')).read())['categories']]
    res = dict(settings=dict(arm='released', seed=0))
    for domain in bench.DOMAINS:
        pkl = str(tmp_path / f'{domain}.pkl')
        # true positives at 0.9 / 0.6 (alternating images), the false positive at 0.45; one kept below 0.3
        _dump_from_ground_truth(
            bench.ann_file(args, domain), pkl, lambda i, k, fp: 0.45 if fp else (0.9 if i % 2 else 0.6)
        )
        results = pickle.load(open(pkl, 'rb'))
        for r in results:  # the recording head's field: a known tanh(u) per prediction
            n = len(r['pred_instances']['scores'])
            r['pred_instances']['tanh_u'] = torch.linspace(0.1, 0.5, n)
        results[0]['pred_instances']['scores'][0] = 0.2
        pickle.dump(results, open(pkl, 'wb'))
        res[domain] = dict(ap=41.0 if domain == 'clean' else 30.0, ap50=50.0, predictions=pkl)
    path = bench.write_prediction_summary(args, 'released', 0, res, classes)
    assert path == str(tmp_path / 'summaries' / 'dino_released_seed0_summary.npz')
    saved = bench.load_prediction_summary(path)
    meta = saved['meta']
    assert meta['ap'] == {'clean': 41.0, 'corrupted': 30.0} and meta['settings'] == res['settings']
    assert meta['checkpoint'].endswith('dino_released_seed0/iter_900.pth')
    for domain in bench.DOMAINS:
        got, results = saved[domain], pickle.load(open(res[domain]['predictions'], 'rb'))
        assert got['image_ids'].tolist() == [r['img_id'] for r in results]
        kept = [
            (r['img_id'], float(s), float(t))
            for r in results
            for s, t in zip(r['pred_instances']['scores'], r['pred_instances']['tanh_u'])
            if s >= 0.3
        ]
        assert got['image_id'].tolist() == [k[0] for k in kept]
        assert np.allclose(got['score'], [k[1] for k in kept]) and np.allclose(
            got['tanh_u'], [k[2] for k in kept]
        )
        assert got['matched'].sum() == (got['score'] > 0.5).sum()  # the ground-truth boxes, not the extra one
        stats = bench.summary_stats(got, meta)
        cal = bench.calibration_set_by_fold(args, res[domain]['predictions'], domain, classes)
        full = bench.calibration_stats(args, cal['confidences'], cal['is_tp'], cal['labels'], classes)
        assert stats['num_dets'] == full['num_dets'] and stats['dece'] == pytest.approx(full['dece'])
        assert stats['signed_gap'] == pytest.approx(full['signed_gap'])
        interval = bench.signed_gap_interval(args, res[domain]['predictions'], classes, domain)
        assert stats['signed_gap_interval'] == pytest.approx(interval)
        assert stats['mean_tanh_u'] == pytest.approx(float(np.mean([k[2] for k in kept])), rel=1e-6)
    assert bench.write_prediction_summary(args, 'released', 0, res, classes) == path  # same settings: kept
    with pytest.raises(FileExistsError, match='--summary-dir'):
        bench.write_prediction_summary(
            args, 'released', 0, dict(res, settings=dict(arm='released', seed=1)), classes
        )


def _fabricated_root(bench, root, regime, arms, shifts, bias, seeds=(0, 1, 2)):
    """Summaries of ``regime``'s arms under ``root``: the baseline's logits z (3000 detections over 60
    images, matched with probability sigmoid(z - bias)), each arm's the same detections with logits
    z + shifts[arm][seed] and tanh(u) = that shift."""
    spec = bench.MECHANISM_REGIMES[regime]
    for seed in seeds:
        rng = np.random.default_rng(seed)
        domains = {}
        for domain in bench.DOMAINS:
            z = rng.normal(0.0, 1.2, 3000)
            domains[domain] = (z, rng.random(z.size) < _sigmoid(z - bias))
        for arm in arms:
            shift = shifts.get(arm, [0.0] * len(seeds))[seed]
            fields = {}
            for domain, (z, tp) in domains.items():
                fields[domain] = dict(
                    score=_sigmoid(z + shift),
                    matched=tp,
                    label=np.arange(z.size) % 10,
                    image_id=np.arange(z.size) % 60,
                    tanh_u=np.full(z.size, np.nan if arm == 'baseline' else shift),
                    image_ids=np.arange(60),
                )
            meta = dict(ap={d: 10.0 + seed for d in bench.DOMAINS}, num_bins=10, bootstrap_samples=10)
            meta['bootstrap_level'] = 0.95
            name = bench.summary_name(spec['family'], arm, seed, spec['tag'])
            bench.save_prediction_summary(str(root / spec['folder'] / name), meta, fields)


def test_prediction_evaluator_met_not_met_not_run(tmp_path):
    bench = _load_bench()
    verdicts = lambda rows: [(r['key'], r['domain'], r['verdict']) for r in rows]  # noqa: E731
    # nothing saved: every prediction of both regimes is "not run", and the tables render
    assert {r['verdict'] for r in bench.evaluate_mechanism('over-confident', {})} == {'not run'}
    empty = bench.mechanism_predictions_table(str(tmp_path))
    assert empty.count('not run') == 16 and ' met ' not in empty
    assert bench.mechanism_runs_table(str(tmp_path)).count('not run') == 5 * 2 * (6 + 3)
    # the mechanism holds: release +0.5 / +0.6 / +0.55 in logit space with tanh(u) of that size; tested on its
    # modulated logits about 0; the baseline over-confident (bias +0.3), so the release raises its D-ECE
    shifts = {'released': [0.5, 0.6, 0.55], 'released-modulated-test': [0.02, -0.03, 0.01]}
    root = tmp_path / 'holds'
    _fabricated_root(
        bench, root, 'over-confident', ('baseline', 'released', 'released-modulated-test'), shifts, 0.3
    )
    runs = bench.mechanism_runs(str(root), 'over-confident')
    assert [runs['released'][s]['clean']['offset'] for s in (0, 1, 2)] == pytest.approx(
        [0.5, 0.6, 0.55], abs=1e-6
    )
    assert runs['released'][0]['clean']['mean_tanh_u'] == pytest.approx(0.5)
    assert set(verdicts(bench.evaluate_mechanism('over-confident', runs))) == {
        (key, d, 'met') for key in ('offset', 'size', 'removal', 'dece') for d in bench.DOMAINS
    }
    # the same runs in the under-confident regime's folder: its D-ECE prediction (lower) is not met
    _fabricated_root(
        bench, root, 'under-confident', ('baseline', 'released', 'released-modulated-test'), shifts, 0.3
    )
    under = verdicts(
        bench.evaluate_mechanism('under-confident', bench.mechanism_runs(str(root), 'under-confident'))
    )
    assert ('dece', 'clean', 'not met') in under and ('offset', 'clean', 'met') in under
    # an under-confident baseline (bias -0.8): the release's upward shift lowers its D-ECE
    low = tmp_path / 'under'
    _fabricated_root(
        bench, low, 'under-confident', ('baseline', 'released', 'released-modulated-test'), shifts, -0.8
    )
    rows = verdicts(
        bench.evaluate_mechanism('under-confident', bench.mechanism_runs(str(low), 'under-confident'))
    )
    assert ('dece', 'clean', 'met') in rows
    # no offset, a modulated test that keeps it, tanh(u) far larger than the offset, one seed missing
    bad = tmp_path / 'bad'
    shifts = {'released': [0.0, 0.01, -0.01], 'released-modulated-test': [0.5, 0.6, 0.55]}
    _fabricated_root(
        bench, bad, 'over-confident', ('baseline', 'released', 'released-modulated-test'), shifts, 0.3
    )
    runs = bench.mechanism_runs(str(bad), 'over-confident')
    for d in bench.DOMAINS:
        for s in (0, 1, 2):
            runs['released'][s][d]['mean_tanh_u'] = 0.5
    rows = bench.evaluate_mechanism('over-confident', runs)
    assert {r['verdict'] for r in rows} == {'not met'}
    del runs['released-modulated-test'][2]
    rows = verdicts(bench.evaluate_mechanism('over-confident', runs))
    assert ('removal', 'clean', 'not run') in rows and ('offset', 'clean', 'not met') in rows
    table = bench.mechanism_predictions_table(str(root))
    assert 'met' in table and table.count('| over-confident |') == 8


def test_the_documented_regime_commands_write_where_the_tables_read():
    """The commands in docs/benchmarks/cal_detr.md write the summaries the mechanism tables read."""
    bench = _load_bench()
    over = '--iters 1500 --lr-drop-at 1 --train-images 100 --img-size 128 --num-workers 1 --no-timing'
    over += ' --test-root data/composited_det_demo_test600'
    for regime, argv in (('over-confident', over), ('under-confident', '--num-workers 1 --no-timing')):
        args = bench.parse_args(['--train-only'] + argv.split())
        spec = bench.MECHANISM_REGIMES[regime]
        assert bench.summary_dir(args).endswith('docs/benchmarks/results/' + spec['folder'])
        assert bench.eval_tag(args) == spec['tag'] and args.family == spec['family']
    assert bench.regime_folder(bench.parse_args(['--iters', '60'])) == 'mechanism_dino_60it'
