"""ACRST's FBR / AFFR paste: CropBank instances pasted onto training images (Zhang et al., AAAI 2022).

FBR (foreground-background rebalancing) pastes a few foreground crops on every image; AFFR (adaptive
foreground-foreground rebalancing) draws their classes from the distribution mu published by
:class:`~mmssod.engine.hooks.CropBankHook` (``beta = 0`` in the hook gives uniform classes = plain FBR).
The bank (:mod:`mmssod.datasets.cropbank`) holds records ``(image, box, class, score)``; the crop is cut out
of its image here, in the dataloader worker, at full resolution. The occlusion rule for the boxes a paste
covers (:func:`paste_occlusion`, mmdet's CopyPaste rule on rectangles) is here too; the ACRST detector applies
the same rule to the teacher's pseudo boxes covered by pastes.
"""

from __future__ import annotations

import os
import os.path as osp
import re
from collections import OrderedDict
from typing import Optional

import mmcv
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.fileio import get
from torch import Tensor

from ..cropbank import CROPBANK_ENV, read_bank_file, read_bank_version


def paste_occlusion(
    boxes: Tensor, paste_mask: Tensor, bbox_occluded_thr: float = 10, mask_occluded_thr: float = 300
) -> tuple[Tensor, Tensor]:
    """Apply CopyPaste's occlusion rule to (box-shaped) instances covered by pasted crops.

    An instance's visible region is its box minus the pasted pixels. It is kept when the tight box of its
    visible region moved by at most ``bbox_occluded_thr`` pixels on every side, or when more than
    ``mask_occluded_thr`` of its pixels stay visible; kept boxes become the tight box of their visible part.
    A box is read as its integer pixel region ``[trunc(x1), round(x2)) x [trunc(y1), round(y2))`` clipped to
    the image; a box with no pixel in the image is dropped. All boxes are handled at once from cumulative
    sums of the mask (no per-box loop, no host synchronisation on GPU tensors).

    Args:
        boxes (Tensor): (N, 4) boxes (x1, y1, x2, y2) in pixels of the pasted image.
        paste_mask (Tensor): (H, W) bool, True where a crop was pasted.
        bbox_occluded_thr (float): box-change tolerance in pixels. Defaults to 10.
        mask_occluded_thr (float): visible-pixel count above which a box is kept. Defaults to 300.

    Returns:
        tuple[Tensor, Tensor]: ``keep`` (N,) bool and ``updated`` (N, 4) float boxes (the visible part;
        equal to the input where nothing was covered).
    """
    height, width = paste_mask.shape
    device = boxes.device
    updated = boxes.clone().float()
    if len(boxes) == 0:
        return torch.zeros(0, dtype=torch.bool, device=device), updated
    # the integer pixel region of each box: [x1, x2) x [y1, y2), clipped to the image
    x1 = boxes[:, 0].trunc().clamp(0, width).long()
    y1 = boxes[:, 1].trunc().clamp(0, height).long()
    x2 = boxes[:, 2].round().clamp(0, width).long()
    y2 = boxes[:, 3].round().clamp(0, height).long()
    nonempty = (x2 > x1) & (y2 > y1)
    covered = paste_mask.to(device=device, dtype=torch.int32)
    # covered pixels of column x over rows [y1, y2), and of row y over columns [x1, x2): (N, W) and (N, H)
    col_cum = torch.cat([covered.new_zeros(1, width), covered.cumsum(0)])
    row_cum = torch.cat([covered.new_zeros(height, 1), covered.cumsum(1)], 1)
    col_covered = col_cum[y2] - col_cum[y1]
    row_covered = (row_cum[:, x2] - row_cum[:, x1]).T
    xs = torch.arange(width, device=device)
    ys = torch.arange(height, device=device)
    in_x = (xs >= x1[:, None]) & (xs < x2[:, None])
    in_y = (ys >= y1[:, None]) & (ys < y2[:, None])
    col_visible = in_x & (col_covered < (y2 - y1)[:, None])  # the column has a visible pixel in the box
    row_visible = in_y & (row_covered < (x2 - x1)[:, None])
    num_visible = ((y2 - y1)[:, None] - col_covered).mul(in_x).sum(1)
    area = (x2 - x1) * (y2 - y1)
    tight = torch.stack(
        [
            torch.where(col_visible, xs, width).amin(1),
            torch.where(row_visible, ys, height).amin(1),
            torch.where(col_visible, xs, -1).amax(1) + 1,
            torch.where(row_visible, ys, -1).amax(1) + 1,
        ],
        1,
    )
    region = torch.stack([x1, y1, x2, y2], 1)
    moved = (tight - region).abs()
    partly = nonempty & (num_visible > 0) & (num_visible < area)
    keep = nonempty & (num_visible == area)  # nothing covered: kept unchanged
    keep |= partly & ((moved <= bbox_occluded_thr).all(1) | (num_visible > mask_occluded_thr))
    updated = torch.where(partly[:, None], tight.to(updated.dtype), updated)
    return keep, updated


def boxes_paste_mask(boxes: Tensor, height: int, width: int) -> Tensor:
    """Binary mask of the pixels covered by rectangular pasted crops.

    Args:
        boxes (Tensor): (M, 4) pasted boxes (x1, y1, x2, y2), integer-aligned.
        height (int): image height.
        width (int): image width.

    Returns:
        Tensor: (height, width) bool mask.
    """
    corners = boxes.reshape(-1, 4).round().long()
    ys = torch.arange(height, device=boxes.device)
    xs = torch.arange(width, device=boxes.device)
    in_y = (ys >= corners[:, 1:2]) & (ys < corners[:, 3:4])  # (M, H)
    in_x = (xs >= corners[:, 0:1]) & (xs < corners[:, 2:3])  # (M, W)
    return (in_y[:, :, None] & in_x[:, None, :]).any(0)


#: What ACRSTPaste adds that the detector reads from the unlabeled student samples' metainfo.
PASTED_META_KEYS = ('pasted_bboxes', 'pasted_labels')


def check_pasted_meta_keys(pipeline, where: str) -> None:
    """Raise when a pipeline pastes but its packing transform drops ``pasted_bboxes`` / ``pasted_labels``.

    On unlabeled images the ACRST detector learns the pasted instances from these metainfo keys; without
    them the pasted pixels stay in the image and are learnt as background. Branches of mmdet's
    ``MultiBranch`` are checked one by one.

    Args:
        pipeline (Compose | list): the dataset's pipeline (built transforms).
        where (str): how to name the pipeline in the message (e.g. the config path of the dataset).
    """
    transforms = list(getattr(pipeline, 'transforms', pipeline))
    pastes = False
    for transform in transforms:
        branches = getattr(transform, 'branch_pipelines', None)
        if isinstance(branches, dict):
            for branch, branch_pipeline in branches.items():
                check_pasted_meta_keys(branch_pipeline, f'{where} branch {branch!r}')
        if isinstance(transform, ACRSTPaste):
            pastes = True
        meta_keys = getattr(transform, 'meta_keys', None)
        if pastes and meta_keys is not None:
            missing = [k for k in PASTED_META_KEYS if k not in meta_keys]
            if missing:
                raise ValueError(
                    f'{where}: ACRSTPaste pastes instances but {type(transform).__name__} drops {missing}: '
                    f'add {missing} to its meta_keys, or the pasted pixels are learnt as background'
                )


def crop_box(img: np.ndarray, box) -> Optional[np.ndarray]:
    """Cut the rectangle under ``box`` out of ``img`` (full resolution).

    Args:
        img (np.ndarray): (H, W, 3) uint8 image.
        box (Sequence[float]): (x1, y1, x2, y2) in pixels of ``img``.

    Returns:
        np.ndarray | None: (h, w, 3) uint8 crop, None when less than 2 x 2 pixels of the box are inside.
    """
    height, width = img.shape[:2]
    x1, y1 = max(int(np.floor(box[0])), 0), max(int(np.floor(box[1])), 0)
    x2, y2 = min(int(np.ceil(box[2])), width), min(int(np.ceil(box[3])), height)
    if x2 - x1 < 2 or y2 - y1 < 2:
        return None
    return np.ascontiguousarray(img[y1:y2, x1:x2])


@TRANSFORMS.register_module()
class ACRSTPaste(BaseTransform):
    """Paste CropBank instances at random positions, drop/clip the boxes they occlude, mark them as pasted.

    Put it last in a pipeline, right before ``PackDetInputs`` (after every geometric transform), and add
    ``'pasted_bboxes'`` and ``'pasted_labels'`` to PackDetInputs' ``meta_keys`` in the unlabeled student
    branch: the ACRST detector regresses boxes of unlabeled images only on these pasted instances.

    The class of each paste is drawn from mu, then a record of that class uniformly from the label and
    pseudo banks; its image is read (a small per-worker cache avoids re-reading), the box is cut out at full
    size and rescaled by this image's own resize factor times a random factor from ``scale_range``.

    Required keys: ``img``, ``gt_bboxes``, ``gt_bboxes_labels``. Modified keys: ``img``, ``gt_bboxes``,
    ``gt_bboxes_labels``, ``gt_ignore_flags``. Added keys: ``gt_pasted_flags`` ((N,) bool over gt_bboxes),
    ``pasted_bboxes`` ((M, 4) float32), ``pasted_labels`` ((M,) int64).

    The bank file must exist: ``CropBankHook`` writes it (the label bank) before the first iteration, so a
    missing file, no file announced, or a ``bank_file`` other than the hook's is a clear error. When every
    class of the bank is empty the image passes through unchanged (no pasted instances).

    Args:
        bank_file (str, optional): the CropBank file. Defaults to None: the file announced by
            ``CropBankHook`` through the ``MMSSOD_CROPBANK_FILE`` environment variable. When set while a
            hook announces its file, it must be the hook's ``bank_file`` (in DDP the transform then reads
            its rank's copy ``<stem>.rank<r><ext>``, which the hook announces).
        num_paste (tuple[int, int]): inclusive range of instances pasted per image. Defaults to (1, 3).
        scale_range (tuple[float, float]): random rescale of a crop relative to its size in its own image
            (times this image's resize factor). Defaults to (0.7, 1.3).
        flip_prob (float): probability of a horizontal flip of a crop. Defaults to 0.5.
        color_jitter (float): brightness/contrast jitter strength in [0, 1). Defaults to 0.2.
        bbox_occluded_thr (float): CopyPaste rule, box-change tolerance in pixels. Defaults to 10.
        mask_occluded_thr (float): CopyPaste rule, visible pixels above which a box stays. Defaults to 300.
        min_size (int): pasted crops are at least this many pixels on each side. Defaults to 4.
        prob (float): probability of pasting on an image at all. Defaults to 1.0.
        cache_size (int): source images kept decoded per worker. Defaults to 8.
        backend_args (dict, optional): mmengine file backend arguments for reading source images.
    """

    def __init__(
        self,
        bank_file: Optional[str] = None,
        num_paste: tuple[int, int] = (1, 3),
        scale_range: tuple[float, float] = (0.7, 1.3),
        flip_prob: float = 0.5,
        color_jitter: float = 0.2,
        bbox_occluded_thr: float = 10,
        mask_occluded_thr: float = 300,
        min_size: int = 4,
        prob: float = 1.0,
        cache_size: int = 8,
        backend_args: Optional[dict] = None,
    ) -> None:
        if len(num_paste) != 2 or not 0 <= num_paste[0] <= num_paste[1]:
            raise ValueError(
                f'ACRSTPaste.num_paste must be (low, high) with 0 <= low <= high, got {num_paste}'
            )
        if len(scale_range) != 2 or not 0 < scale_range[0] <= scale_range[1]:
            raise ValueError(
                f'ACRSTPaste.scale_range must be (low, high) with 0 < low <= high, got {scale_range}'
            )
        for name, value in (('flip_prob', flip_prob), ('prob', prob)):
            if not 0 <= value <= 1:
                raise ValueError(f'ACRSTPaste.{name} must be in [0, 1], got {value}')
        if not 0 <= color_jitter < 1:
            raise ValueError(f'ACRSTPaste.color_jitter must be in [0, 1), got {color_jitter}')
        if cache_size < 0:
            raise ValueError(f'ACRSTPaste.cache_size must be >= 0, got {cache_size}')
        self.bank_file = bank_file
        self.num_paste = tuple(num_paste)
        self.scale_range = tuple(scale_range)
        self.flip_prob = flip_prob
        self.color_jitter = color_jitter
        self.bbox_occluded_thr = bbox_occluded_thr
        self.mask_occluded_thr = mask_occluded_thr
        self.min_size = min_size
        self.prob = prob
        self.cache_size = cache_size
        self.backend_args = backend_args
        self._bank: Optional[dict] = None
        self._bank_stamp = None
        self._by_class: list[list[tuple[int, int]]] = []
        self._cache: OrderedDict = OrderedDict()

    def bank_path(self) -> str:
        """The bank file this transform reads: the hook's announced file, or ``bank_file`` without a hook.

        Raises:
            RuntimeError: no file is announced and ``bank_file`` is None.
            ValueError: ``bank_file`` is not the file (or a rank copy of the file) the hook writes.
        """
        announced = os.environ.get(CROPBANK_ENV)
        if self.bank_file is None:
            if not announced:
                raise RuntimeError(
                    f'ACRSTPaste: no CropBank file - CropBankHook announces it through {CROPBANK_ENV} when '
                    "training starts: add dict(type='CropBankHook') to custom_hooks, or set "
                    'ACRSTPaste.bank_file to a bank file'
                )
            return announced
        if not announced:
            return self.bank_file
        own, announced_abs = osp.abspath(self.bank_file), osp.abspath(announced)
        stem, ext = osp.splitext(own)
        if announced_abs == own or re.fullmatch(
            re.escape(stem) + r'\.rank\d+' + re.escape(ext), announced_abs
        ):
            return announced  # the hook's file, or this rank's copy of it in DDP
        raise ValueError(
            f'ACRSTPaste.bank_file={self.bank_file!r} but CropBankHook writes {announced!r}: set '
            'CropBankHook.bank_file to the same path, or leave ACRSTPaste.bank_file=None to read the '
            "hook's file"
        )

    def _current_bank(self) -> dict:
        """The published bank, reloaded when the file's version header changes."""
        path = self.bank_path()
        version = read_bank_version(path)
        if version is None:
            setting = (
                'ACRSTPaste.bank_file'
                if path == self.bank_file
                else f'CropBankHook.bank_file ({CROPBANK_ENV})'
            )
            raise FileNotFoundError(
                f'ACRSTPaste: the CropBank file {path!r} ({setting}) does not exist or is incomplete; '
                'CropBankHook writes it before the first iteration - check that the hook is in custom_hooks '
                'and that ACRSTPaste and CropBankHook name the same bank_file'
            )
        stamp = (osp.abspath(path), version)
        if stamp != self._bank_stamp:
            self._bank = read_bank_file(path)
            self._bank_stamp = (osp.abspath(path), int(self._bank['version']))
            self._by_class = [[] for _ in range(self._bank['num_classes'])]
            for b, bank in enumerate(self._bank['banks']):
                for k in range(self._bank['num_classes']):
                    rows = np.flatnonzero(bank['records']['label'] == k)
                    self._by_class[k].append((b, rows))
            self._cache.clear()  # the pseudo bank's images change: start afresh
        return self._bank

    def class_sizes(self) -> np.ndarray:
        """(K,) records per class in the loaded bank (both banks)."""
        return np.array([sum(len(rows) for _, rows in per) for per in self._by_class], np.float64)

    def _read(self, path: str) -> np.ndarray:
        """A source image (BGR uint8), from the per-worker cache when recently read."""
        img = self._cache.get(path)
        if img is None:
            try:
                img = mmcv.imfrombytes(get(path, backend_args=self.backend_args), channel_order='bgr')
            except (OSError, ValueError) as err:
                raise FileNotFoundError(
                    f'ACRSTPaste: cannot read the CropBank image {path!r} ({err})'
                ) from err
            if img is None:
                raise FileNotFoundError(f'ACRSTPaste: cannot decode the CropBank image {path!r}')
            if self.cache_size:
                self._cache[path] = img
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(path)
        return img

    def _sample_crop(self, label: int) -> Optional[np.ndarray]:
        """Cut one uniformly drawn record of class ``label`` out of its image."""
        per = self._by_class[label]
        sizes = np.array([len(rows) for _, rows in per])
        pick = np.random.randint(sizes.sum())
        b = int(np.searchsorted(np.cumsum(sizes), pick, side='right'))
        row = per[b][1][pick - sizes[:b].sum()]
        bank = self._bank['banks'][per[b][0]]
        record = bank['records'][row]
        return crop_box(self._read(bank['paths'][int(record['image'])]), record['bbox'])

    def _augment(self, crop: np.ndarray, scale: float, img_shape: tuple[int, int]) -> np.ndarray:
        """Rescale (fitting inside the image), maybe flip, jitter brightness/contrast."""
        height, width = img_shape
        scale = min(scale, (height - 1) / crop.shape[0], (width - 1) / crop.shape[1])
        new_h = max(int(round(crop.shape[0] * scale)), self.min_size)
        new_w = max(int(round(crop.shape[1] * scale)), self.min_size)
        crop = mmcv.imresize(crop, (min(new_w, width), min(new_h, height)))
        if np.random.rand() < self.flip_prob:
            crop = crop[:, ::-1]
        if self.color_jitter > 0:
            alpha = 1 + np.random.uniform(-self.color_jitter, self.color_jitter)  # contrast
            beta = 255 * np.random.uniform(-self.color_jitter, self.color_jitter) / 2  # brightness
            mean = crop.mean()
            crop = np.clip((crop.astype(np.float32) - mean) * alpha + mean + beta, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(crop)

    def transform(self, results: dict) -> dict:
        """Paste instances sampled by mu; update boxes, labels, ignore flags; record what was pasted."""
        gt_bboxes = results.get('gt_bboxes', np.zeros((0, 4), np.float32))
        box_type = type(gt_bboxes) if isinstance(gt_bboxes, HorizontalBoxes) else None
        boxes = gt_bboxes.numpy() if box_type else np.asarray(gt_bboxes, np.float32).reshape(-1, 4)
        labels = np.asarray(results.get('gt_bboxes_labels', np.zeros(0, np.int64)), np.int64)
        ignore = np.asarray(results.get('gt_ignore_flags', np.zeros(len(boxes), bool)), bool)
        pasted = np.zeros(len(boxes), bool)

        bank = self._current_bank() if np.random.rand() < self.prob else None
        if bank is not None:
            img = results['img']
            height, width = img.shape[:2]
            weights = np.asarray(bank['mu'], np.float64) * (self.class_sizes() > 0)
            num = np.random.randint(self.num_paste[0], self.num_paste[1] + 1)
            if weights.sum() > 0 and num > 0:
                img = img.copy()
                factor = float(np.mean(results.get('scale_factor', (1.0, 1.0))))
                for _ in range(num):
                    label = int(np.random.choice(len(weights), p=weights / weights.sum()))
                    crop = self._sample_crop(label)
                    if crop is None:  # the box lies outside its image: nothing to paste
                        continue
                    scale = factor * np.random.uniform(*self.scale_range)
                    crop = self._augment(crop, scale, (height, width))
                    ch, cw = crop.shape[:2]
                    x1 = np.random.randint(0, width - cw + 1)
                    y1 = np.random.randint(0, height - ch + 1)
                    img[y1 : y1 + ch, x1 : x1 + cw] = crop
                    new_box = np.array([[x1, y1, x1 + cw, y1 + ch]], np.float32)
                    if len(boxes):
                        mask = boxes_paste_mask(torch.from_numpy(new_box), height, width)
                        keep, updated = paste_occlusion(
                            torch.from_numpy(boxes), mask, self.bbox_occluded_thr, self.mask_occluded_thr
                        )
                        keep = keep.numpy()
                        boxes = updated.numpy()[keep].astype(np.float32)
                        labels, ignore, pasted = labels[keep], ignore[keep], pasted[keep]
                    boxes = np.concatenate([boxes, new_box])
                    labels = np.append(labels, label)
                    ignore = np.append(ignore, False)
                    pasted = np.append(pasted, True)
                results['img'] = img

        results['gt_bboxes'] = box_type(boxes) if box_type else boxes.astype(np.float32)
        results['gt_bboxes_labels'] = labels.astype(np.int64)
        results['gt_ignore_flags'] = ignore.astype(bool)
        results['gt_pasted_flags'] = pasted
        results['pasted_bboxes'] = boxes[pasted].astype(np.float32).reshape(-1, 4)
        results['pasted_labels'] = labels[pasted].astype(np.int64)
        return results

    def __repr__(self) -> str:
        return (
            f'{self.__class__.__name__}(bank_file={self.bank_file}, num_paste={self.num_paste}, '
            f'scale_range={self.scale_range}, flip_prob={self.flip_prob}, color_jitter={self.color_jitter}, '
            f'bbox_occluded_thr={self.bbox_occluded_thr}, mask_occluded_thr={self.mask_occluded_thr})'
        )
