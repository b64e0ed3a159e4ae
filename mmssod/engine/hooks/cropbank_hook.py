"""ACRST's CropBank (foreground instance records) and the hook that keeps it up to date.

The *label bank* holds every ground-truth box of the labeled set; the *pseudo bank* is refilled every
``refresh_interval`` iterations from the teacher's filtered pseudo-labels on unlabeled images. An entry is a
record ``(image, box, class, score)``, not pixels: the paste transform crops the box out of its image inside
the dataloader worker at paste time, at full resolution. The bank therefore covers the whole labeled set and
a large pseudo bank with flat memory (a few dozen bytes per instance). The hook also accumulates per-class
teacher statistics, from which the pseudo-recall PR and the AFFR distribution mu are computed
(:mod:`mmssod.models.acrst.functional`).

Dataloader workers cannot see the model or the hook, so every rank publishes the bank as a file of its own
(written atomically, with a version number) that the :class:`~mmssod.datasets.transforms.ACRSTPaste`
transform of that rank's workers reloads whenever it changes. In DDP every rank gathers the records of all
ranks (``torch.distributed``) and applies the same deterministic update, so all ranks hold the same bank and
no file has to be shared between nodes. The bank is saved in checkpoints and restored exactly on
``--resume``; ``load_from`` (fine-tuning from weights) starts a new bank.
"""

from __future__ import annotations

import copy
import json
import os
import os.path as osp
import tempfile
from typing import Optional

import numpy as np
import torch
from mmdet.registry import HOOKS
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

# importing the transform module also registers ACRSTPaste (the hook and the transform work as a pair)
from ...datasets.transforms.acrst_paste import (
    CROPBANK_ENV,
    RECORD_DTYPE,
    read_bank_version,
    write_bank_file,
)
from ...models.acrst.functional import PR_FORMS, affr_distribution, pseudo_recall_aaai, pseudo_recall_v1

#: Boxes narrower or lower than this (pixels) are not stored: nothing to paste.
MIN_BOX_SIZE = 2.0


class RecordTable:
    """Records ``(image, bbox, label, score)`` with a table of image paths (the unit of both banks).

    ``records`` is a numpy structured array of :data:`RECORD_DTYPE`; ``records['image']`` indexes ``paths``.
    """

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.records = np.zeros(0, RECORD_DTYPE)
        self._index: dict[str, int] = {}

    def path_index(self, path: str) -> int:
        """Index of ``path`` in the path table (added when new)."""
        index = self._index.get(path)
        if index is None:
            index = self._index[path] = len(self.paths)
            self.paths.append(path)
        return index

    def extend(self, path: str, bboxes, labels, scores) -> None:
        """Append the boxes of one image."""
        bboxes = np.asarray(bboxes, np.float32).reshape(-1, 4)
        if not len(bboxes):
            return
        new = np.zeros(len(bboxes), RECORD_DTYPE)
        new['image'] = self.path_index(path)
        new['bbox'] = bboxes
        new['label'] = np.asarray(labels, np.int64).reshape(-1)
        new['score'] = np.asarray(scores, np.float32).reshape(-1)
        self.records = np.concatenate([self.records, new])

    def top_per_class(self, num_classes: int, cap: Optional[int]) -> None:
        """Keep per class the ``cap`` best records in (-score, path, bbox) order; drop unused paths.

        The order does not depend on the order the records arrived in, so pruning early and often keeps
        exactly what one pruning at the end would keep.
        """
        records = self.records
        if len(records):
            path_rank = np.argsort(np.argsort(np.array(self.paths, dtype=object)))  # rank of each path string
            keys = [records['bbox'][:, i] for i in (3, 2, 1, 0)]
            order = np.lexsort(keys + [path_rank[records['image']], -records['score'], records['label']])
            records = records[order]
            if cap is not None:
                starts = np.searchsorted(records['label'], np.arange(num_classes))
                rank_in_class = np.arange(len(records)) - starts[records['label']]
                records = records[rank_in_class < cap]
        used = np.unique(records['image'])
        remap = np.full(len(self.paths), -1, np.int64)
        remap[used] = np.arange(len(used))
        records = records.copy()
        records['image'] = remap[records['image']]
        self.paths = [self.paths[i] for i in used]
        self._index = {p: i for i, p in enumerate(self.paths)}
        self.records = records

    def export(self) -> dict:
        return {'paths': list(self.paths), 'records': self.records.copy()}

    def load(self, state: dict) -> None:
        self.paths = list(state['paths'])
        self._index = {p: i for i, p in enumerate(self.paths)}
        self.records = np.asarray(state['records'], RECORD_DTYPE).copy()

    def __len__(self) -> int:
        return len(self.records)


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
    """

    #: the settings (from the config); everything else in :meth:`state_dict` is data
    SETTINGS = ('num_classes', 'label_cap', 'pseudo_cap', 'beta', 'pr_form')

    def __init__(
        self,
        num_classes: int,
        label_cap: Optional[int] = None,
        pseudo_cap: int = 1000,
        beta: float = 0.6,
        pr_form: str = 'aaai',
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
        self.num_classes = num_classes
        self.label_cap = label_cap
        self.pseudo_cap = pseudo_cap
        self.beta = beta
        self.pr_form = pr_form
        self.version = 0
        self.label_bank = RecordTable()
        self.pseudo_bank = RecordTable()
        self.labeled_counts = np.zeros(num_classes, dtype=np.int64)
        self.num_labeled_images = 0
        # the current window of teacher statistics (reset at each refresh)
        self.window_confidence = np.zeros(num_classes, dtype=np.float64)
        self.window_counts = np.zeros(num_classes, dtype=np.int64)
        self.window_images = 0
        self.candidates = RecordTable()  # filtered pseudo-labels of the window (best pseudo_cap per class)
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
        """Accumulate one batch of teacher detections on unlabeled images.

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
            np.add.at(self.window_confidence, labels[confident], scores[confident])
            kept = np.asarray(rec['kept'], dtype=bool).reshape(-1)
            np.add.at(self.window_counts, labels[kept], 1)
            self.window_images += 1
            wide = (bboxes[:, 2] - bboxes[:, 0] >= MIN_BOX_SIZE) & (
                bboxes[:, 3] - bboxes[:, 1] >= MIN_BOX_SIZE
            )
            sel = kept & wide
            self.candidates.extend(rec['img_path'], bboxes[sel], labels[sel], scores[sel])
        if len(self.candidates) > 2 * self.pseudo_cap * self.num_classes:
            self.candidates.top_per_class(self.num_classes, self.pseudo_cap)  # bounded memory, exact

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

    def refresh(self) -> None:
        """Refill the pseudo bank from the window's best candidates, recompute PR and mu, open a new window.

        A window without any unlabeled image keeps the previous PR and mu.
        """
        self.candidates.top_per_class(self.num_classes, self.pseudo_cap)
        self.pseudo_bank = self.candidates
        self.candidates = RecordTable()
        pr = self.pseudo_recall()
        if pr is not None:
            self.pr = pr
            self.mu = affr_distribution(torch.from_numpy(pr), self.beta).double().numpy()
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
    def state_dict(self) -> dict:
        """Everything needed to continue training exactly (deep copy)."""
        state = {k: getattr(self, k) for k in self.SETTINGS}
        for key in ('version', 'labeled_counts', 'num_labeled_images', 'window_confidence', 'window_counts'):
            state[key] = getattr(self, key)
        state.update(
            window_images=self.window_images,
            pr=self.pr,
            mu=self.mu,
            label_bank=self.label_bank.export(),
            pseudo_bank=self.pseudo_bank.export(),
            candidates=self.candidates.export(),
        )
        return copy.deepcopy(state)

    def load_state_dict(self, state: dict) -> None:
        """Restore the data of :meth:`state_dict` output; the settings stay this bank's (the config's).

        The class count must match. Other settings that differ from the checkpoint's are reported.
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
        state = copy.deepcopy(state)
        for key in ('label_bank', 'pseudo_bank', 'candidates'):
            table = RecordTable()
            table.load(state[key])
            setattr(self, key, table)
        for key in ('version', 'labeled_counts', 'num_labeled_images', 'window_confidence', 'window_counts'):
            setattr(self, key, state[key])
        self.window_images = int(state['window_images'])
        self.pr, self.mu = state['pr'], state['mu']


def rank_bank_file(path: str, rank: int, world_size: int) -> str:
    """The bank file of one rank: ``path`` itself in a single process, ``<stem>.rank<r><ext>`` in DDP.

    Every rank writes and reads its own copy (the banks are equal), so ranks on other nodes never depend on
    a shared ``work_dir``.
    """
    if world_size <= 1:
        return path
    stem, ext = osp.splitext(path)
    return f'{stem}.rank{rank}{ext}'


@HOOKS.register_module()
class CropBankHook(Hook):
    """Build and refresh ACRST's CropBank, publish it to the paste transform, keep it in checkpoints.

    The model must be an :class:`~mmssod.models.acrst.ACRST` detector (it records the teacher's detections
    on unlabeled images for this hook). Before training the hook also has the detector check its SSMLL scores
    file against the dataset (classes, image ids, file names).

    Args:
        bank_file (str, optional): where the bank file is written. Defaults to None:
            ``<work_dir>/cropbank/cropbank.pkl`` (``cropbank.rank<r>.pkl`` per rank in DDP). Paste transforms
            with ``bank_file=None`` find it through the ``MMSSOD_CROPBANK_FILE`` environment variable set by
            this hook.
        label_cap (int, optional): records per class in the label bank. Defaults to None: every ground-truth
            box of the labeled set.
        pseudo_cap (int): records per class in the pseudo bank. Defaults to 1000.
        refresh_interval (int): iterations between pseudo-bank / mu refreshes. Defaults to 100.
        beta (float): AFFR exponent; 0 gives plain FBR (uniform classes). Defaults to 0.6.
        conf_thr (float): teacher detections at or above it enter the AAAI pseudo-recall. Defaults to 0.1.
        pr_form (str): pseudo-recall form, ``'aaai'`` (default) or ``'v1'``.
        labeled_dataset_index (int): index of the labeled dataset inside the train ConcatDataset.
            Defaults to 0.
        unlabeled_dataset_index (int): index of the unlabeled dataset. Defaults to 1.
    """

    priority = 'NORMAL'

    def __init__(
        self,
        bank_file: Optional[str] = None,
        label_cap: Optional[int] = None,
        pseudo_cap: int = 1000,
        refresh_interval: int = 100,
        beta: float = 0.6,
        conf_thr: float = 0.1,
        pr_form: str = 'aaai',
        labeled_dataset_index: int = 0,
        unlabeled_dataset_index: int = 1,
    ) -> None:
        if refresh_interval <= 0:
            raise ValueError(f'CropBankHook.refresh_interval must be > 0, got {refresh_interval}')
        if beta < 0:
            raise ValueError(f'CropBankHook.beta must be >= 0 (0 = plain FBR), got {beta}')
        if not 0 <= conf_thr <= 1:
            raise ValueError(f'CropBankHook.conf_thr must be in [0, 1], got {conf_thr}')
        if pr_form not in PR_FORMS:
            raise ValueError(f'CropBankHook.pr_form must be one of {PR_FORMS}, got {pr_form!r}')
        if label_cap is not None and label_cap < 0 or pseudo_cap < 0:
            raise ValueError(
                f'CropBankHook.label_cap / pseudo_cap must be >= 0, got {label_cap}, {pseudo_cap}'
            )
        self.bank_file = bank_file
        self.bank_kwargs = dict(label_cap=label_cap, pseudo_cap=pseudo_cap, beta=beta, pr_form=pr_form)
        self.refresh_interval = refresh_interval
        self.conf_thr = conf_thr
        self.labeled_dataset_index = labeled_dataset_index
        self.unlabeled_dataset_index = unlabeled_dataset_index
        self.bank: Optional[CropBank] = None
        self._resume_state: Optional[dict] = None
        self.history: list[dict] = []  # PR / mu / sizes at each refresh of this run (stats.json)

    @staticmethod
    def _model(runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'pop_cropbank_records'):
            raise TypeError(
                f'CropBankHook needs an ACRST detector (model type {type(model).__name__} does not record '
                "teacher detections): set model.type='ACRST' or remove the hook"
            )
        return model

    def _new_bank(self, runner) -> CropBank:
        num_classes = self._model(runner).student.roi_head.bbox_head.num_classes
        return CropBank(num_classes, **self.bank_kwargs)

    def _dataset(self, runner, index: int):
        dataset = runner.train_dataloader.dataset
        if hasattr(dataset, 'datasets'):
            return dataset.datasets[index] if index < len(dataset.datasets) else None
        return dataset if index == self.labeled_dataset_index else None

    def _own_bank_file(self) -> str:
        return rank_bank_file(self.bank_file, get_rank(), get_world_size())

    def _publish(self) -> None:
        """Every rank writes its own bank file and reads the version back (its workers read that file)."""
        path = self._own_bank_file()
        self.bank.save(path)
        if read_bank_version(path) != self.bank.version:
            raise RuntimeError(
                f'CropBankHook.bank_file: rank {get_rank()} wrote {path!r} but cannot read version '
                f'{self.bank.version} back; set bank_file to a local writable path'
            )

    def before_train(self, runner) -> None:
        """Check the SSMLL scores against the data, build the label bank (unless resumed), publish it."""
        model = self._model(runner)
        labeled = self._dataset(runner, self.labeled_dataset_index)
        unlabeled = self._dataset(runner, self.unlabeled_dataset_index)
        model.check_ml_scores(
            labeled.metainfo.get('classes'),
            None if unlabeled is None else [unlabeled.get_data_info(i) for i in range(len(unlabeled))],
        )
        if self.bank_file is None:
            self.bank_file = osp.join(runner.work_dir, 'cropbank', 'cropbank.pkl')
        self.bank = self._new_bank(runner)
        if self._resume_state is not None:
            self.bank.load_state_dict(self._resume_state)
            self._resume_state = None
            print_log(
                f'CropBank: restored v{self.bank.version} from the resumed checkpoint', logger='current'
            )
        else:
            self.bank.build_label_bank(labeled.get_data_info(i) for i in range(len(labeled)))
            print_log(
                f'CropBank: label bank from {self.bank.num_labeled_images} labeled images, '
                f'records per class {self.bank.sizes().tolist()}',
                logger='current',
            )
        self._publish()
        own = osp.abspath(self._own_bank_file())
        if os.environ.get(CROPBANK_ENV) != own:
            os.environ[CROPBANK_ENV] = own
            self._restart_workers(runner)

    @staticmethod
    def _restart_workers(runner) -> None:
        """Restart train dataloader workers forked before the bank location was known (once per run)."""
        loop = runner.train_loop
        loader = getattr(loop, 'dataloader', None)
        if loader is None or loader.num_workers == 0 or not hasattr(loop, 'dataloader_iterator'):
            return
        old = getattr(loader, '_iterator', None)
        loader._iterator = None  # persistent workers: force new ones, which inherit the environment
        if old is not None and hasattr(old, '_shutdown_workers'):
            old._shutdown_workers()
        loop.dataloader_iterator = type(loop.dataloader_iterator)(loader)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        """Gather this iteration's teacher records from all ranks, update, refresh every N iterations."""
        records = self._model(runner).pop_cropbank_records()
        if get_world_size() > 1:
            records = [rec for rank_records in all_gather_object(records) for rec in rank_records]
        self.bank.add_teacher_records(records, self.conf_thr)
        if (runner.iter + 1) % self.refresh_interval == 0:
            self.bank.refresh()
            self._publish()
            runner.message_hub.update_info('cropbank_version', self.bank.version)
            self.history.append(
                {
                    'iter': runner.iter + 1,
                    'pr': [None if np.isnan(v) else float(v) for v in self.bank.pr],
                    'mu': self.bank.mu.tolist(),
                    'sizes': self.bank.sizes().tolist(),
                }
            )
            print_log(
                f'CropBank v{self.bank.version}: records per class {self.bank.sizes().tolist()}, '
                f'PR ({self.bank.pr_form}) {np.round(self.bank.pr, 3).tolist()}, '
                f'mu {np.round(self.bank.mu, 3).tolist()}',
                logger='current',
            )

    def after_train(self, runner) -> None:
        """Write ``<bank folder>/stats.json`` (rank 0): PR / mu / bank sizes per refresh and the class
        histograms of pasted instances and pseudo-labels the student learnt from (rank 0's batches)."""
        if get_rank() != 0 or self.bank is None:
            return
        model = self._model(runner)
        stats = {
            'beta': self.bank.beta,
            'pr_form': self.bank.pr_form,
            'refreshes': self.history,
            'pasted_class_counts': model.pasted_class_counts.tolist(),
            'pseudo_class_counts': model.pseudo_class_counts.tolist(),
        }
        with open(osp.join(osp.dirname(osp.abspath(self.bank_file)), 'stats.json'), 'w') as f:
            json.dump(stats, f, indent=1)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Store the whole bank (records, statistics, pending candidates, version)."""
        if self.bank is not None:
            checkpoint['cropbank'] = self.bank.state_dict()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep the saved bank for :meth:`before_train` on ``--resume`` only.

        ``load_from`` without ``--resume`` loads weights to fine-tune from: the bank then starts anew from
        this run's labeled set and settings.
        """
        if 'cropbank' not in checkpoint:
            return
        if getattr(runner, '_resume', False):
            self._resume_state = checkpoint['cropbank']
        else:
            print_log(
                'CropBank: load_from (not --resume): the checkpoint bank is not restored', logger='current'
            )
