"""Find and load the configs that installed OpenMMLab packages ship (the ``mmdet::`` namespace).

``Config.fromfile('mmdet::faster_rcnn/x.py')`` does not work (the prefix is only understood inside
``_base_``), and mmdet's own test helpers look for a source checkout. These helpers read the installed
``<package>/.mim/configs`` folder instead, and the project's own ``configs/`` for ``mmssod::``.
"""

from __future__ import annotations

import copy
import os.path as osp

from mmengine.config import Config, ConfigDict
from mmengine.utils import get_installed_path

PROJECT_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def config_root(package: str = 'mmdet') -> str:
    """Folder that holds the configs a package ships.

    Args:
        package (str): 'mmdet', 'mmpretrain', 'mmseg', ... or 'mmssod'. Defaults to 'mmdet'.

    Returns:
        str: the configs folder (``<site-packages>/<package>/.mim/configs``; for mmssod the installed
        ``.mim/configs`` or, in a source checkout / editable install, the repository's ``configs/``).
    """
    if package == 'mmssod':  # a source checkout / editable install first, else the installed copy
        source = osp.join(PROJECT_ROOT, 'configs')
        if osp.isfile(osp.join(PROJECT_ROOT, 'setup.py')) and osp.isdir(source):
            return source
        return osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), '.mim', 'configs')
    try:
        root = osp.join(get_installed_path(package), '.mim', 'configs')
    except Exception as err:  # get_installed_path raises different errors for a missing package
        raise FileNotFoundError(
            f'package {package!r} is not installed, so its configs cannot be read'
        ) from err
    if not osp.isdir(root):
        raise FileNotFoundError(f'{package} is installed but ships no configs folder at {root}')
    return root


def config_path(name: str, package: str = 'mmdet') -> str:
    """Absolute path of a shipped config.

    Args:
        name (str): config path relative to the package's configs folder, optionally with a
            ``package::`` prefix, e.g. ``'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'``.
        package (str): package used when ``name`` has no prefix. Defaults to 'mmdet'.

    Returns:
        str: the config file path.
    """
    if '::' in name:
        package, name = name.split('::', 1)
    path = osp.join(config_root(package), name)
    if not osp.isfile(path):
        raise FileNotFoundError(f'config {name!r} not found in {package} (looked at {path})')
    return path


def get_config(name: str, package: str = 'mmdet') -> Config:
    """Load a shipped config by name, e.g. ``get_config('mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py')``."""
    return Config.fromfile(config_path(name, package))


def get_model_cfg(name: str, package: str = 'mmdet') -> ConfigDict:
    """A deep copy of the ``model`` field of a shipped config (for building real models in tests)."""
    return copy.deepcopy(get_config(name, package).model)


def _iter_datasets(dataset_cfg, key):
    """Yield ``(config key, dataset dict)`` for a dataset config and every dataset it wraps."""
    if not isinstance(dataset_cfg, dict):
        return
    yield key, dataset_cfg
    if isinstance(dataset_cfg.get('dataset'), dict):
        yield from _iter_datasets(dataset_cfg['dataset'], f'{key}.dataset')
    for i, child in enumerate(dataset_cfg.get('datasets') or []):
        yield from _iter_datasets(child, f'{key}.datasets[{i}]')
    for domain in ('source', 'target'):  # two-domain re-ID sets
        if isinstance(dataset_cfg.get(domain), dict):
            yield from _iter_datasets(dataset_cfg[domain], f'{key}.{domain}')


def _iter_ann_file_owners(cfg, splits):
    """Yield ``(config key, dict)`` for every dataset and evaluator of the given splits."""
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if loader and isinstance(loader.get('dataset'), dict):
            yield from _iter_datasets(loader['dataset'], f'{split}_dataloader.dataset')
        evaluator = cfg.get(f'{split}_evaluator')
        if isinstance(evaluator, dict):
            yield f'{split}_evaluator', evaluator
        elif isinstance(evaluator, (list, tuple)):
            for i, metric in enumerate(evaluator):
                if isinstance(metric, dict):
                    yield f'{split}_evaluator[{i}]', metric


def check_data_paths(cfg: Config, splits=('train', 'val', 'test')) -> None:
    """Fail early, naming the config key, when an annotation file of a dataloader is missing or broken.

    Only cheap checks are done (existence, and that a ``.json`` file starts with ``{``/``[`` and ends with
    ``}``/``]``, which catches truncated downloads) so that big annotation files are not read twice. Each
    dataset is also checked against the disk by :func:`mmssod.datasets.layout_checks.check_dataset_layout`
    (``data_root`` and image folders exist, the split is not empty).

    Args:
        cfg (Config): a full run config.
        splits (Sequence[str]): which ``<split>_dataloader`` / ``<split>_evaluator`` entries to check.

    Raises:
        FileNotFoundError: an ``ann_file`` does not exist.
        ValueError: a ``.json`` ``ann_file`` is visibly not a complete JSON document.
        DatasetLayoutError: a data folder is missing or a split is empty (a ``FileNotFoundError``).
    """
    from mmssod.datasets.layout_checks import check_dataset_layout

    for key, ds in _iter_ann_file_owners(cfg, splits):
        if '_dataloader' in key:  # a wrong data_root first: it explains a missing ann_file too
            check_dataset_layout(key, ds)
        _check_ann_file(key, ds)


def _check_ann_file(key: str, ds: dict) -> None:
    ann_file = ds.get('ann_file')
    if ann_file and isinstance(ann_file, str):
        data_root = ds.get('data_root') or ''
        path = ann_file if osp.isabs(ann_file) or not data_root else osp.join(data_root, ann_file)
        hint = (
            f'Fix `{key}.ann_file` / `{key}.data_root` in the config (or with --cfg-options '
            f'{key}.ann_file=...), or prepare the dataset as described in the config folder README.'
        )
        if not osp.isfile(path):
            raise FileNotFoundError(f'annotation file {path!r} ({key}.ann_file) does not exist. {hint}')
        if path.endswith('.json') and not _looks_like_complete_json(path):
            raise ValueError(
                f'annotation file {path!r} ({key}.ann_file) is not a complete JSON document '
                f'(empty or truncated?). Re-create or re-download it. {hint}'
            )


def _looks_like_complete_json(path: str) -> bool:
    with open(path, 'rb') as f:
        head = f.read(64).lstrip()
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - 64))
        tail = f.read().rstrip()
    return bool(head) and head[:1] in (b'{', b'[') and tail[-1:] in (b'}', b']')


def load_run_config(
    config: str, cfg_options: dict | None = None, work_dir: str | None = None, launcher: str = 'none'
) -> Config:
    """Load a run config the way ``tools/train.py`` / ``tools/test.py`` do.

    Args:
        config (str): config file path.
        cfg_options (dict, optional): ``--cfg-options`` overrides.
        work_dir (str, optional): ``--work-dir``; defaults to ``cfg.work_dir`` or ``./work_dirs/<name>``.
        launcher (str): job launcher ('none', 'pytorch', 'slurm', 'mpi').

    Returns:
        Config: the merged config with ``work_dir`` and ``launcher`` set.
    """
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file {config!r} does not exist')
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])
    return cfg
