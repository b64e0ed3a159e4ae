"""Same seed, same numbers: two bench trainings of one seed under ``--deterministic`` give bit-identical
losses and metrics, another seed does not; what the flag sets and what a saved run records; bench sets built
by several processes at once."""

import dataclasses
import importlib.util
import json
import multiprocessing
import os
import os.path as osp
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import REPO_ROOT
from tools.benchmarks.composited import CompositedDataError, DetectionConfig, ensure_detection
from tools.benchmarks.composited.files import read_meta
from tools.benchmarks.determinism import LIBRARIES, first_difference, logged_numbers, run_env, run_record

spec = importlib.util.spec_from_file_location(
    'acrst_bench', osp.join(REPO_ROOT, 'tools/benchmarks/acrst_bench.py')
)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

#: A tiny detection set (seconds to build).
TINY = DetectionConfig(
    num_train=6,
    num_val=3,
    height=96,
    width=96,
    objects_per_image=(1, 2),
    size_range=(24, 40),
    percents=(50.0,),
    folds=(1,),
    corrupt=False,
)


def _config(args, setup: dict, work_dir: str, seed: int) -> str:
    """The supervised arm of the ACRST bench, derived as the bench derives it, dumped into ``work_dir``."""
    cfg = bench.derive_config(args, 'supervised', work_dir, seed, setup)
    cfg.default_hooks.checkpoint = None  # the numbers are in the log; no checkpoint to write
    config_file = osp.join(work_dir, 'supervised.py')
    cfg.dump(config_file)
    return config_file


def _train(args, config_file: str, work_dir: str) -> list:
    """Train as the bench does (its subprocess and environment); the numbers the training logged."""
    bench.run_train(args, config_file, work_dir, config_file)
    return logged_numbers(work_dir)


@pytest.fixture(scope='module')
def runs(demo_det_root, tmp_path_factory):
    """The supervised arm on the demo set, 8 iterations, trained twice with seed 0 and once with seed 1 (the
    three side by side: the machine's load is no part of a run)."""
    from mmengine.config import Config

    args = bench.parse_args(['--demo', '--iters', '8', '--val-images', '8', '--threads', '1'])
    labeled, unlabeled = Config.fromfile(bench.DEMO_CONFIG).train_dataloader.dataset.datasets
    setup = {
        'config': bench.DEMO_CONFIG,
        'root': demo_det_root,
        'splits': (labeled.ann_file, unlabeled.ann_file),
    }
    seeds = {'first': 0, 'again': 0, 'seed1': 1}
    dirs = {name: str(tmp_path_factory.mktemp(name)) for name in seeds}
    configs = {name: _config(args, setup, dirs[name], seed) for name, seed in seeds.items()}
    with ThreadPoolExecutor(len(seeds)) as pool:  # threads only wait for the training processes
        trained = {name: pool.submit(_train, args, configs[name], dirs[name]) for name in seeds}
        return {name: job.result() for name, job in trained.items()}


def test_two_runs_of_one_seed_give_bit_identical_losses_and_metrics(runs):
    losses = [r for r in runs['first'] if 'loss' in r]
    assert len(losses) == 8 and sum('coco/bbox_mAP' in r for r in runs['first']) == 1
    assert losses[0]['loss'] != losses[-1]['loss']  # it trained
    assert first_difference(runs['first'], runs['again']) is None  # every number, every step, bit for bit


def test_another_seed_gives_other_numbers(runs):
    # the comparison above can fail: the seed reaches the sampler, the augmentation and the initialisation
    diff = first_difference(runs['first'], runs['seed1'])
    assert diff is not None and diff['step'] == 1 and 'loss' in diff['keys']


def test_first_difference_names_the_step_and_the_numbers():
    a = [{'step': 1, 'loss': 1.0}, {'step': 2, 'loss': 0.5, 'lr': 0.1}]
    assert first_difference(a, a) is None
    diff = first_difference(a, [a[0], {'step': 2, 'loss': 0.5000001, 'lr': 0.1}])
    assert (diff['step'], diff['keys'], diff['b']) == (2, ['loss'], {'loss': 0.5000001})
    assert first_difference(a, a[:1])['keys'] == ['records']


def test_the_flag_sets_threads_hash_seed_and_deterministic_ops(tmp_path, demo_det_root):
    on = bench.parse_args(['--demo', '--threads', '2'])
    off = bench.parse_args(['--demo', '--no-deterministic'])
    assert on.deterministic and not off.deterministic
    env = run_env(on, {'OMP_NUM_THREADS': '7'})
    assert env['OMP_NUM_THREADS'] == env['MKL_NUM_THREADS'] == env['NUMBA_NUM_THREADS'] == '2'
    assert env['PYTHONHASHSEED'] == '0'
    assert run_env(off, {'OMP_NUM_THREADS': '7'}) == {
        'OMP_NUM_THREADS': '7'
    }  # without the flag: as inherited
    setup = {'config': bench.DEMO_CONFIG, 'root': None}
    cfg_on = bench.derive_config(on, 'supervised', str(tmp_path), 0, setup)
    cfg_off = bench.derive_config(off, 'supervised', str(tmp_path), 0, setup)
    assert cfg_on.randomness == {'seed': 0, 'deterministic': True}
    assert cfg_off.randomness == {'seed': 0, 'deterministic': False}
    # a run under the flag is keyed by its thread count; one without it keeps the settings saved before it
    on_settings = bench.run_settings(on, 'supervised', 0, cfg_on)
    assert on_settings['deterministic'] is True and on_settings['threads'] == 2
    assert 'threads' not in bench.run_settings(off, 'supervised', 0, cfg_off)


def test_a_saved_run_records_flag_threads_and_versions():
    import numpy
    import torch

    record = run_record(bench.parse_args(['--threads', '3']))
    assert record['deterministic'] is True and record['threads'] == 3
    assert set(LIBRARIES) <= set(record['versions'])
    assert record['versions']['numpy'] == numpy.__version__
    assert torch.__version__.startswith(record['versions']['torch'])


def test_bench_sets_built_by_processes_started_together_are_whole(tmp_path):
    root = str(tmp_path / 'bench_set')
    ctx = multiprocessing.get_context('spawn')
    procs = [ctx.Process(target=ensure_detection, args=(root, 0, TINY)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    meta = read_meta(root)
    assert meta['complete'] is True and meta['num_images'] == {'train': 6, 'val': 3}
    for split in ('train', 'val'):
        with open(osp.join(root, 'annotations', f'instances_{split}.json')) as f:
            images = json.load(f)['images']
        assert sorted(osp.basename(img['file_name']) for img in images) == sorted(
            os.listdir(osp.join(root, split))
        )
    assert sorted(os.listdir(tmp_path)) == ['.bench_set.lock', 'bench_set']  # no half-built folder left
    with pytest.raises(CompositedDataError, match='bench_set.*params'):  # another build is not overwritten
        ensure_detection(root, 0, dataclasses.replace(TINY, num_val=4))
