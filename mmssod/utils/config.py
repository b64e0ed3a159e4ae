"""Load configs by name: ``mmdet::`` / ``mmpretrain::`` / ``mmseg::`` ... and the project's own ``mmssod::``.

The configs that installed OpenMMLab packages ship are read by MMEngine's :func:`mmengine.hub.get_config`
(it looks the name up in the package's ``.mim`` metafiles, else under ``.mim/configs``; ``mmssod::`` too once
:mod:`mmssod.registry` is imported). This layer adds: mmssod's own configs from a source checkout's
``configs/`` whether or not the package is installed (else the installed ``mmssod/.mim/configs``), a default
package for names without a prefix, and a clear error instead of a ``pip install`` attempt when the package
is not installed.
"""

from __future__ import annotations

import copy
import difflib
import importlib.util
import os.path as osp

from mmengine.config import Config, ConfigDict
from mmengine.config.utils import MODULE2PACKAGE
from mmengine.hub import get_config as hub_get_config

PROJECT_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def config_root() -> str:
    """Folder that holds mmssod's own configs.

    Returns:
        str: the repository's ``configs/`` in a source checkout / editable install, else the installed
        ``mmssod/.mim/configs``.
    """
    source = osp.join(PROJECT_ROOT, 'configs')
    if osp.isfile(osp.join(PROJECT_ROOT, 'setup.py')) and osp.isdir(source):
        return source
    return osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), '.mim', 'configs')


def tool_path(name: str) -> str:
    """Absolute path of one of mmssod's tools, for the commands that error messages suggest.

    Args:
        name (str): path under ``tools/``, e.g. ``'model_converters/trusted_checkpoint.py'``.

    Returns:
        str: the source checkout's ``tools/<name>``, else the installed ``mmssod/.mim/tools/<name>``.
    """
    return osp.join(osp.dirname(config_root()), 'tools', name)


def config_path(name: str) -> str:
    """Absolute path of one of mmssod's configs.

    Args:
        name (str): config path relative to mmssod's configs folder, with or without the ``mmssod::``
            prefix, e.g. ``'mmssod::cal_detr/cal-dino-4scale_r50_8xb2-12e_coco.py'``.

    Returns:
        str: the config file path.
    """
    if name.startswith('mmssod::'):
        name = name[len('mmssod::') :]
    elif '::' in name:
        raise ValueError(f'config_path reads mmssod configs only, got {name!r}; use get_config for it')
    path = osp.join(config_root(), name)
    if not osp.isfile(path):
        raise FileNotFoundError(f'config {name!r} not found in mmssod (looked at {path})')
    return path


def get_config(name: str, package: str = 'mmdet') -> Config:
    """Load a config by name, e.g. ``get_config('mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py')``.

    Args:
        name (str): ``'<package>::<path>'`` or a path relative to ``package``'s configs folder.
        package (str): package used when ``name`` has no prefix. Defaults to 'mmdet'.

    Returns:
        Config: the parsed config (``mmssod`` from its own configs, any other package through
        :func:`mmengine.hub.get_config`).

    Raises:
        ValueError: MMEngine reads no configs of ``package``.
        ModuleNotFoundError: ``package`` is not installed.
    """
    if '::' in name:
        package, name = name.split('::', 1)
    if package == 'mmssod':
        return Config.fromfile(config_path(name))
    if package not in MODULE2PACKAGE:
        raise ValueError(
            f'cannot read configs of package {package!r}: mmssod reads its own and MMEngine those of '
            f'{", ".join(sorted(MODULE2PACKAGE))}'
        )
    if importlib.util.find_spec(package) is None:  # mmengine would try `pip install` here
        raise ModuleNotFoundError(
            f'package {package!r} is not installed, so its configs cannot be read; '
            f'install it (pip install {MODULE2PACKAGE[package]})'
        )
    return hub_get_config(f'{package}::{name}')


def check_known_keys(setting: str, cfg: dict, accepted) -> None:
    """Raise when a dict that is read key by key holds a key nobody reads (a typo would be ignored silently).

    Args:
        setting (str): the dict's config key, named in the error, e.g. ``'model.semi_train_cfg'``.
        cfg (dict): the dict.
        accepted (Iterable[str]): the keys that are read.

    Raises:
        ValueError: naming each unknown key, the closest accepted key, and all accepted keys.
    """
    accepted = sorted(accepted)
    unknown = sorted(set(cfg) - set(accepted))
    if unknown:
        named = []
        for key in unknown:
            guess = difflib.get_close_matches(key, accepted, n=1)
            named.append(f'{key!r}' + (f' (did you mean {guess[0]!r}?)' if guess else ''))
        raise ValueError(
            f'{setting} has unknown key(s) {", ".join(named)}; accepted keys: {", ".join(accepted)}'
        )


def get_model_cfg(name: str, package: str = 'mmdet') -> ConfigDict:
    """A deep copy of the ``model`` field of a config loaded by :func:`get_config` (for building models)."""
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
    from mmssod.datasets.layout_checks import cfg_option_key

    ann_file = ds.get('ann_file')
    if ann_file and isinstance(ann_file, str):
        data_root = ds.get('data_root') or ''
        path = ann_file if osp.isabs(ann_file) or not data_root else osp.join(data_root, ann_file)
        hint = (
            f'Fix `{key}.ann_file` / `{key}.data_root` in the config (or with --cfg-options '
            f'{cfg_option_key(key)}.ann_file=...), or prepare the dataset as described in the config folder '
            'README.'
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
