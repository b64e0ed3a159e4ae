"""Run every shipped config as a user would, on the miniature datasets, cheaply enough for CPU.

For each config under ``configs/`` (``_base_`` folders excluded) the matrix runs, as separate processes:

1. ``tools/train.py <config>``: 2 training iterations (iteration-based loops) or one epoch of 2 iterations
   (epoch-based loops) through the Runner with the config's hooks, a validation pass with its evaluators and a
   checkpoint;
2. ``tools/train.py <config> --resume``: resumes from that checkpoint and trains one more iteration / epoch;
3. ``tools/test.py <config> <last checkpoint>``.

A config whose inputs are the outputs of another config (an ACRST detector reads the SSMLL scores file, a DDeP
fine-tuning config loads the converted pretraining checkpoint) first gets them from the producing config's run
and the tool a user runs (``tools/acrst/ssmll_scores.py``, ``tools/model_converters/ddep_to_seg.py``).

Configs are run from a folder holding ``data/`` (the miniature datasets) as the working directory, so their
relative data roots, annotation files and ``work_dirs/`` resolve as in a user's checkout. What is changed is
only what has to shrink for CPU, given to the tools as ``--cfg-options`` (:func:`shrink_options`):
image scales in the pipelines (and the matching pad size of a data preprocessor), batch sizes, data-loader
workers, schedule lengths (iterations / epochs / epoch length / validation and checkpoint intervals /
logging interval), ImageNet-pretrained ``init_cfg`` downloads (no network here), and for two-stage DETRs
(DINO) the number of queries selected from the encoder tokens, which must not exceed the tokens the shrunk
image has. Models, losses, hooks, samplers and evaluators otherwise stay as the user gets them.

Each run is a fresh fork of a server process that imported the OpenMMLab stack once (``forkserver`` with
preloading), so a run costs its own work and not the ~10 s of imports; two run at a time.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import glob
import math
import multiprocessing
import os
import os.path as osp
import sys
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Tuple

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_ROOT = osp.join(REPO_ROOT, 'configs')

#: The longest image side the pipelines are shrunk to (a power-of-two factor: see ``scale_factor``).
TARGET_SIZE = 96
#: A two-stage DETR (DINO) selects ``num_queries`` encoder tokens: on the shrunk images that many tokens
#: do not exist (900 need ~250 x 330 px, ~30 s per iteration on a shared CPU), so the query count shrinks
#: with the image, to no fewer than this.
MIN_QUERIES = 50
#: Keys of a transform / data preprocessor that hold image sizes in pixels.
SIZE_KEYS = ('scale', 'scales', 'img_scale', 'crop_size', 'size')

#: Configs that cannot run on a CPU at all, with why. They are still loaded and their model and datasets
#: built. Empty: every shipped config runs.
CPU_BUILD_ONLY: Dict[str, str] = {}

#: What tools/test.py says for a config without a test loop (a pretraining config).
NOTHING_TO_TEST = 'it has nothing to test'
#: Outputs of another config that a config reads, where the path does not name the producing config:
#: path -> the producing config (relative to configs/).
EXTRA_PRODUCERS = {
    'work_dirs/acrst_demo/ssmll/unlabeled_scores.json': (
        'acrst/ssmll/ssmll_efficientnet-lite0_semi-0.25-composited-demo.py'
    ),
}


def discover_configs() -> List[str]:
    """Every runnable config under ``configs/`` (relative paths, sorted); ``_base_`` folders are bases."""
    paths = glob.glob(osp.join(CONFIG_ROOT, '**', '*.py'), recursive=True)
    rel = [osp.relpath(p, CONFIG_ROOT) for p in paths]
    return sorted(p for p in rel if '_base_' not in p.split(os.sep))


def config_name(rel_path: str) -> str:
    return osp.splitext(osp.basename(rel_path))[0]


# ---------------------------------------------------------------------------------------------- shrinking
def _walk(node: Any, path: Tuple = ()) -> Iterator[Tuple[Tuple, Any]]:
    """Yield ``(path, value)`` for every node of a nested dict / list (paths of keys and list indices)."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, (*path, key))
    elif isinstance(node, (list, tuple)) and not _is_size(node):
        for i, value in enumerate(node):
            yield from _walk(value, (*path, i))


def _is_size(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) > 0
        and all(isinstance(v, (int, float)) for v in value)
    )


def _dotted(path: Tuple) -> str:
    return '.'.join(str(p) for p in path)


def _size_entries(cfg: dict) -> List[Tuple[Tuple, Any]]:
    """``(path, value)`` of every image size in a pipeline transform or a data preprocessor."""
    out = []
    for path, node in _walk(cfg):
        if not (isinstance(node, dict) and 'type' in node):
            continue
        where = [str(p) for p in path if isinstance(p, str)]
        in_pipeline = any('pipeline' in p or p == 'transforms' for p in where)
        if not (in_pipeline or (where and where[-1] == 'data_preprocessor')):
            continue
        for key in SIZE_KEYS:
            value = node.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) or _is_size(value):
                out.append(((*path, key), value))
            elif isinstance(value, (list, tuple)) and value and all(_is_size(v) for v in value):
                out.append(((*path, key), value))
    return out


def _numbers(value) -> List[float]:
    if isinstance(value, (int, float)):
        return [value]
    return [x for v in value for x in _numbers(v)]


def scale_factor(entries) -> int:
    """The power of two that brings the largest image size to at most ``TARGET_SIZE`` (at least 1).

    Sizes above 2048 (the widest real images, Cityscapes) are "no limit" sentinels (DETR's 4200) and do not
    count.
    """
    largest = max((n for _, v in entries for n in _numbers(v) if n <= 2048), default=0)
    return 2 ** max(0, math.ceil(math.log2(largest / TARGET_SIZE))) if largest else 1


def queries_from_memory(model: dict) -> int:
    """How many encoder tokens a two-stage DETR (DINO, two-stage Deformable-DETR) selects as queries (else 0).

    ``topk(num_queries)`` over the encoder memory needs at least that many tokens, so these models get larger
    images than ``TARGET_SIZE``.
    """
    detector = model.get('detector', model)
    if 'DINO' in str(detector.get('type', '')) or detector.get('as_two_stage'):
        return int(detector.get('num_queries', 0))
    return 0


def memory_tokens(entries, factor: int) -> float:
    """Encoder tokens (strides 8, 16, 32, 64) of the smallest image the shrunk pipelines can produce."""
    shorts = [
        min(v)
        for path, value in entries
        if path[-1] in ('scale', 'scales')  # a crop is followed by a resize
        for v in _sizes(value)
        if max(v) <= 2048 and len(v) == 2
    ]
    if not shorts:
        return float('inf')
    short = min(shorts) / factor
    return short * short / 64 * (1 + 1 / 4 + 1 / 16 + 1 / 64)  # square images: the fewest tokens


def _sizes(value):
    if isinstance(value, (int, float)):
        return []
    if _is_size(value):
        return [value]
    return [s for v in value for s in _sizes(v)]


def _shrink(value, factor: int):
    """Divide sizes by ``factor``; sizes that were multiples of 32 stay multiples of 32 (stride-32 nets)."""
    if isinstance(value, (list, tuple)):
        return type(value)(_shrink(v, factor) for v in value)
    if isinstance(value, float) and value <= 4:  # a ratio, not pixels
        return value
    if int(value) % 32 == 0:
        return max(32, int(round(value / factor / 32)) * 32)
    return max(8, int(round(value / factor)))


def shrink_options(cfg: dict, stage: str = 'train') -> Dict[str, Any]:
    """The ``--cfg-options`` that make a config cheap on CPU (see the module docstring for what changes).

    Args:
        cfg (dict): The loaded config (``Config.to_dict()``).
        stage (str): ``'train'`` (2 iterations / 1 epoch), ``'resume'`` (one more) or ``'test'``.

    Returns:
        dict[str, Any]: dotted key -> value.
    """
    opts: Dict[str, Any] = {}
    entries = _size_entries(cfg)
    factor = scale_factor(entries)
    queries = queries_from_memory(cfg.get('model') or {})
    while queries and factor > 1 and memory_tokens(entries, factor) < 1.2 * MIN_QUERIES:
        factor //= 2
    if queries and memory_tokens(entries, factor) < 1.2 * queries:
        # topk(num_queries) over the encoder tokens of the shrunk images: fewer queries, as fewer tokens
        detector = 'model.detector' if 'detector' in cfg['model'] else 'model'
        opts[f'{detector}.num_queries'] = max(MIN_QUERIES, int(memory_tokens(entries, factor) / 1.2))
    for path, value in entries:
        opts[_dotted(path)] = _shrink(value, factor)

    train_cfg = cfg.get('train_cfg') or {}
    by_epoch = 'max_epochs' in train_cfg or 'Epoch' in str(train_cfg.get('type', ''))
    for key, loader in cfg.items():
        if not (key.endswith('_dataloader') and isinstance(loader, dict)):
            continue
        opts[f'{key}.num_workers'] = 0
        opts[f'{key}.persistent_workers'] = False
        if key == 'val_dataloader' or key == 'test_dataloader':
            continue
        sampler = loader.get('sampler') or {}
        batch = 2  # at least 2 per batch-norm batch: 2 identities x K (PK sampler), 2 per source (semi)
        if 'num_instances' in sampler:
            batch = 2 * sampler['num_instances']
        elif 'source_ratio' in sampler:
            batch = 2 * len(sampler['source_ratio'])
        opts[f'{key}.batch_size'] = batch
        if 'batch_size' in sampler:
            opts[f'{key}.sampler.batch_size'] = batch
        if by_epoch and key == 'train_dataloader':
            if 'iters_per_epoch' in sampler:
                opts[f'{key}.sampler.iters_per_epoch'] = 2
            else:
                for path in _leaf_datasets(loader['dataset'], (key, 'dataset')):
                    opts[_dotted((*path, 'indices'))] = 2 * batch
    for i, hook in enumerate(cfg.get('custom_hooks') or []):
        if isinstance(hook, dict) and 'num_workers' in hook:
            opts[f'custom_hooks.{i}.num_workers'] = 0

    extra = 1 if stage == 'resume' else 0
    if by_epoch:
        opts['train_cfg.max_epochs'] = 1 + extra
        opts['train_cfg.val_interval'] = 1
        opts['default_hooks.checkpoint.interval'] = 1
    else:
        opts['train_cfg.max_iters'] = 2 + extra
        opts['train_cfg.val_interval'] = 2
        opts['default_hooks.checkpoint.interval'] = 2
    if extra and cfg.get('val_dataloader'):
        opts['train_cfg.val_begin'] = 3 + extra  # validated once already; the resumed run trains on
    opts['default_hooks.logger.interval'] = 1

    # ImageNet-pretrained weights are downloads: no network here
    for path, node in _walk(cfg.get('model') or {}, ('model',)):
        if isinstance(node, dict) and _is_download(node.get('init_cfg')):
            opts[_dotted((*path, 'init_cfg'))] = None
    return opts


def _is_download(init_cfg) -> bool:
    if not isinstance(init_cfg, dict) or init_cfg.get('type') != 'Pretrained':
        return False
    checkpoint = str(init_cfg.get('checkpoint', ''))
    return '://' in checkpoint


def _leaf_datasets(ds: dict, path: Tuple) -> Iterator[Tuple]:
    if isinstance(ds.get('datasets'), (list, tuple)):
        for i, child in enumerate(ds['datasets']):
            yield from _leaf_datasets(child, (*path, 'datasets', i))
    elif isinstance(ds.get('dataset'), dict):
        yield from _leaf_datasets(ds['dataset'], (*path, 'dataset'))
    else:
        yield path


def format_option(value: Any) -> str:
    """A value as ``--cfg-options`` text that mmengine's ``DictAction`` parses back to the same value."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (int, float, str)):
        return str(value)
    if isinstance(value, tuple):
        return '(' + ','.join(format_option(v) for v in value) + (',)' if len(value) == 1 else ')')
    if isinstance(value, list):
        return '[' + ','.join(format_option(v) for v in value) + ']'
    raise TypeError(f'cannot pass {value!r} through --cfg-options')


def cfg_option_args(opts: Dict[str, Any]) -> List[str]:
    return ['--cfg-options', *(f'{k}={format_option(v)}' for k, v in opts.items())] if opts else []


# ------------------------------------------------------------------------------------------- the jobs
@dataclass
class Job:
    """One process of the matrix: a stage of one config."""

    config: str  # relative to configs/
    stage: str  # 'prepare', 'train', 'resume', 'test'
    argv: List[str] = field(default_factory=list)  # built when the job starts
    needs: List[Tuple[str, str]] = field(default_factory=list)  # (config, stage)

    @property
    def key(self) -> Tuple[str, str]:
        return self.config, self.stage


@dataclass
class Result:
    ok: bool
    seconds: float
    log: str
    error: str = ''


def load_cfg_dict(config: str) -> dict:
    from mmengine.config import Config

    return Config.fromfile(osp.join(CONFIG_ROOT, config)).to_dict()


def producer_of(path: Optional[str], configs: List[str]) -> Optional[str]:
    """The config whose run writes ``path`` (``work_dirs/<config name>/...``), if any."""
    if not isinstance(path, str) or not path.startswith('work_dirs/'):
        return None
    if path in EXTRA_PRODUCERS:
        return EXTRA_PRODUCERS[path]
    name = path.split('/')[1]
    matches = [c for c in configs if config_name(c) == name]
    return matches[0] if matches else None


def inputs_from_other_configs(cfg: dict, configs: List[str]) -> List[Tuple[str, str, str]]:
    """``(kind, path, producer)`` for each file of this config that another config's run produces."""
    out = []
    scores = ((cfg.get('model') or {}).get('semi_train_cfg') or {}).get('ml_scores_file')
    if producer_of(scores, configs):
        out.append(('ssmll_scores', scores, producer_of(scores, configs)))
    load_from = cfg.get('load_from')
    if producer_of(load_from, configs):
        out.append(('ddep_to_seg', load_from, producer_of(load_from, configs)))
    return out


def plan(selected: List[str], configs: List[str]) -> Tuple[List[Job], Dict[str, dict]]:
    """Jobs for the selected configs and the configs they need outputs of."""
    todo, cfgs, jobs = list(selected), {}, []
    while todo:
        config = todo.pop(0)
        if config in cfgs:
            continue
        cfgs[config] = cfg = load_cfg_dict(config)
        needs = inputs_from_other_configs(cfg, configs)
        todo += [producer for _, _, producer in needs]
        if config in CPU_BUILD_ONLY:
            jobs.append(Job(config, 'build'))
            continue
        if needs:
            jobs.append(Job(config, 'prepare', needs=[(p, 'resume') for _, _, p in needs]))
        jobs.append(Job(config, 'train', needs=[(config, 'prepare')] if needs else []))
        jobs.append(Job(config, 'resume', needs=[(config, 'train')]))
        jobs.append(Job(config, 'test', needs=[(config, 'resume')]))
    return jobs, cfgs


def has_test_loop(cfg: dict) -> bool:
    """Whether a config can be tested (pretraining configs define no test loop)."""
    return all(cfg.get(key) for key in ('test_dataloader', 'test_cfg', 'test_evaluator'))


def last_checkpoint(run_dir: str, config: str) -> str:
    path = osp.join(run_dir, 'work_dirs', config_name(config), 'last_checkpoint')
    with open(path) as f:
        ckpt = f.read().strip()
    return ckpt if osp.isabs(ckpt) else osp.join(run_dir, ckpt)


def job_commands(job: Job, cfg: dict, run_dir: str, configs: List[str]) -> List[List[str]]:
    """The command lines (script + arguments) of a job."""
    config = osp.join(CONFIG_ROOT, job.config)
    if job.stage == 'train':
        return [['tools/train.py', config, *cfg_option_args(shrink_options(cfg, 'train'))]]
    if job.stage == 'resume':
        return [['tools/train.py', config, '--resume', *cfg_option_args(shrink_options(cfg, 'resume'))]]
    if job.stage == 'test':
        ckpt = last_checkpoint(run_dir, job.config)
        if not has_test_loop(cfg):  # tools/test.py must refuse it clearly
            return [['<expect-exit>', NOTHING_TO_TEST, 'tools/test.py', config, ckpt]]
        return [['tools/test.py', config, ckpt, *cfg_option_args(shrink_options(cfg, 'test'))]]
    if job.stage == 'prepare':
        cmds = []
        for kind, path, producer in inputs_from_other_configs(cfg, configs):
            ckpt = last_checkpoint(run_dir, producer)
            producer_cfg = osp.join(CONFIG_ROOT, producer)
            if kind == 'ssmll_scores':
                opts = cfg_option_args(shrink_options(load_cfg_dict(producer), 'test'))
                cmds.append(
                    [
                        'tools/acrst/ssmll_scores.py',
                        producer_cfg,
                        ckpt,
                        '--out',
                        path,
                        '--num-workers',
                        '0',
                        *opts,
                    ]
                )
            else:
                cmds.append(['tools/model_converters/ddep_to_seg.py', ckpt, path])
        return cmds
    if job.stage == 'build':
        return [['<build>', config]]
    raise ValueError(job.stage)


# ------------------------------------------------------------------------------------ the worker side
def preload() -> None:
    """Import the stack once in the fork server (each job is then a cheap fork of it).

    Costs that are not the run itself are paid once here instead of in every job (measured on the demo
    config: ~70% of a 2-iteration run): the environment report (``collect_env`` starts compilers), the
    ``model-index.yml`` / metafile parsing behind every ``mmdet::<method>/<config>.py`` base, SpCL's numba
    compilation (~30 s on a shared CPU), the garbage collector's walks over the imported stack, and yapf,
    which formats the config text four times per run (log, dump, visualizer, message hub). Configs are
    logged and dumped unformatted (still valid Python);
    everything else is unchanged.
    """
    import functools

    import torch

    torch.set_num_threads(1)
    import mmdet.utils
    import mmengine.config.config
    import mmengine.config.utils
    import mmengine.runner.runner
    import mmpretrain.utils
    import mmseg.utils

    import mmssod  # noqa: F401

    for lib in (mmdet.utils, mmpretrain.utils, mmseg.utils):
        lib.register_all_modules(init_default_scope=False)

    env = mmengine.runner.runner.collect_env()
    mmengine.runner.runner.collect_env = lambda: dict(env)
    load = functools.lru_cache(maxsize=None)(mmengine.config.utils.load)
    mmengine.config.utils.load = lambda path, *args, **kwargs: copy.deepcopy(load(path, *args, **kwargs))
    mmengine.config.config.FormatCode = lambda text, **kwargs: (text, False)
    from mmengine.utils import get_installed_path

    for package in ('mmdet', 'mmpretrain', 'mmseg'):  # parse each package's metafiles once, into the cache
        with contextlib.suppress(ValueError):
            mmengine.config.utils._get_cfg_metainfo(get_installed_path(package), '')
    with contextlib.suppress(Exception):  # SpCL's numba loops: compiled once here, not in every job
        from mmssod.models.reid.hybrid_memory import momentum_update
        from mmssod.models.reid.jaccard import jaccard_distance

        feats = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
        jaccard_distance(feats, 4, 2)
        momentum_update(feats.clone(), torch.tensor([0, 0, 1]), feats[:3].clone(), 0.2)
    # mmengine datasets call gc.collect() when they serialise their data list (~1.5 s per dataset with
    # the whole stack loaded); objects that exist before the fork are never garbage: out of gc's way
    gc.collect()
    gc.freeze()


def run_job(commands: List[List[str]], run_dir: str, log: str) -> Result:
    """Run the commands of one job in this (forked) process, output to ``log``; never raises."""
    import runpy

    start = time.time()
    os.makedirs(osp.dirname(log), exist_ok=True)
    error = ''
    with open(log, 'a') as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        os.chdir(run_dir)
        for argv in commands:
            print(f'$ python {" ".join(argv)}', flush=True)
            expect = None
            if argv[0] == '<expect-exit>':
                expect, argv = argv[1], argv[2:]
            sys.argv = list(argv)
            try:
                if argv[0] == '<build>':
                    build_only(argv[1])
                else:
                    runpy.run_path(osp.join(REPO_ROOT, argv[0]), run_name='__main__')
                if expect:
                    raise AssertionError(f'{argv[0]} did not stop with {expect!r}')
            except BaseException as err:  # noqa: B036  (SystemExit from argparse too)
                if isinstance(err, SystemExit) and (not err.code or (expect and expect in str(err.code))):
                    print(f'exited as expected: {err.code}', flush=True)
                    continue
                error = traceback.format_exc()
                print(error, flush=True)
                break
        sys.stdout.flush()
        sys.stderr.flush()
    return Result(ok=not error, seconds=time.time() - start, log=log, error=error)


def build_only(config: str) -> None:
    """Load a config and build its model and train / val / test datasets (for ``CPU_BUILD_ONLY``)."""
    from mmengine.config import Config
    from mmengine.registry import DATASETS, MODELS, init_default_scope

    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    MODELS.build(cfg.model)
    for split in ('train', 'val', 'test'):
        DATASETS.build(cfg[f'{split}_dataloader'].dataset)


# ---------------------------------------------------------------------------------------- scheduling
def run_matrix(selected: List[str], run_dir: str, workers: int = 2) -> Dict[Tuple[str, str], Result]:
    """Run the jobs of ``selected`` configs (and their producers) with ``workers`` processes at a time.

    Returns:
        dict[(config, stage), Result]: every job; a job whose prerequisite failed fails with that reason.
    """
    configs = discover_configs()
    jobs, cfgs = plan(selected, configs)
    results: Dict[Tuple[str, str], Result] = {}
    pending = list(jobs)
    ctx = multiprocessing.get_context('forkserver')
    ctx.set_forkserver_preload([__name__.rsplit('.', 1)[0] + '._forkserver_preload'])
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    os.environ.setdefault('MKL_NUM_THREADS', '1')
    running = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, max_tasks_per_child=1) as pool:
        while pending or running:
            for job in list(pending):
                if len(running) >= workers:
                    break
                failed = [n for n in job.needs if n in results and not results[n].ok]
                if failed:
                    pending.remove(job)
                    results[job.key] = Result(False, 0.0, '', f'not run: {failed[0]} failed')
                    continue
                if any(n not in results for n in job.needs if any(j.key == n for j in jobs)):
                    continue
                pending.remove(job)
                log = osp.join(run_dir, 'logs', config_name(job.config), f'{job.stage}.log')
                try:  # the config as it is now (configs may be edited while the matrix runs)
                    commands = job_commands(job, load_cfg_dict(job.config), run_dir, configs)
                except Exception:
                    results[job.key] = Result(False, 0.0, log, traceback.format_exc())
                    continue
                running[pool.submit(run_job, commands, run_dir, log)] = job
            if not running:
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                job = running.pop(future)
                try:
                    results[job.key] = future.result()
                except Exception:  # the worker died (a crash in C code, out of memory)
                    results[job.key] = Result(False, 0.0, '', traceback.format_exc())
            remove_finished_checkpoints(jobs, results, run_dir)
    return results


def remove_finished_checkpoints(jobs: List[Job], results: Dict, run_dir: str) -> None:
    """Delete the checkpoints of configs whose jobs, and the jobs that read their checkpoints, are done
    (a full matrix otherwise leaves ~60 GB of R50 checkpoints with optimizer states)."""
    for config in {job.config for job in jobs}:
        # a consumer's prepare job writes its converted checkpoint into this work dir: keep it until the
        # consumer's own train / resume / test jobs are done too
        consumers = {j.config for j in jobs if (config, 'resume') in j.needs}
        readers = [j for j in jobs if j.config == config or j.config in consumers]
        if all(j.key in results for j in readers):
            for ckpt in glob.glob(osp.join(run_dir, 'work_dirs', config_name(config), '*.pth')):
                os.remove(ckpt)


def read_log(result: Result, tail: int = 6000) -> str:
    with contextlib.suppress(OSError):
        with open(result.log) as f:
            return f.read()[-tail:]
    return ''
