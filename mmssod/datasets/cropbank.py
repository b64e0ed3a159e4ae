"""ACRST's CropBank: records of foreground instances, the statistics that drive AFFR, the bank file.

The *label bank* holds every ground-truth box of the labeled set; the *pseudo bank* is refilled every
refresh from the teacher's filtered pseudo-labels on unlabeled images. An entry is a record
``(image, box, class, score)``, not pixels: the paste transform crops the box out of its image inside the
dataloader worker at paste time, at full resolution. The bank therefore covers the whole labeled set and a
large pseudo bank with flat memory (a few dozen bytes per instance). Per-class teacher statistics give the
pseudo-recall PR and the AFFR class distribution mu (:func:`pseudo_recall_aaai`, :func:`pseudo_recall_v1`,
:func:`affr_distribution`).

Dataloader workers cannot see the model or the hook, so the bank reaches the
:class:`~mmssod.datasets.transforms.ACRSTPaste` transform as a file (:func:`write_bank_file`,
:func:`read_bank_version`): an int64 version header, then the pickled export of the bank. It is written
atomically (temporary file + rename) by :class:`~mmssod.engine.hooks.CropBankHook`, and workers reload it
whenever the version changes. This module is the one home of the bank; the hook and the transform import it.
"""

from __future__ import annotations

import copy
import os
import os.path as osp
import pickle
import struct
import tempfile
from typing import Callable, Optional

import numpy as np
import torch
from mmengine.logging import print_log
from torch import Tensor

from ..utils.safe_load import load_data_pickle

#: Environment variable through which ``CropBankHook`` tells the paste transform where the bank file is.
CROPBANK_ENV = 'MMSSOD_CROPBANK_FILE'
_VERSION = struct.Struct('<q')
#: One CropBank record: the image (index into the bank's path table), the box in that image's pixels,
#: the class and the score (1 for ground truth).
RECORD_DTYPE = np.dtype(
    [('image', np.int64), ('bbox', np.float32, (4,)), ('label', np.int64), ('score', np.float32)]
)


def write_bank_file(f, bank: dict) -> None:
    """Write a CropBank export to an open binary file: an int64 version header, then the pickled bank.

    Args:
        f (BinaryIO): the file.
        bank (dict): ``version`` (int), ``num_classes`` (int), ``mu`` ((K,) float array), ``banks`` (a list
            of ``{'paths': [str], 'records': RECORD_DTYPE array}``: the label bank and the pseudo bank).
    """
    f.write(_VERSION.pack(int(bank['version'])))
    pickle.dump(bank, f, protocol=pickle.HIGHEST_PROTOCOL)


def read_bank_version(path: str) -> Optional[int]:
    """The version header of a bank file, None when there is no (complete) file."""
    try:
        with open(path, 'rb') as f:
            header = f.read(_VERSION.size)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return _VERSION.unpack(header)[0] if len(header) == _VERSION.size else None


def read_bank_file(path: str) -> dict:
    """The bank export stored in a bank file (see :func:`write_bank_file`).

    The file is replaced atomically by its writer, so header and body always belong together.

    Args:
        path (str): the bank file.

    Returns:
        dict: the export (``version``, ``num_classes``, ``mu``, ``banks``).
    """
    with open(path, 'rb') as f:
        f.seek(_VERSION.size)
        return load_data_pickle(f)


def host_array(value, dtype=None) -> np.ndarray:
    """``value`` as a numpy array on the host: a tensor on any device (``Runner.resume`` loads checkpoints
    onto the training device), an array or a list."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype)


#: The pseudo-recall forms: ``'aaai'`` (the published paper, default) and ``'v1'`` (arXiv v1).
PR_FORMS = ('aaai', 'v1')


def pseudo_recall_aaai(confidence_sum: Tensor) -> Tensor:
    """Pseudo-recall, AAAI form: ``PR_k = sum_i s_k^i`` over the teacher's class-k detections.

    The sum runs over the detections with confidence ``s >= 0.1`` (the caller accumulates them). No prior
    from the labeled set enters: classes that are equally neglected get a lower PR when they are found less
    confidently. PR is not clipped, so classes with different confidence sums keep different PR.

    Args:
        confidence_sum (Tensor): (K,) summed confidences of class-k teacher detections.

    Returns:
        Tensor: (K,) float pseudo-recall (>= 0).
    """
    if confidence_sum.dim() != 1:
        raise ValueError(f'confidence_sum must have shape (num_classes,), got {tuple(confidence_sum.shape)}')
    if bool((confidence_sum < 0).any()):
        raise ValueError('confidence_sum must be >= 0 (a sum of detection confidences)')
    return confidence_sum.float().clone()


def pseudo_recall_v1(
    pseudo_counts: Tensor, num_unlabeled_images: int, labeled_counts: Tensor, num_labeled_images: int
) -> Tensor:
    """Pseudo-recall, arXiv v1 form: ``PR_k = N_k^u / (r * N_k^l)``, ``r = |unlabeled| / |labeled|``.

    ``N_k^u`` is the number of class-k pseudo-labels over ``num_unlabeled_images`` images, ``N_k^l`` the
    number of class-k ground-truth boxes over ``num_labeled_images`` labeled images (the labeled class
    distribution serves as the prior of the unlabeled one). Not clipped; classes without labeled instances
    have no defined PR and get NaN.

    Args:
        pseudo_counts (Tensor): (K,) class-k pseudo-label counts.
        num_unlabeled_images (int): number of unlabeled images those pseudo-labels come from (> 0).
        labeled_counts (Tensor): (K,) ground-truth instance counts of the labeled set.
        num_labeled_images (int): number of labeled images (> 0).

    Returns:
        Tensor: (K,) float pseudo-recall (>= 0), NaN where ``labeled_counts == 0``.
    """
    if pseudo_counts.shape != labeled_counts.shape or pseudo_counts.dim() != 1:
        raise ValueError(
            f'pseudo_counts {tuple(pseudo_counts.shape)} and labeled_counts '
            f'{tuple(labeled_counts.shape)} must both have shape (num_classes,)'
        )
    if num_labeled_images <= 0 or num_unlabeled_images <= 0:
        raise ValueError(
            f'num_labeled_images and num_unlabeled_images must be > 0, got {num_labeled_images}, '
            f'{num_unlabeled_images}'
        )
    ratio = num_unlabeled_images / num_labeled_images
    counts = labeled_counts.double()
    pr = pseudo_counts.double() / (ratio * counts.clamp(min=1))
    pr[counts <= 0] = float('nan')
    return pr.float()


def affr_distribution(pr: Tensor, beta: float, pr_floor: float = 0.0) -> Tensor:
    """AFFR sampling distribution mu over classes from pseudo-recall (CReST-style reversed ranking).

    The distinct PR values sorted descending, ``v_1 > v_2 > ... > v_M``; a class whose PR is ``v_j`` gets
    ``(v_(M+1-j) / v_1) ** beta``, normalised to sum 1. With all PR distinct (M = K) this is
    ``mu_(i) ~ (PR_(K+1-i) / PR_(1)) ** beta``: the most-recalled class gets the smallest weight, the
    least-recalled the largest. Equal PR gives equal mu and different PR always gives different mu for
    ``beta > 0`` (ranking the distinct values keeps tied classes from merging their neighbours).
    ``beta = 0`` gives the uniform distribution (plain FBR), as does PR = 0 for every class (nothing
    detected yet). Classes with undefined PR (NaN: v1 form, no labeled instances) count as the best
    recalled (the largest finite PR), since nothing says they are neglected.

    A class with PR = 0 gives the best-recalled class ``(0 / v_1) ** beta = 0``: it is never pasted (the
    paper's formula). ``pr_floor`` f > 0 adds ``f * v_1`` to every PR first, so the smallest ratio becomes
    at least ``f / (1 + f)`` and every class keeps a non-zero weight; the order of the classes and the
    distinctness of their weights are unchanged.

    Args:
        pr (Tensor): (K,) pseudo-recall, values >= 0 or NaN.
        beta (float): rebalancing strength, >= 0.
        pr_floor (float): added to every PR as a fraction of the largest PR, >= 0. Defaults to 0 (the
            paper: no floor).

    Returns:
        Tensor: (K,) float distribution mu (non-negative, sums to 1).
    """
    if beta < 0:
        raise ValueError(f'beta must be >= 0 (0 = plain FBR), got {beta}')
    if pr_floor < 0:
        raise ValueError(f'pr_floor must be >= 0 (0 = no floor, the paper), got {pr_floor}')
    if pr.dim() != 1 or pr.numel() == 0:
        raise ValueError(f'pr must have shape (num_classes,), got {tuple(pr.shape)}')
    pr = pr.double()
    finite = pr[~torch.isnan(pr)]
    if bool((finite < 0).any()):
        raise ValueError(f'pseudo-recall must be >= 0, got {pr.tolist()}')
    top = float(finite.max()) if finite.numel() else 1.0
    pr = torch.nan_to_num(pr, nan=top)
    if beta == 0 or top <= 0:
        return torch.full_like(pr, 1.0 / len(pr)).float()
    pr = pr + pr_floor * top
    values, index = torch.unique(pr, sorted=True, return_inverse=True)  # ascending: values[-1] = v_1
    # a class at values[i] holds v_j with j = M - i and gets v_(M+1-j) = values[M - 1 - i]
    mirrored = values.flip(0)[index]
    weights = (mirrored / values[-1]) ** beta
    return (weights / weights.sum()).float()


#: Boxes narrower or lower than this (pixels) are not stored: nothing to paste.
MIN_BOX_SIZE = 2.0


class RecordTable:
    """Records ``(image, bbox, label, score)`` with a table of image paths (the unit of both banks).

    ``records`` is a numpy structured array of :data:`RECORD_DTYPE`; ``records['image']`` indexes ``paths``.
    The records live in a buffer whose capacity doubles when full, so :meth:`extend` (one image) takes time
    independent of the table's size: filling a table of N records copies O(N) rows in all, not O(N) per image.
    """

    def __init__(self) -> None:
        self.paths: list[str] = []
        self._index: dict[str, int] = {}
        self._buffer = np.zeros(0, RECORD_DTYPE)
        self._size = 0

    @property
    def records(self) -> np.ndarray:
        """The records (a view of the filled part of the buffer)."""
        return self._buffer[: self._size]

    @records.setter
    def records(self, records: np.ndarray) -> None:
        self._buffer = np.asarray(records, RECORD_DTYPE)
        self._size = len(self._buffer)

    def _reserve(self, size: int) -> None:
        """Make room for ``size`` records: the buffer at least doubles when it grows."""
        if size > len(self._buffer):
            grown = np.zeros(max(size, 2 * len(self._buffer), 1024), RECORD_DTYPE)
            grown[: self._size] = self._buffer[: self._size]
            self._buffer = grown

    def path_index(self, path: str) -> int:
        """Index of ``path`` in the path table (added when new)."""
        index = self._index.get(path)
        if index is None:
            index = self._index[path] = len(self.paths)
            self.paths.append(path)
        return index

    def extend(self, path: str, bboxes, labels, scores) -> None:
        """Append the boxes of one image (the held records are copied only when the buffer doubles)."""
        bboxes = np.asarray(bboxes, np.float32).reshape(-1, 4)
        if not len(bboxes):
            return
        start, end = self._size, self._size + len(bboxes)
        self._reserve(end)
        new = self._buffer[start:end]
        new['image'] = self.path_index(path)
        new['bbox'] = bboxes
        new['label'] = np.asarray(labels, np.int64).reshape(-1)
        new['score'] = np.asarray(scores, np.float32).reshape(-1)
        self._size = end

    def extend_table(self, table: dict) -> None:
        """Append the records of another table's :meth:`export` (image indices mapped into this table)."""
        records = np.asarray(table['records'], RECORD_DTYPE)
        if not len(records):
            return
        remap = np.array([self.path_index(p) for p in table['paths']], np.int64)
        start, end = self._size, self._size + len(records)
        self._reserve(end)
        self._buffer[start:end] = records
        self._buffer['image'][start:end] = remap[records['image']]
        self._size = end

    def top_per_class(self, num_classes: int, cap: Optional[int]) -> None:
        """Keep per class the ``cap`` best records in (-score, path, bbox) order; drop unused paths.

        Neither the records kept, their order nor the path table depend on the order the records arrived in,
        so pruning early and often keeps exactly what one pruning at the end would keep, and ranks that merge
        their parts hold the same table as one process that saw everything. Only the records scoring at least
        their class's ``cap``-th best score can be kept; the full order is computed on those alone.
        """
        records = self.records
        if cap == 0:
            records = records[:0]
        elif len(records) and cap is not None:
            labels, scores = records['label'], records['score']
            by_class = np.argsort(labels, kind='stable')
            bounds = np.searchsorted(labels[by_class], np.arange(num_classes + 1))
            threshold = np.full(num_classes, -np.inf, np.float32)  # the cap-th best score of each class
            for k in np.flatnonzero(np.diff(bounds) > cap):
                class_scores = scores[by_class[bounds[k] : bounds[k + 1]]]
                threshold[k] = np.partition(class_scores, len(class_scores) - cap)[len(class_scores) - cap]
            records = records[scores >= threshold[labels]]
        if len(records):
            used = np.unique(records['image'])
            path_rank = np.empty(len(self.paths), np.int64)
            path_rank[used] = np.argsort(np.argsort(np.array([self.paths[i] for i in used], dtype=object)))
            keys = [records['bbox'][:, i] for i in (3, 2, 1, 0)]
            order = np.lexsort(keys + [path_rank[records['image']], -records['score'], records['label']])
            records = records[order]
            if cap is not None:
                starts = np.searchsorted(records['label'], np.arange(num_classes))
                rank_in_class = np.arange(len(records)) - starts[records['label']]
                records = records[rank_in_class < cap]
        # the kept paths in sorted order: the table does not depend on the order the records arrived in
        used = np.unique(records['image'])
        paths = sorted(self.paths[i] for i in used)
        rank = {p: i for i, p in enumerate(paths)}
        remap = np.full(len(self.paths), -1, np.int64)
        remap[used] = [rank[self.paths[i]] for i in used]
        records = records.copy()
        records['image'] = remap[records['image']]
        self.paths = paths
        self._index = rank
        self.records = records

    def export(self) -> dict:
        """The table for the bank file: ``paths`` and the ``records`` structured array (a copy)."""
        return {'paths': list(self.paths), 'records': self.records.copy()}

    def state_dict(self) -> dict:
        """The table as checkpoint state of builtin types and tensors (loadable with ``weights_only=True``).

        Returns:
            dict: ``paths`` (list[str]), ``image`` ((N,) int64), ``bbox`` ((N, 4) float32), ``label``
            ((N,) int64), ``score`` ((N,) float32).
        """
        records = self.records
        state = {'paths': list(self.paths)}
        for field in RECORD_DTYPE.names:
            state[field] = torch.from_numpy(np.ascontiguousarray(records[field]).copy())
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` output (or an :meth:`export`, which has a ``records`` array)."""
        self.paths = list(state['paths'])
        self._index = {p: i for i, p in enumerate(self.paths)}
        if 'records' in state:
            self.records = np.asarray(state['records'], RECORD_DTYPE).copy()
            return
        records = np.zeros(len(state['label']), RECORD_DTYPE)
        for field in RECORD_DTYPE.names:
            records[field] = host_array(state[field])
        self.records = records

    def __len__(self) -> int:
        return self._size


class CropBank:
    """ACRST's CropBank as records, plus the statistics that drive AFFR.

    Args:
        num_classes (int): number of detector classes K.
        label_cap (int, optional): most records per class in the label bank; None (default) keeps every
            ground-truth box of the labeled set, as the paper's label bank.
        pseudo_cap (int): most records per class in the pseudo bank (the best-scoring filtered
            pseudo-labels of the refresh window). Defaults to 1000.
        beta (float): AFFR exponent (0 = plain FBR). Defaults to 0.6.
        pr_form (str): ``'aaai'`` (PR = summed teacher confidences, the published paper, default) or
            ``'v1'`` (PR = pseudo-label count / (r * labeled count), arXiv v1).
        pr_floor (float): added to every PR as a fraction of the largest before mu is computed, so that a
            class with PR 0 does not give the best-recalled class mu = 0 (see :func:`affr_distribution`).
            Defaults to 0: no floor, the paper's mu.
    """

    #: the settings (from the config); everything else in :meth:`state_dict` is data
    SETTINGS = ('num_classes', 'label_cap', 'pseudo_cap', 'beta', 'pr_form', 'pr_floor')

    def __init__(
        self,
        num_classes: int,
        label_cap: Optional[int] = None,
        pseudo_cap: int = 1000,
        beta: float = 0.6,
        pr_form: str = 'aaai',
        pr_floor: float = 0.0,
    ) -> None:
        if num_classes <= 0 or (label_cap is not None and label_cap < 0) or pseudo_cap < 0:
            raise ValueError(
                'CropBank needs num_classes > 0 and caps >= 0 (label_cap None = all), got '
                f'num_classes={num_classes}, label_cap={label_cap}, pseudo_cap={pseudo_cap}'
            )
        if beta < 0:
            raise ValueError(f'CropBankHook.beta must be >= 0 (0 = plain FBR), got {beta}')
        if pr_form not in PR_FORMS:
            raise ValueError(f'CropBankHook.pr_form must be one of {PR_FORMS}, got {pr_form!r}')
        if pr_floor < 0:
            raise ValueError(f'CropBankHook.pr_floor must be >= 0 (0 = no floor, the paper), got {pr_floor}')
        self.num_classes = num_classes
        self.label_cap = label_cap
        self.pseudo_cap = pseudo_cap
        self.beta = beta
        self.pr_form = pr_form
        self.pr_floor = pr_floor
        self.version = 0
        self.label_bank = RecordTable()
        self.pseudo_bank = RecordTable()
        self.labeled_counts = np.zeros(num_classes, dtype=np.int64)
        self.num_labeled_images = 0
        # the current window of teacher statistics (reset at each refresh), the same on every rank
        self.window_confidence = np.zeros(num_classes, dtype=np.float64)
        self.window_counts = np.zeros(num_classes, dtype=np.int64)
        self.window_images = 0
        self.candidates = RecordTable()  # filtered pseudo-labels of the window (best pseudo_cap per class)
        # what this process added since the last :meth:`sync` (its own images only)
        self.pending_confidence = np.zeros(num_classes, dtype=np.float64)
        self.pending_counts = np.zeros(num_classes, dtype=np.int64)
        self.pending_images = 0
        self.pending_candidates = RecordTable()
        self.pr = np.full(num_classes, np.nan)
        self.mu = np.full(num_classes, 1.0 / num_classes)

    # ----- label bank ---------------------------------------------------------------------------------
    def build_label_bank(self, data_infos) -> None:
        """Fill the label bank with the ground-truth boxes of a labeled dataset (no image is read).

        Args:
            data_infos (Iterable[dict]): mmdet data infos (``img_path``, ``instances`` with ``bbox``,
                ``bbox_label``, ``ignore_flag``), in dataset order.
        """
        self.label_bank = RecordTable()
        self.labeled_counts[:] = 0
        self.num_labeled_images = 0
        for info in data_infos:
            self.num_labeled_images += 1
            boxes, labels = [], []
            for inst in info.get('instances', []):
                if inst.get('ignore_flag', 0):
                    continue
                label = int(inst['bbox_label'])
                if not 0 <= label < self.num_classes:
                    raise ValueError(
                        f'{info.get("img_path")}: label {label} outside [0, {self.num_classes}) - the '
                        'dataset classes do not match the detector num_classes'
                    )
                self.labeled_counts[label] += 1
                x1, y1, x2, y2 = inst['bbox']
                if x2 - x1 >= MIN_BOX_SIZE and y2 - y1 >= MIN_BOX_SIZE:
                    boxes.append(inst['bbox'])
                    labels.append(label)
            self.label_bank.extend(info['img_path'], boxes, labels, np.ones(len(labels)))
        if self.label_cap is not None:
            self.label_bank.top_per_class(self.num_classes, self.label_cap)
        self.version += 1

    # ----- teacher statistics and pseudo bank ---------------------------------------------------------
    def add_teacher_records(self, records: list[dict], conf_thr: float = 0.1) -> None:
        """Accumulate one batch of this process's teacher detections on unlabeled images.

        They enter the window at the next :meth:`sync` (or :meth:`refresh`), which in DDP gathers what every
        rank added; nothing is exchanged between processes here.

        Args:
            records (list[dict]): one per unlabeled image: ``img_path`` (str), ``bboxes`` ((N, 4) float, in
                original-image pixels), ``labels`` ((N,) int), ``scores`` ((N,) float), ``kept`` ((N,) bool,
                survived the two-stage filter).
            conf_thr (float): detections at or above it count in the AAAI pseudo-recall. Defaults to 0.1.
        """
        for rec in records:
            labels = np.asarray(rec['labels'], dtype=np.int64).reshape(-1)
            scores = np.asarray(rec['scores'], dtype=np.float64).reshape(-1)
            bboxes = np.asarray(rec['bboxes'], np.float32).reshape(-1, 4)
            confident = scores >= conf_thr
            np.add.at(self.pending_confidence, labels[confident], scores[confident])
            kept = np.asarray(rec['kept'], dtype=bool).reshape(-1)
            np.add.at(self.pending_counts, labels[kept], 1)
            self.pending_images += 1
            wide = (bboxes[:, 2] - bboxes[:, 0] >= MIN_BOX_SIZE) & (
                bboxes[:, 3] - bboxes[:, 1] >= MIN_BOX_SIZE
            )
            sel = kept & wide
            self.pending_candidates.extend(rec['img_path'], bboxes[sel], labels[sel], scores[sel])
        if len(self.pending_candidates) > 2 * self.pseudo_cap * self.num_classes:
            self.pending_candidates.top_per_class(self.num_classes, self.pseudo_cap)  # bounded memory, exact

    def pending_export(self) -> dict:
        """What this process added since the last sync (numpy arrays and builtins, for gathering)."""
        return {
            'confidence': self.pending_confidence.copy(),
            'counts': self.pending_counts.copy(),
            'images': int(self.pending_images),
            'candidates': self.pending_candidates.export(),
        }

    def sync(self, gather: Optional[Callable[[dict], list]] = None) -> None:
        """Move what every process added since the last sync into the window (the same on every rank).

        The best ``pseudo_cap`` candidates per class of a union are among the union of each part's best
        ``pseudo_cap``, and the kept order does not depend on arrival order, so every rank that merges the
        same parts in rank order holds the same window.

        Args:
            gather (Callable, optional): ``all_gather_object``-like: this process's part in, the list of all
                ranks' parts (rank order) out. Defaults to None: a single process.
        """
        part = self.pending_export()
        parts = [part] if gather is None else gather(part)
        for part in parts:
            self.window_confidence += np.asarray(part['confidence'], np.float64)
            self.window_counts += np.asarray(part['counts'], np.int64)
            self.window_images += int(part['images'])
            self.candidates.extend_table(part['candidates'])
        if len(self.candidates) > 2 * self.pseudo_cap * self.num_classes:
            self.candidates.top_per_class(self.num_classes, self.pseudo_cap)
        self.pending_confidence[:] = 0
        self.pending_counts[:] = 0
        self.pending_images = 0
        self.pending_candidates = RecordTable()

    def pseudo_recall(self) -> Optional[np.ndarray]:
        """(K,) PR of the current window in the configured form; None when the window saw no image."""
        if self.window_images == 0:
            return None
        if self.pr_form == 'aaai':
            return pseudo_recall_aaai(torch.from_numpy(self.window_confidence)).double().numpy()
        if self.num_labeled_images == 0:
            return None
        return (
            pseudo_recall_v1(
                torch.from_numpy(self.window_counts),
                self.window_images,
                torch.from_numpy(self.labeled_counts),
                self.num_labeled_images,
            )
            .double()
            .numpy()
        )

    def refresh(self, gather: Optional[Callable[[dict], list]] = None) -> None:
        """Sync, refill the pseudo bank from the window's best candidates, recompute PR and mu, open a new
        window.

        A window without any unlabeled image keeps the previous PR and mu.

        Args:
            gather (Callable, optional): see :meth:`sync`.
        """
        self.sync(gather)
        self.candidates.top_per_class(self.num_classes, self.pseudo_cap)
        self.pseudo_bank = self.candidates
        self.candidates = RecordTable()
        pr = self.pseudo_recall()
        if pr is not None:
            self.pr = pr
            self.mu = affr_distribution(torch.from_numpy(pr), self.beta, self.pr_floor).double().numpy()
        self.window_confidence[:] = 0
        self.window_counts[:] = 0
        self.window_images = 0
        self.version += 1

    # ----- what the paste transform reads ---------------------------------------------------------------
    def sizes(self) -> np.ndarray:
        """(K,) number of records per class over both banks."""
        labels = np.concatenate([self.label_bank.records['label'], self.pseudo_bank.records['label']])
        return np.bincount(labels, minlength=self.num_classes).astype(np.int64)

    def export(self) -> dict:
        """What a paste transform needs: records of both banks with their image paths, mu, version."""
        return {
            'version': self.version,
            'num_classes': self.num_classes,
            'mu': self.mu.copy(),
            'banks': [self.label_bank.export(), self.pseudo_bank.export()],
        }

    def save(self, path: str) -> None:
        """Write :meth:`export` to ``path`` atomically (temporary file + rename), so readers never see half.

        The file starts with the bank version (see :func:`write_bank_file`), so readers reload exactly when
        a new version is published.

        Args:
            path (str): the bank file.
        """
        folder = osp.dirname(osp.abspath(path))
        try:
            os.makedirs(folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix='.cropbank-', dir=folder)
            with os.fdopen(fd, 'wb') as f:
                write_bank_file(f, self.export())
            os.replace(tmp, path)
        except OSError as err:
            raise OSError(
                f'CropBankHook.bank_file: cannot write the CropBank file {path!r} ({err.strerror or err}); '
                'set bank_file to a writable path or fix the work_dir permissions'
            ) from err

    # ----- checkpoint state ----------------------------------------------------------------------------
    #: the per-class arrays of the state (tensors in checkpoints, numpy arrays here)
    ARRAYS = ('labeled_counts', 'window_confidence', 'window_counts', 'pending_confidence', 'pending_counts')
    ARRAYS += ('pr', 'mu')
    TABLES = ('label_bank', 'pseudo_bank', 'candidates', 'pending_candidates')

    def state_dict(self) -> dict:
        """Everything needed to continue training exactly, as builtin types and tensors (copies).

        Checkpoints loaded with ``torch.load(..., weights_only=True)`` accept it: no numpy arrays, no custom
        classes. The ``pending_*`` entries are this process's additions since the last sync (empty when the
        hook synced right before the checkpoint).
        """
        state = {k: copy.copy(getattr(self, k)) for k in self.SETTINGS}
        state.update(
            version=int(self.version),
            num_labeled_images=int(self.num_labeled_images),
            window_images=int(self.window_images),
            pending_images=int(self.pending_images),
        )
        for key in self.ARRAYS:
            state[key] = torch.from_numpy(np.array(getattr(self, key)))
        for key in self.TABLES:
            state[key] = getattr(self, key).state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore the data of :meth:`state_dict` output; the settings stay this bank's (the config's).

        The class count must match. Other settings that differ from the checkpoint's are reported. Additions
        the saving process had not synced yet join the window (every rank loads the same checkpoint, so they
        count once).
        """
        if int(state['num_classes']) != self.num_classes:
            raise ValueError(
                f'checkpoint CropBank has {state["num_classes"]} classes but the detector has '
                f'{self.num_classes}: resume with the config the checkpoint was trained with'
            )
        changed = [
            f'{k}: {state[k]!r} -> {getattr(self, k)!r}'
            for k in self.SETTINGS
            if state.get(k) != getattr(self, k)
        ]
        if changed:
            print_log(
                f'CropBank: settings differ from the checkpoint, the config wins ({changed})',
                logger='current',
            )
        for key in self.TABLES:
            table = RecordTable()
            if key in state:
                table.load_state_dict(state[key])
            setattr(self, key, table)
        for key in self.ARRAYS:
            if key in state:
                setattr(self, key, host_array(state[key], getattr(self, key).dtype).copy())
        self.version = int(state['version'])
        self.num_labeled_images = int(state['num_labeled_images'])
        self.window_images = int(state['window_images'])
        self.pending_images = int(state.get('pending_images', 0))
        self.sync()


def rank_bank_file(path: str, rank: int, world_size: int) -> str:
    """The bank file of one rank: ``path`` itself in a single process, ``<stem>.rank<r><ext>`` in DDP.

    Every rank writes and reads its own copy (the banks are equal), so ranks on other nodes never depend on
    a shared ``work_dir``.
    """
    if world_size <= 1:
        return path
    stem, ext = osp.splitext(path)
    return f'{stem}.rank{rank}{ext}'
