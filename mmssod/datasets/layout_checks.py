"""Cheap checks of a dataset config against the files on disk, run before a training / test run starts.

A wrong ``data_root``, a missing image folder or an empty split otherwise fails minutes later, deep inside
a sampler or a dataset class, with a message that names neither the config key nor the path. Each check here
reads at most one small file and lists at most one folder; big annotation files are never parsed.
"""

from __future__ import annotations

import json
import os
import os.path as osp
import re
from typing import Any, Dict, Optional

#: JSON annotation files above this size are not parsed for the empty-split check (a real split is big).
MAX_PARSED_JSON_BYTES = 16 * 1024 * 1024
#: ``data_prefix`` keys that name image folders (mmdet: img / img_path, mmseg: img_path / seg_map_path).
FOLDER_PREFIX_KEYS = ('img', 'img_path', 'seg', 'seg_map_path')


class DatasetLayoutError(FileNotFoundError):
    """A dataset config does not match the files on disk (names the config key and the path)."""


def cfg_option_key(key: str) -> str:
    """A config key as ``--cfg-options`` takes it: list items by a dotted index.

    MMEngine merges ``datasets.0.data_root=...`` into the first dataset but reads ``datasets[0].data_root``
    as the name of a new key, which changes nothing.

    Args:
        key (str): e.g. ``'train_dataloader.dataset.datasets[0].data_root'``.

    Returns:
        str: e.g. ``'train_dataloader.dataset.datasets.0.data_root'``.
    """
    return re.sub(r'\[(\d+)\]', r'.\1', key)


def _hint(key: str) -> str:
    return (
        f'Fix `{key}` in the config (or with --cfg-options {cfg_option_key(key)}=...), or prepare the '
        'dataset as described in the config folder README.'
    )


def _resolve(data_root: str, path: str) -> str:
    return path if osp.isabs(path) or not data_root else osp.join(data_root, path)


def count_json_images(path: str) -> Optional[int]:
    """Number of ``images`` of a COCO-style file, or None when it is too big to parse cheaply / has none."""
    if osp.getsize(path) > MAX_PARSED_JSON_BYTES:
        return None
    with open(path) as f:
        try:
            content = json.load(f)
        except ValueError:
            return None  # reported by the completeness check of the caller
    if isinstance(content, dict) and isinstance(content.get('images'), list):
        return len(content['images'])
    return None


def check_dataset_layout(key: str, ds: Dict[str, Any]) -> None:
    """Check one dataset config (not wrappers' own keys) against the disk.

    Args:
        key (str): Its config key, e.g. ``'train_dataloader.dataset.datasets[0]'``.
        ds (dict): The dataset config.

    Raises:
        DatasetLayoutError: ``data_root`` is not a folder, an image / label folder of ``data_prefix`` does not
            exist, or the split is empty (an ``ann_file`` list without entries, a COCO file without images,
            an image folder without files when there is no ``ann_file``).
    """
    data_root = ds.get('data_root') or ''
    if not isinstance(data_root, str):
        return
    if data_root and not osp.isdir(data_root):
        raise DatasetLayoutError(
            f'dataset folder {data_root!r} ({key}.data_root) does not exist. {_hint(key + ".data_root")}'
        )
    ann_file = ds.get('ann_file')
    if isinstance(ann_file, str) and ann_file:
        path = _resolve(data_root, ann_file)
        if osp.isfile(path):
            _check_not_empty(key, path)
    prefix = ds.get('data_prefix')
    folders = {}
    if isinstance(prefix, str) and prefix:
        folders['data_prefix'] = prefix
    elif isinstance(prefix, dict):
        folders = {f'data_prefix.{k}': v for k, v in prefix.items() if k in FOLDER_PREFIX_KEYS and v}
    for sub, folder in folders.items():
        if not isinstance(folder, str):
            continue
        path = _resolve(data_root, folder)
        if not osp.isdir(path):
            raise DatasetLayoutError(f'folder {path!r} ({key}.{sub}) does not exist. {_hint(f"{key}.{sub}")}')
        if not ann_file and not _has_files(path):
            raise DatasetLayoutError(
                f'folder {path!r} ({key}.{sub}) is empty: the split has no images. {_hint(f"{key}.{sub}")}'
            )
    wrapper = any(k in ds for k in ('source', 'dataset', 'datasets'))
    if str(ds.get('type', '')).endswith('ReIDDataset') and not wrapper:
        _check_reid_listing(key, ds)


def _check_reid_listing(key: str, ds: Dict[str, Any]) -> None:
    """List a re-ID split (folder or list files, no image is read): its files are fixed by the layout."""
    from mmdet.registry import DATASETS

    root = ds.get('data_root') or ''
    try:
        dataset = DATASETS.build(dict(ds, pipeline=[], serialize_data=False))
    except (FileNotFoundError, ValueError) as err:
        raise DatasetLayoutError(f'{key} (data_root {root!r}): {err}. {_hint(key + ".data_root")}') from err
    if len(dataset) == 0:
        lists = getattr(dataset, 'list_files', None) or [getattr(dataset, 'list_file', None)]
        read = ', '.join(osp.join(root, name) for name in lists if name) or dataset.data_prefix.get(
            'img_path'
        )
        raise DatasetLayoutError(
            f'{key} (data_root {root!r}, subset {ds.get("subset")!r}) has no images: the split is empty '
            f'(read {read}). {_hint(key + ".data_root")}'
        )


def _check_not_empty(key: str, path: str) -> None:
    if path.endswith('.json'):
        num = count_json_images(path)
        if num == 0:
            raise DatasetLayoutError(
                f'annotation file {path!r} ({key}.ann_file) lists no images: the split is empty. '
                f'{_hint(key + ".ann_file")}'
            )
    elif path.endswith('.txt'):
        with open(path) as f:
            if not any(line.strip() for line in f):
                raise DatasetLayoutError(
                    f'split list {path!r} ({key}.ann_file) is empty. {_hint(key + ".ann_file")}'
                )


def _has_files(folder: str) -> bool:
    for _, _, files in os.walk(folder):
        if files:
            return True
    return False
