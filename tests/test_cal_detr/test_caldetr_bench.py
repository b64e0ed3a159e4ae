"""The Cal-DETR benchmark's evaluation of dumped predictions (no training), cross-fitted temperature scaling.

Predictions are made from the demo set's own ground truth ("composited from real images") with chosen scores,
so every number has a known answer.
"""

import json
import os.path as osp
import pickle

import numpy as np
import pytest
import torch

from mmssod.evaluation.functional import apply_temperature, cross_fit_temperature, detection_ece

from ..conftest import REPO_ROOT


def _load_bench():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        'caldetr_bench', osp.join(REPO_ROOT, 'tools/benchmarks/caldetr_bench.py')
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cross_fitted_temperature_scales_each_fold_with_the_other_folds_fit():
    rng = np.random.default_rng(0)
    true_p = rng.uniform(0.05, 0.95, 4000)
    is_tp = rng.uniform(size=true_p.size) < true_p
    scores = 1 / (1 + np.exp(-np.log(true_p / (1 - true_p)) * 2.5))  # over-confident
    folds = np.arange(scores.size) % 2
    scaled, temps = cross_fit_temperature(scores, is_tp, folds)
    assert set(temps) == {0, 1} and all(2.0 < t < 3.1 for t in temps.values())
    for f, t in temps.items():
        assert np.allclose(scaled[folds == f], apply_temperature(scores[folds == f], t))
    assert detection_ece(scaled, is_tp) < 0.5 * detection_ece(scores, is_tp)
    with pytest.raises(ValueError, match='at least 2 folds'):
        cross_fit_temperature(scores, is_tp, np.zeros(scores.size))


def _dump_from_ground_truth(ann_file, path, score_fn):
    """Predictions = the ground-truth boxes (true positives) + one small box per image (a false positive)."""
    coco = json.loads(open(ann_file).read())
    cat2label = {c['id']: i for i, c in enumerate(coco['categories'])}
    by_img = {img['id']: [] for img in coco['images']}
    for a in coco['annotations']:
        by_img[a['image_id']].append(a)
    results = []
    for img_id, anns in by_img.items():
        boxes = [[x, y, x + w, y + h] for x, y, w, h in (a['bbox'] for a in anns)]
        labels = [cat2label[a['category_id']] for a in anns]
        boxes.append([200.0, 200.0, 210.0, 210.0])
        labels.append(0)
        scores = [score_fn(img_id, k, k == len(boxes) - 1) for k in range(len(boxes))]
        results.append(
            dict(
                img_id=img_id,
                pred_instances=dict(
                    bboxes=torch.tensor(boxes, dtype=torch.float32),
                    scores=torch.tensor(scores, dtype=torch.float32),
                    labels=torch.tensor(labels),
                ),
            )
        )
    with open(path, 'wb') as f:
        pickle.dump(results, f)
    return len(coco['annotations']), len(results)


def test_bench_evaluation_reports_direction_per_class_temperature_scaling_and_diagrams(
    demo_det_root, tmp_path
):
    bench = _load_bench()
    args = bench.parse_args(['--data-root', demo_det_root, '--work-dir', str(tmp_path), '--seeds', '0'])
    classes = [c['name'] for c in json.loads(open(bench.ann_file(args, 'clean')).read())['categories']]
    trained = {}
    # baseline: every detection at 0.95, precision #gt / (#gt + #images) (over-confident);
    # 'paper': true positives at 0.95, the false positives at 0.35 (better calibrated)
    for arm, fp_score in (('baseline', 0.95), ('paper', 0.35)):
        trained[arm] = dict(train_wall_s=0.0)
        for domain in bench.DOMAINS:
            pkl = str(tmp_path / f'{arm}_{domain}.pkl')
            num_gt, num_img = _dump_from_ground_truth(
                bench.ann_file(args, domain), pkl, lambda i, k, is_fp, s=fp_score: s if is_fp else 0.95
            )
            trained[arm][domain] = dict(ap=50.0, ap50=60.0, predictions=pkl)
    out = bench.evaluate_seed(args, trained, classes)
    base, cal, ts = out['baseline']['clean'], out['paper']['clean'], out['ts']['clean']
    precision = num_gt / (num_gt + num_img)
    assert base['num_dets'] == num_gt + num_img and base['precision'] == pytest.approx(precision)
    assert base['dece'] == pytest.approx(100 * (0.95 - precision), abs=1e-3)  # one bin
    assert base['direction'] == 'over' and base['signed_gap'] == pytest.approx(base['dece'], abs=1e-6)
    for arm in ('baseline', 'paper'):  # image-bootstrap interval of the signed gap, in and out of domain
        for domain in bench.DOMAINS:
            r = out[arm][domain]
            lo, hi = r['signed_gap_interval']
            assert lo <= r['signed_gap'] <= hi and hi - lo < 20
    assert base['signed_gap_interval'][0] > 0  # every detection over-confident: the interval excludes 0
    assert cal['dece'] < base['dece']
    assert set(base['per_class']) == set(classes)
    # temperature scaling keeps the detections (and AP), changes only confidences; both halves got a T
    assert ts['num_dets'] == base['num_dets'] and ts['ap'] == base['ap']
    assert set(ts['temperature']) == {'0', '1'} and out['ts']['corrupted']['temperature'] > 0
    summary = bench.summarize({'0': out})
    assert summary['paper']['clean']['dece'][0] == pytest.approx(cal['dece'])
    assert summary['goal']['paper']['per_seed']['0']['dece_ratio']['clean'] == pytest.approx(
        cal['dece'] / base['dece']
    )
    paths = bench.save_diagrams(args, out, 0)
    assert len(paths) == 2 and all(open(p, 'rb').read(8) == b'\x89PNG\r\n\x1a\n' for p in paths)
    text = bench.report(args, dict(settings=dict(device='cpu'), per_seed={'0': out}, summary=summary))
    assert 'over (' in text and 'DINO + temperature scaling' in text and 'Per-class D-ECE' in text
    assert 'constant lr' not in text and 'lr x0.1 at 765' in text


def _fake_tools(bench, monkeypatch) -> list:
    """Replace the bench's tool runs: record each command, write an empty ``--out`` file, print AP 25 / 40."""
    calls = []

    def fake_run_tool(cmd, log_path, env=None):
        calls.append(cmd)
        if cmd[0] == 'tools/test.py':
            open(cmd[cmd.index('--out') + 1], 'wb').close()
        return 'coco/bbox_mAP: 0.250\ncoco/bbox_mAP_50: 0.400\n'

    monkeypatch.setattr(bench, 'run_tool', fake_run_tool)
    return calls


def test_finished_runs_are_reused_only_with_equal_settings(demo_det_root, tmp_path, monkeypatch):
    """Arms trained by separate processes are reported together; a changed setting retrains."""
    bench = _load_bench()
    calls = _fake_tools(bench, monkeypatch)
    argv = ['--data-root', demo_det_root, '--work-dir', str(tmp_path), '--seeds', '0']
    first = bench.train_and_test(bench.parse_args(argv), 'paper', 0)
    assert [c[0] for c in calls] == ['tools/train.py', 'tools/test.py', 'tools/test.py']
    assert first['clean']['ap'] == 25.0
    assert bench.train_and_test(bench.parse_args(argv), 'paper', 0) == first
    assert len(calls) == 3  # reused: nothing ran
    bench.train_and_test(bench.parse_args(argv + ['--iters', '10']), 'paper', 0)
    assert len(calls) == 6  # another schedule: trained and tested again


def test_test_root_only_tests_finished_runs_on_the_other_set(demo_det_root, tmp_path, monkeypatch):
    """``--test-root`` evaluates a finished run's checkpoint on another set's val splits, without training;
    a run that was not trained with these settings is a clear error."""
    bench = _load_bench()
    calls = _fake_tools(bench, monkeypatch)
    other = str(tmp_path / 'bigger_test_set')
    argv = ['--data-root', demo_det_root, '--work-dir', str(tmp_path), '--seeds', '0']
    with pytest.raises(FileNotFoundError, match='train it first'):
        bench.train_and_test(bench.parse_args(argv + ['--test-root', other]), 'baseline', 0)
    trained = bench.train_and_test(bench.parse_args(argv), 'baseline', 0)
    run = tmp_path / 'dino_baseline_seed0'
    (run / 'iter_900.pth').parent.mkdir(exist_ok=True)
    (run / 'iter_900.pth').touch()
    calls.clear()
    tested = bench.train_and_test(bench.parse_args(argv + ['--test-root', other]), 'baseline', 0)
    assert [c[0] for c in calls] == ['tools/test.py', 'tools/test.py']  # no training
    assert tested['train_wall_s'] == trained['train_wall_s']
    assert tested['settings']['test_root'] == other + '/'
    for domain, cmd in zip(bench.DOMAINS, calls):
        assert cmd[2] == str(run / 'iter_900.pth')
        config = open(cmd[1]).read()
        split = 'val_corrupted' if domain == 'corrupted' else 'val'
        lines = {line.split(' = ')[0]: line for line in config.splitlines()}
        train_line, test_line = lines['train_dataloader'], lines['test_dataloader']
        assert repr(bench.parse_args(argv).data_root) in train_line and repr(other + '/') in test_line
        assert f'{other}/annotations/instances_{split}.json' in config
        assert tested[domain]['predictions'] == f'{run}_on-bigger_test_set_{domain}.pkl'
    assert trained['clean']['predictions'] == f'{run}_clean.pkl'  # the run's own results are kept


def test_dece_resolution_calibrated_floor_shrinks_with_more_detections_and_bootstrap_is_seeded():
    from mmssod.evaluation.functional import bootstrap_detection_ece, calibrated_detection_ece

    rng = np.random.default_rng(0)
    small, large = rng.uniform(0.3, 0.8, 100), rng.uniform(0.3, 0.8, 10000)
    # calibrated detectors: D-ECE is above 0 by chance alone, less so with more detections
    floor_small = calibrated_detection_ece(small, num_samples=200).mean()
    floor_large = calibrated_detection_ece(large, num_samples=50).mean()
    assert floor_small > 2 * floor_large > 0
    # an under-confident detector (precision = confidence + 0.15): its D-ECE exceeds its bootstrap spread
    is_tp = rng.uniform(size=small.size) < small + 0.15
    boot = bootstrap_detection_ece(small, is_tp, num_samples=200)
    assert boot.shape == (200,) and 0 < boot.std() < detection_ece(small, is_tp)
    assert np.array_equal(boot, bootstrap_detection_ece(small, is_tp, num_samples=200))  # seeded


def test_regime_options_set_train_subset_image_size_and_schedule(demo_det_root, tmp_path):
    """``--train-images`` / ``--img-size`` / ``--lr-drop-at`` / ``--decoder-layers`` change the derived
    configs of every arm and domain alike, and enter the saved settings (a run with other regime options is
    not reused)."""
    from mmengine.config import Config

    bench = _load_bench()
    argv = ['--data-root', demo_det_root, '--work-dir', str(tmp_path), '--iters', '1500']
    default = bench.parse_args(argv)
    regime = ['--train-images', '100', '--img-size', '128', '--lr-drop-at', '1', '--decoder-layers', '6']
    args = bench.parse_args(argv + regime)
    for corrupted in (False, True):
        cfg = Config.fromfile(bench.derived_config(args, 'paper', 0, corrupted))
        assert cfg.train_dataloader.dataset.indices == 100
        assert cfg.model.decoder.num_layers == 6
        variant = Config.fromfile(bench.derived_config(args, 'modulation', 0, corrupted)).model
        assert variant.decoder.num_layers == 6 and variant.bbox_head.logit_mixing is False
        for pipeline in (cfg.train_dataloader.dataset.pipeline, cfg.test_dataloader.dataset.pipeline):
            assert [t['scale'] for t in pipeline if t['type'] == 'Resize'] == [(128, 128)]
        assert cfg.param_scheduler[0]['milestones'] == [1500]  # never reached: constant learning rate
        base = Config.fromfile(bench.derived_config(default, 'paper', 0, corrupted))
        assert base.train_dataloader.dataset.get('indices') is None
        assert base.param_scheduler[0]['milestones'] == [1275]
        assert base.model.decoder.num_layers == 3
        assert base.test_dataloader.dataset.ann_file == cfg.test_dataloader.dataset.ann_file
    assert set(bench.run_settings(args, 'paper', 0)) - set(bench.run_settings(default, 'paper', 0)) == {
        'train_images',
        'img_size',
        'lr_drop_at',
        'decoder_layers',
    }


@pytest.mark.parametrize('family', ['dino', 'ddetr'])
def test_variant_arms_are_the_paper_head_with_other_settings(demo_det_root, tmp_path, family):
    """``--arms modulation`` / ``mixing``: the paper arm's config and head, with only mixing / only
    modulation switched off; ``paper-modulated-test`` only adds ``modulate_at_test``. The default arms stay
    baseline, paper, released."""
    from mmengine.config import Config

    bench = _load_bench()
    argv = ['--family', family, '--data-root', demo_det_root, '--work-dir', str(tmp_path)]
    assert bench.parse_args(argv).arms == ['baseline', 'paper', 'released']
    args = bench.parse_args(argv + ['--arms', 'baseline', *bench.VARIANTS])
    paper = Config.fromfile(bench.derived_config(args, 'paper', 0)).model.bbox_head
    for arm, key, value in (
        ('modulation', 'logit_mixing', False),
        ('mixing', 'logit_modulation', False),
        ('paper-modulated-test', 'modulate_at_test', True),
    ):
        head = Config.fromfile(bench.derived_config(args, arm, 0, corrupted=True)).model.bbox_head
        assert paper.get(key, not value) is not value and head[key] is value
        assert {k: v for k, v in head.items() if k != key} == {k: v for k, v in paper.items() if k != key}
        name = bench.arm_name(args, arm)
        assert 'Cal-' in name and name != bench.arm_name(args, 'paper')


def test_test_only_arm_tests_the_paper_arms_checkpoint(demo_det_root, tmp_path, monkeypatch):
    """``paper-modulated-test`` trains nothing: it tests the paper run's checkpoint (an error until that run
    is trained) with its own config, and keeps its own outputs."""
    bench = _load_bench()
    calls = _fake_tools(bench, monkeypatch)
    args = bench.parse_args(['--data-root', demo_det_root, '--work-dir', str(tmp_path), '--seeds', '0'])
    with pytest.raises(FileNotFoundError, match='train it first: --arms paper'):
        bench.train_and_test(args, 'paper-modulated-test', 0)
    paper = bench.train_and_test(args, 'paper', 0)
    (tmp_path / 'dino_paper_seed0').mkdir()
    (tmp_path / 'dino_paper_seed0' / 'iter_900.pth').touch()
    calls.clear()
    tested = bench.train_and_test(args, 'paper-modulated-test', 0)
    assert [c[0] for c in calls] == ['tools/test.py', 'tools/test.py']  # no training
    assert all(c[2] == str(tmp_path / 'dino_paper_seed0' / 'iter_900.pth') for c in calls)
    assert all('modulate_at_test' in open(c[1]).read() for c in calls)
    assert tested['train_wall_s'] == paper['train_wall_s']
    assert tested['clean']['predictions'] == str(tmp_path / 'dino_paper-modulated-test_seed0_clean.pkl')


def test_pilot_gate_and_image_bootstrap_interval():
    """The gate needs a positive signed gap whose interval lies above 0; the image bootstrap resamples whole
    images (identical images give a zero-width interval) and covers the pooled value."""
    bench = _load_bench()
    assert bench.pilot_gate(2.0, (0.5, 3.0))
    assert not bench.pilot_gate(2.0, (-0.5, 3.0))  # interval includes 0
    assert not bench.pilot_gate(-2.0, (-3.0, -1.0))  # under-confident
    assert not bench.pilot_gate(float('nan'), (float('nan'), float('nan')))
    same = [dict(confidences=np.array([0.9, 0.8]), is_tp=np.array([True, False]))] * 20
    lo, hi = bench.image_bootstrap(same, lambda c, t: float(c.mean() - t.mean()), num_samples=30)
    assert lo == pytest.approx(0.35) and hi == pytest.approx(0.35)
    rng = np.random.default_rng(0)
    varied = [
        dict(confidences=rng.uniform(0.3, 1, k), is_tp=rng.uniform(size=k) < 0.5)
        for k in rng.integers(0, 4, 80)
    ]
    pooled = np.concatenate([v['confidences'] for v in varied]).mean()
    lo, hi = bench.image_bootstrap(varied, lambda c, t: float(c.mean()), num_samples=100)
    assert lo < pooled < hi and hi - lo < 0.2
    with pytest.raises(ValueError, match='level'):
        bench.image_bootstrap(varied, lambda c, t: 0.0, level=1.0)


def test_pilot_writes_a_json_per_checkpoint_the_curve_and_the_first_passing_checkpoint(
    demo_det_root, tmp_path, monkeypatch
):
    """``--pilot`` with tiny settings (4 iterations, a checkpoint every 2): the training and the tests are
    replaced by files with known calibration: at iteration 2 every ground-truth box at score 0.35
    (under-confident), at iteration 4 every box plus one false positive per image at 0.95 (over-confident)."""
    bench = _load_bench()
    started, tested = [], []

    class FinishedTraining:
        returncode = 0

        def poll(self):
            return 0

        def wait(self):
            return 0

    def fake_start_tool(cmd, log_path, env=None):
        started.append(cmd)
        run = cmd[cmd.index('--work-dir') + 1]
        for it in (2, 4):
            open(osp.join(run, f'iter_{it}.pth'), 'wb').close()
        return FinishedTraining()

    def fake_run_tool(cmd, log_path, env=None):
        tested.append(cmd)
        over = cmd[2].endswith('iter_4.pth')
        _dump_from_ground_truth(
            bench.ann_file(args, 'clean'),
            cmd[cmd.index('--out') + 1],
            lambda i, k, is_fp: 0.95 if over else (0.35 if not is_fp else 0.0),
        )
        return 'coco/bbox_mAP: 0.250\ncoco/bbox_mAP_50: 0.400\n'

    monkeypatch.setattr(bench, 'start_tool', fake_start_tool)
    monkeypatch.setattr(bench, 'run_tool', fake_run_tool)
    argv = ['--pilot', '--data-root', demo_det_root, '--work-dir', str(tmp_path), '--seeds', '0']
    argv += ['--pilot-iters', '4', '--pilot-interval', '2', '--bootstrap-samples', '50']
    args = bench.parse_args(argv)
    classes = [c['name'] for c in json.loads(open(bench.ann_file(args, 'clean')).read())['categories']]
    summary = bench.run_pilot(args, classes, poll_s=0)
    assert len(started) == 1 and [c[2][-10:] for c in tested] == ['iter_2.pth', 'iter_4.pth']
    config = open(started[0][1]).read()
    assert 'indices=100' in config and 'max_iters=4' in config and 'interval=2' in config
    assert '(128, 128)' in config
    run = tmp_path / 'pilot_dino_baseline_seed0'
    under, over = (json.loads((run / f'pilot_iter{it}.json').read_text()) for it in (2, 4))
    assert under['signed_gap'] == pytest.approx(35 - 100) and not under['gate']
    assert under['signed_gap_interval'][1] < 0
    assert over['signed_gap'] > 0 and over['signed_gap_interval'][0] > 0 and over['gate']
    assert over['dece_interval'][0] <= over['dece'] <= over['dece_interval'][1]
    assert over['num_images'] == 100 and over['epochs'] == pytest.approx(4 * 4 / 100)
    assert summary['first_passing_iteration'] == 4 and [p['iteration'] for p in summary['points']] == [2, 4]
    saved = json.loads((tmp_path / 'pilot_dino_baseline_seed0.json').read_text())
    assert saved['first_passing_iteration'] == 4
    assert open(summary['curve'], 'rb').read(8) == b'\x89PNG\r\n\x1a\n'
    # a finished pilot is reused: no training, no test
    (run / 'iter_4.pth').touch()
    assert bench.run_pilot(bench.parse_args(argv), classes, poll_s=0)['points'] == summary['points']
    assert len(started) == 1 and len(tested) == 2
