"""Re-ID datasets in the Market-1501 folder layout.

Layout (Market-1501, also what ``tools/dataset_converters/composited_reid.py`` writes)::

    <data_root>/bounding_box_train/   training images
    <data_root>/query/                query images
    <data_root>/bounding_box_test/    gallery images

File names start with ``<pid>_c<camera>``, e.g. ``0002_c1s1_000451_03.jpg`` (pid 2, camera 1, sequence 1,
frame 451, box 3). pid ``-1`` marks junk images (dropped by default), pid ``0`` marks distractors (kept in
the gallery by default, as the Market-1501 protocol evaluates with them). The same ``<pid>_c<camera>``
prefix is used by DukeMTMC-reID, PersonX and VeRi-776 (``0001_c001_...``), so :data:`REID_NAME_PATTERN`
is the one place that defines it.
"""

from __future__ import annotations

import os
import os.path as osp
import re
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from mmdet.registry import DATASETS
from mmengine.dataset import BaseDataset

#: ``<pid>_c<camera>`` at the start of a file name; pid may be -1 (junk), camera ids start at 1.
REID_NAME_PATTERN = re.compile(r'^(-?\d+)_c(\d+)')
#: Subset name -> folder of the Market-1501 layout.
MARKET_SUBSETS: Dict[str, str] = {
    'train': 'bounding_box_train',
    'query': 'query',
    'gallery': 'bounding_box_test',
}
IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')
JUNK_PID = -1
DISTRACTOR_PID = 0

LAYOUT_HELP = (
    'Expected the Market-1501 layout: <data_root>/bounding_box_train/, <data_root>/query/ and '
    '<data_root>/bounding_box_test/ holding images named <pid>_c<camera>... (e.g. 0002_c1s1_000451_03.jpg; '
    'pid -1 = junk, 0000 = distractor; camera ids start at 1).'
)


class ReIDLayoutError(FileNotFoundError):
    """A re-ID folder does not follow the expected layout or naming."""


def parse_market_name(filename: str) -> Tuple[int, int]:
    """Person id and 0-based camera id from a Market-1501 style file name.

    Args:
        filename (str): File name or path, e.g. ``'0002_c1s1_000451_03.jpg'``.

    Returns:
        tuple[int, int]: ``(pid, camid)``; pid -1 = junk, 0 = distractor; ``camid`` = camera number - 1.

    Raises:
        ValueError: When the name does not start with ``<pid>_c<camera>`` (camera >= 1).
    """
    name = osp.basename(filename)
    match = REID_NAME_PATTERN.match(name)
    if match is None or int(match.group(2)) < 1:
        raise ValueError(
            f'{name!r} does not follow the <pid>_c<camera>... naming (e.g. 0002_c1s1_000451_03.jpg)'
        )
    return int(match.group(1)), int(match.group(2)) - 1


def format_market_name(
    pid: int, camid: int, seq: int = 1, frame: int = 0, box: int = 0, ext: str = '.jpg'
) -> str:
    """Market-1501 file name; the inverse of :func:`parse_market_name`.

    Args:
        pid (int): Person id (-1 junk, 0 distractor, else 1..9999).
        camid (int): 0-based camera id (written as ``c<camid + 1>``).
        seq (int): Sequence number. Defaults to 1.
        frame (int): Frame number (6 digits). Defaults to 0.
        box (int): Box index in the frame (2 digits). Defaults to 0.
        ext (str): Extension with the dot. Defaults to '.jpg'.

    Returns:
        str: e.g. ``'0002_c1s1_000451_03.jpg'`` or ``'-1_c3s1_000012_00.jpg'``.
    """
    if not -1 <= pid <= 9999 or camid < 0:
        raise ValueError(f'pid must be in [-1, 9999] and camid >= 0, got pid={pid}, camid={camid}')
    pid_text = '-1' if pid == JUNK_PID else f'{pid:04d}'
    return f'{pid_text}_c{camid + 1}s{seq}_{frame:06d}_{box:02d}{ext}'


def list_reid_folder(folder: str) -> List[Tuple[str, int, int]]:
    """Images of one re-ID folder with their ids.

    Args:
        folder (str): Folder holding ``<pid>_c<camera>...`` images (non-image files are ignored).

    Returns:
        list[tuple[str, int, int]]: ``(file_name, pid, camid)`` sorted by file name.

    Raises:
        ReIDLayoutError: When the folder is missing, holds no image, or an image name does not parse.
    """
    if not osp.isdir(folder):
        raise ReIDLayoutError(f're-ID folder {folder} not found. {LAYOUT_HELP}')
    out = []
    for name in sorted(os.listdir(folder)):
        if not name.lower().endswith(IMG_EXTENSIONS):
            continue
        try:
            pid, camid = parse_market_name(name)
        except ValueError as err:
            raise ReIDLayoutError(f'{osp.join(folder, name)}: {err}. {LAYOUT_HELP}') from None
        out.append((name, pid, camid))
    if not out:
        raise ReIDLayoutError(
            f're-ID folder {folder} holds no images ({", ".join(IMG_EXTENSIONS)}). {LAYOUT_HELP}'
        )
    return out


@DATASETS.register_module()
class MarketReIDDataset(BaseDataset):
    """One subset (train / query / gallery) of a re-ID dataset in the Market-1501 layout.

    Each data info holds ``img_path``, ``pid`` (id from the file name), ``camid`` (0-based), ``subset``,
    ``label`` (contiguous 0..N-1 training label when ``relabel``, else ``pid``) and ``gt_label`` (``label``
    as an int64 array, what mmdet's ``PackReIDInputs`` packs).

    Args:
        data_root (str): Folder holding ``bounding_box_train/``, ``query/``, ``bounding_box_test/``.
        subset (str): ``'train'``, ``'query'`` or ``'gallery'`` (or a folder name under ``data_root``).
            Defaults to 'train'.
        relabel (bool, optional): Map pids to contiguous labels (sorted pid order). Defaults to None,
            meaning True for ``'train'`` and False otherwise.
        drop_junk (bool): Drop pid -1 images. Defaults to True.
        drop_distractors (bool): Drop pid 0 images. Defaults to False.
        **kwargs: Passed to :class:`mmengine.dataset.BaseDataset` (``pipeline``, ``test_mode``,
            ``indices``, ``serialize_data``, ...). ``data_prefix=dict(img_path=...)`` overrides the folder.
    """

    METAINFO: dict = dict(dataset_layout='market1501')

    def __init__(
        self,
        data_root: str = '',
        subset: str = 'train',
        relabel: Optional[bool] = None,
        drop_junk: bool = True,
        drop_distractors: bool = False,
        data_prefix: Optional[dict] = None,
        **kwargs: Any,
    ) -> None:
        self.subset = subset
        self.relabel = (subset in ('train', MARKET_SUBSETS['train'])) if relabel is None else bool(relabel)
        self.drop_junk = drop_junk
        self.drop_distractors = drop_distractors
        if data_prefix is None:
            data_prefix = dict(img_path=MARKET_SUBSETS.get(subset, subset))
        super().__init__(data_root=data_root, data_prefix=data_prefix, **kwargs)

    def load_data_list(self) -> List[dict]:
        """List the subset folder.

        Returns:
            list[dict]: One data info per kept image, sorted by file name.
        """
        folder = self.data_prefix['img_path']
        if not osp.isdir(folder) and self.data_root and not osp.isdir(self.data_root):
            raise ReIDLayoutError(f're-ID data_root {self.data_root} not found. {LAYOUT_HELP}')
        records = [
            r
            for r in list_reid_folder(folder)
            if not (self.drop_junk and r[1] == JUNK_PID)
            and not (self.drop_distractors and r[1] == DISTRACTOR_PID)
        ]
        pids = sorted({pid for _, pid, _ in records})
        self.pid2label = (
            {pid: i for i, pid in enumerate(pids)} if self.relabel else {pid: pid for pid in pids}
        )
        data_list = []
        for name, pid, camid in records:
            label = self.pid2label[pid]
            data_list.append(
                dict(
                    img_path=osp.join(folder, name),
                    pid=pid,
                    camid=camid,
                    subset=self.subset,
                    label=label,
                    gt_label=np.array(label, dtype=np.int64),
                )
            )
        return data_list

    @property
    def num_pids(self) -> int:
        """Number of distinct pids kept (distractor pid 0 counts as one)."""
        return len({self.get_data_info(i)['pid'] for i in range(len(self))})

    @property
    def num_cams(self) -> int:
        """Number of distinct cameras."""
        return len({self.get_data_info(i)['camid'] for i in range(len(self))})
