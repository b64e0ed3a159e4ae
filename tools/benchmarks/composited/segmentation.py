"""Composited semantic-segmentation benchmark (mmseg / mmdet ``BaseSegDataset`` layout).

Layout written under ``out``::

    img_dir/train/000001.png ...   canvases (Fashion-MNIST train items)
    img_dir/val/000001.png ...     canvases (Fashion-MNIST test items)
    img_dir/unlabeled/000001.png   extra canvases without labels, for decoder pretraining
    ann_dir/train/000001.png ...   uint8 label maps, same file names as the images
    ann_dir/val/000001.png ...
    splits/train.txt, val.txt, unlabeled.txt         image stems (``ann_file`` of BaseSegDataset)
    splits/train.{fold}@{percent}.txt                few-label subset of train
    splits/train.{fold}@{percent}-unlabeled.txt      its complement
    meta.json, preview.png

Label convention: 0 = background, ``k + 1`` = Fashion-MNIST class ``k`` (11 classes in all, background
included in mIoU, so ``reduce_zero_label=False``); 255 is the ignore index. The generator writes no 255
pixels (labels are exact); 255 only appears where pipelines pad (e.g. ``RandomCrop`` / ``Pad``
``seg_pad_val=255``).
"""

from __future__ import annotations

import dataclasses
import os.path as osp
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from tqdm import tqdm

from .canvas import child_rng, compose_canvas, plan_labels
from .detection import check_canvas_sizes, check_percents, labeled_size, select_labeled
from .errors import CompositedDataError
from .files import (
    META_FILE,
    makedirs,
    percent_tag,
    save_image,
    start_build,
    write_json,
    write_lines,
)
from .sources import FMNIST_CLASSES, class_pools, load_backgrounds, load_fashion_mnist

GENERATOR = 'composited_seg'
GENERATOR_VERSION = 1
#: Class names of the label maps, index = pixel value.
SEG_CLASSES: Tuple[str, ...] = ('background',) + FMNIST_CLASSES
IGNORE_INDEX = 255
_KEY_TRAIN, _KEY_VAL, _KEY_UNLABELED, _KEY_SPLIT = 11, 12, 13, 14
_OWNED = ('img_dir', 'ann_dir', 'splits', 'preview.png')


@dataclasses.dataclass(frozen=True)
class SegmentationConfig:
    """Sizes of the composited segmentation benchmark.

    Attributes:
        num_train (int): Labeled train canvases. Defaults to 2000.
        num_val (int): Val canvases. Defaults to 500.
        num_unlabeled (int): Unlabeled canvases (``img_dir/unlabeled``). Defaults to 4000.
        height (int): Canvas height. Defaults to 256.
        width (int): Canvas width. Defaults to 256.
        objects_per_image (tuple[int, int]): Inclusive range of items per canvas. Defaults to (1, 8).
        size_range (tuple[int, int]): Range of an item's longer side (px). Defaults to (24, 112).
        imbalance_ratio (float): Head/tail ratio of item classes (1 = balanced). Defaults to 1.
        min_visible (float): Fraction of its pixels every item keeps visible. Defaults to 0.6.
        percents (tuple[float]): Few-label fractions of train. Defaults to (1, 5, 10).
        folds (tuple[int]): Fold ids of the few-label subsets. Defaults to (1, 2, 3).
    """

    num_train: int = 2000
    num_val: int = 500
    num_unlabeled: int = 4000
    height: int = 256
    width: int = 256
    objects_per_image: Tuple[int, int] = (1, 8)
    size_range: Tuple[int, int] = (24, 112)
    imbalance_ratio: float = 1.0
    min_visible: float = 0.6
    percents: Tuple[float, ...] = (1, 5, 10)
    folds: Tuple[int, ...] = (1, 2, 3)

    def validate(self) -> None:
        """Raise :class:`CompositedDataError` for impossible sizes."""
        check_canvas_sizes(self.height, self.width, self.objects_per_image, self.size_range)
        if self.num_train < 1 or self.num_val < 1 or self.num_unlabeled < 0:
            raise CompositedDataError(
                f'need >= 1 train and val image and >= 0 unlabeled, got '
                f'{self.num_train}/{self.num_val}/{self.num_unlabeled}'
            )
        if not self.imbalance_ratio >= 1:
            raise CompositedDataError(f'imbalance ratio must be >= 1, got {self.imbalance_ratio}')
        if not 0 < self.min_visible <= 1:
            raise CompositedDataError(f'min_visible must be in (0, 1], got {self.min_visible}')
        check_percents(self.percents, self.num_train)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-friendly parameters.

        Returns:
            dict: Field name -> value.
        """
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def label_map(id_map: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-pixel class map from a canvas' visible-item map.

    Args:
        id_map (np.ndarray): (H, W) int32, 0 = background, i + 1 = item i.
        labels (np.ndarray): (M,) class id of each item.

    Returns:
        np.ndarray: (H, W) uint8, 0 = background, class id + 1 elsewhere.
    """
    lut = np.concatenate([[0], np.asarray(labels, dtype=np.int64) + 1]).astype(np.uint8)
    return lut[id_map]


def build_seg_split(
    cfg: SegmentationConfig,
    seed: int,
    split: str,
    out: str,
    fmnist_root: Optional[str] = None,
    progress: bool = False,
) -> List[Dict[str, Any]]:
    """Render one split into ``img_dir/<split>`` (and ``ann_dir/<split>`` unless unlabeled).

    Args:
        cfg (SegmentationConfig): Sizes.
        seed (int): Generation seed.
        split (str): ``'train'``, ``'val'`` or ``'unlabeled'``.
        out (str): Benchmark folder.
        fmnist_root (str, optional): Fashion-MNIST folder. Defaults to None.
        progress (bool): Show a progress bar. Defaults to False.

    Returns:
        list[dict]: Per image ``stem`` and ``classes`` (sorted class ids present).
    """
    key, num, fm_split = {
        'train': (_KEY_TRAIN, cfg.num_train, 'train'),
        'val': (_KEY_VAL, cfg.num_val, 'test'),
        'unlabeled': (_KEY_UNLABELED, cfg.num_unlabeled, 'train'),
    }[split]
    items, labels = load_fashion_mnist(fmnist_root, fm_split)
    pools = class_pools(labels)
    backgrounds = load_backgrounds()
    plan = plan_labels(
        child_rng(seed, key), num, cfg.objects_per_image, len(FMNIST_CLASSES), cfg.imbalance_ratio
    )
    img_dir = osp.join(out, 'img_dir', split)
    ann_dir = osp.join(out, 'ann_dir', split)
    makedirs(img_dir, *([] if split == 'unlabeled' else [ann_dir]))
    records = []
    for i in tqdm(range(num), desc=f'seg {split}', unit='img', disable=not progress):
        canvas = compose_canvas(
            child_rng(seed, key, i),
            cfg.height,
            cfg.width,
            plan[i],
            items,
            pools,
            backgrounds,
            cfg.size_range,
            cfg.min_visible,
        )
        stem = f'{i + 1:06d}'
        save_image(osp.join(img_dir, stem + '.png'), canvas.image)
        if split != 'unlabeled':
            save_image(osp.join(ann_dir, stem + '.png'), label_map(canvas.id_map, canvas.labels))
        records.append({'stem': stem, 'classes': sorted({int(v) for v in canvas.labels})})
    return records


def build_segmentation(
    out: str,
    seed: int = 0,
    cfg: Optional[SegmentationConfig] = None,
    fmnist_root: Optional[str] = None,
    progress: bool = False,
    preview: bool = False,
) -> Dict[str, Any]:
    """Build the whole segmentation benchmark into ``out``.

    Args:
        out (str): Output folder (created; a previous build by this tool is replaced).
        seed (int): Generation seed. Defaults to 0.
        cfg (SegmentationConfig, optional): Sizes. Defaults to None, meaning ``SegmentationConfig()``.
        fmnist_root (str, optional): Fashion-MNIST folder. Defaults to None.
        progress (bool): Show progress bars. Defaults to False.
        preview (bool): Also write ``preview.png``. Defaults to False.

    Returns:
        dict: The content of ``meta.json``.
    """
    cfg = cfg or SegmentationConfig()
    cfg.validate()
    load_fashion_mnist(fmnist_root, 'train')
    load_fashion_mnist(fmnist_root, 'test')
    out, meta = start_build(out, GENERATOR, GENERATOR_VERSION, _OWNED, seed, cfg.to_dict())
    split_dir = osp.join(out, 'splits')
    makedirs(split_dir)
    records = {}
    for split in ('train', 'val', 'unlabeled'):
        records[split] = build_seg_split(cfg, seed, split, out, fmnist_root, progress)
        write_lines(osp.join(split_dir, f'{split}.txt'), [r['stem'] for r in records[split]])
    few = {}
    train_classes = [frozenset(r['classes']) for r in records['train']]
    for fold in cfg.folds:
        for percent in cfg.percents:
            rng = child_rng(seed, _KEY_SPLIT, int(fold), int(round(float(percent) * 1000)))
            chosen = set(select_labeled(train_classes, labeled_size(percent, cfg.num_train), rng).tolist())
            name = f'train.{fold}@{percent_tag(percent)}'
            lab = [r['stem'] for i, r in enumerate(records['train']) if i in chosen]
            unl = [r['stem'] for i, r in enumerate(records['train']) if i not in chosen]
            write_lines(osp.join(split_dir, f'{name}.txt'), lab)
            write_lines(osp.join(split_dir, f'{name}-unlabeled.txt'), unl)
            few[name] = len(lab)
    meta.update(
        classes=list(SEG_CLASSES),
        ignore_index=IGNORE_INDEX,
        reduce_zero_label=False,
        num_images={s: len(r) for s, r in records.items()},
        few_label_splits=few,
        complete=True,
    )
    write_json(osp.join(out, META_FILE), meta)
    if preview:
        from .preview import preview_segmentation

        preview_segmentation(out)
    return meta
