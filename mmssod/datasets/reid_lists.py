"""Re-ID datasets read from list files: MSMT17 and VehicleID (Market-1501-like layouts: MarketReIDDataset).

MSMT17 (V1 / V2)::

    <data_root>/train/<pid>/<pid>_<idx>_<cam>_<...>.jpg    training images (list_train.txt + list_val.txt)
    <data_root>/test/<pid>/...                            query / gallery images
    <data_root>/list_{train,val,query,gallery}.txt        lines "<relative path> <pid>"

VehicleID (training source only; it has no camera ids)::

    <data_root>/image/<name>.jpg
    <data_root>/train_test_split/train_list.txt           lines "<name> <vehicle id>"

PersonX and VeRi-776 follow the Market-1501 naming (``<pid>_c<camera>...``): use :class:`MarketReIDDataset`
with ``subset='train'`` / ``'query'`` / ``'gallery'`` (PersonX as is; VeRi-776 with
``data_prefix=dict(img_path='image_train' / 'image_query' / 'image_test')``, as in
``configs/spcl/spcl_r50_1xb128-50e_uda_vehicleid-to-veri776.py``). ``subset='train'`` relabels by default.
"""

from __future__ import annotations

import os.path as osp
import re
from typing import Dict, List, Sequence, Tuple

import numpy as np
from mmdet.registry import DATASETS

from .reid import MarketReIDDataset, ReIDLayoutError

#: MSMT17 image name ``<pid>_<index>_<camera>_...`` (camera 1-based).
MSMT17_NAME_PATTERN = re.compile(r'^(\d+)_(\d+)_(\d+)_')
MSMT17_LISTS: Dict[str, Tuple[str, Tuple[str, ...]]] = {
    'train': ('train', ('list_train.txt', 'list_val.txt')),
    'query': ('test', ('list_query.txt',)),
    'gallery': ('test', ('list_gallery.txt',)),
}
MSMT17_HELP = (
    'Expected the MSMT17 layout: <data_root>/train/, <data_root>/test/ and <data_root>/list_train.txt, '
    'list_val.txt, list_query.txt, list_gallery.txt with lines "<pid>/<pid>_<idx>_<cam>_....jpg <pid>".'
)
VEHICLEID_HELP = (
    'Expected the VehicleID layout: <data_root>/image/<name>.jpg and '
    '<data_root>/train_test_split/train_list.txt with lines "<name> <vehicle id>".'
)


def read_id_list(path: str, help_text: str) -> List[Tuple[str, int]]:
    """``(name, id)`` pairs of a whitespace-separated list file.

    Args:
        path (str): List file.
        help_text (str): Layout description for the error message.

    Returns:
        list[tuple[str, int]]: One pair per non-empty line.

    Raises:
        ReIDLayoutError: When the file is missing or a line does not parse.
    """
    if not osp.isfile(path):
        raise ReIDLayoutError(f'list file {path} not found. {help_text}')
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or not parts[1].lstrip('-').isdigit():
                raise ReIDLayoutError(
                    f'{path}:{n}: expected "<image> <id>", got {line.strip()!r}. {help_text}'
                )
            out.append((parts[0], int(parts[1])))
    return out


def _records_to_infos(
    records: Sequence[Tuple[str, int, int]], subset: str, relabel: bool
) -> Tuple[list, dict]:
    pids = sorted({pid for _, pid, _ in records})
    pid2label = {pid: i for i, pid in enumerate(pids)} if relabel else {pid: pid for pid in pids}
    infos = [
        dict(
            img_path=path,
            pid=pid,
            camid=camid,
            subset=subset,
            label=pid2label[pid],
            gt_label=np.array(pid2label[pid], dtype=np.int64),
        )
        for path, pid, camid in records
    ]
    return infos, pid2label


@DATASETS.register_module()
class MSMT17ReIDDataset(MarketReIDDataset):
    """One subset of MSMT17 (train = list_train + list_val, query, gallery), read from its list files.

    Args:
        data_root (str): MSMT17 folder.
        subset (str): ``'train'``, ``'query'`` or ``'gallery'``. Defaults to 'train'.
        list_files (Sequence[str], optional): Override the list files of the subset. Defaults to None.
        **kwargs: :class:`MarketReIDDataset` arguments.
    """

    METAINFO: dict = dict(dataset_layout='msmt17')

    def __init__(self, data_root: str = '', subset: str = 'train', list_files=None, **kwargs) -> None:
        if subset not in MSMT17_LISTS:
            raise ValueError(f'MSMT17 subset must be one of {sorted(MSMT17_LISTS)}, got {subset!r}')
        folder, lists = MSMT17_LISTS[subset]
        self.list_files = tuple(list_files or lists)
        kwargs.setdefault('data_prefix', dict(img_path=folder))
        super().__init__(data_root=data_root, subset=subset, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Read the list files; camera from the image name."""
        folder = self.data_prefix['img_path']
        records = []
        for name in self.list_files:
            for rel, pid in read_id_list(osp.join(self.data_root, name), MSMT17_HELP):
                match = MSMT17_NAME_PATTERN.match(osp.basename(rel))
                if match is None:
                    raise ReIDLayoutError(
                        f'{name}: image {rel!r} is not named <pid>_<idx>_<cam>_... {MSMT17_HELP}'
                    )
                records.append((osp.join(folder, rel), pid, int(match.group(3)) - 1))
        infos, self.pid2label = _records_to_infos(records, self.subset, self.relabel)
        return infos


@DATASETS.register_module()
class VehicleIDReIDDataset(MarketReIDDataset):
    """VehicleID training set (source domain of VehicleID -> VeRi-776); camera ids are 0 (unknown).

    Args:
        data_root (str): VehicleID folder.
        list_file (str): Split list relative to ``data_root``. Defaults to 'train_test_split/train_list.txt'.
        **kwargs: :class:`MarketReIDDataset` arguments.
    """

    METAINFO: dict = dict(dataset_layout='vehicleid')

    def __init__(
        self, data_root: str = '', list_file: str = 'train_test_split/train_list.txt', **kwargs
    ) -> None:
        self.list_file = list_file
        kwargs.setdefault('data_prefix', dict(img_path='image'))
        super().__init__(data_root=data_root, subset='train', **kwargs)

    def load_data_list(self) -> List[dict]:
        """Read the split list."""
        folder = self.data_prefix['img_path']
        records = [
            (osp.join(folder, name if osp.splitext(name)[1] else name + '.jpg'), vid, 0)
            for name, vid in read_id_list(osp.join(self.data_root, self.list_file), VEHICLEID_HELP)
        ]
        infos, self.pid2label = _records_to_infos(records, self.subset, self.relabel)
        return infos
