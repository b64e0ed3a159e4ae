"""ACRST's CropBank (a bounded memory of foreground crops) and the hook that keeps it up to date.

The *label bank* is built once from the ground-truth boxes of the labeled set; the *pseudo bank* is refilled
every ``refresh_interval`` iterations from the teacher's filtered pseudo-labels on unlabeled images. The hook
also accumulates per-class teacher confidences, from which the pseudo-recall PR and the AFFR distribution mu
are computed (:mod:`mmssod.models.acrst.functional`).

Dataloader workers cannot see the model or the hook, so the hook publishes the bank as a file (written
atomically by rank 0, with a version number) that the :class:`~mmssod.datasets.transforms.ACRSTPaste`
transform reloads whenever it changes. In DDP every rank gathers the records of all ranks and applies the
same deterministic update, so all ranks hold the same bank. The bank is saved in checkpoints and restored
exactly on ``--resume``.
"""

from __future__ import annotations

import copy
import os
import os.path as osp
import tempfile
from typing import Optional

import mmcv
import numpy as np
import torch
from mmdet.registry import HOOKS
from mmengine.dist import all_gather_object, barrier, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

# importing the transform module also registers ACRSTPaste (the hook and the transform work as a pair)
from ...datasets.transforms.acrst_paste import CROPBANK_ENV, write_bank_file
from ...models.acrst.functional import affr_distribution, pseudo_recall


def crop_instance(img: np.ndarray, box, max_size: int) -> Optional[np.ndarray]:
    """Cut the rectangle under ``box`` out of ``img``, shrunk so its longer side is at most ``max_size``.

    Args:
        img (np.ndarray): (H, W, 3) uint8 image.
        box (Sequence[float]): (x1, y1, x2, y2) in pixels of ``img``.
        max_size (int): longest side of the stored crop.

    Returns:
        np.ndarray | None: (h, w, 3) uint8 crop, None when the box is empty inside the image.
    """
    height, width = img.shape[:2]
    x1, y1 = max(int(np.floor(box[0])), 0), max(int(np.floor(box[1])), 0)
    x2, y2 = min(int(np.ceil(box[2])), width), min(int(np.ceil(box[3])), height)
    if x2 - x1 < 2 or y2 - y1 < 2:
        return None
    crop = np.ascontiguousarray(img[y1:y2, x1:x2])
    longest = max(crop.shape[:2])
    if longest > max_size:
        crop = mmcv.imrescale(crop, max_size / longest)
    return crop


class CropBank:
    """Per-class bounded memory of foreground crops plus the statistics that drive AFFR.

    Args:
        num_classes (int): number of detector classes K.
        label_cap (int): most crops per class in the label bank. Defaults to 50.
        pseudo_cap (int): most crops per class in the pseudo bank. Defaults to 50.
        crop_max_size (int): longest side of a stored crop in pixels (bounds memory). Defaults to 128.
        beta (float): AFFR exponent (0 = plain FBR). Defaults to 0.6.
        pr_eps (float): lower clip of the pseudo-recall. Defaults to 1e-3.
    """

    def __init__(
        self,
        num_classes: int,
        label_cap: int = 50,
        pseudo_cap: int = 50,
        crop_max_size: int = 128,
        beta: float = 0.6,
        pr_eps: float = 1e-3,
    ) -> None:
        if num_classes <= 0 or label_cap < 0 or pseudo_cap < 0 or crop_max_size < 4:
            raise ValueError(
                'CropBank needs num_classes > 0, caps >= 0 and crop_max_size >= 4, got '
                f'num_classes={num_classes}, label_cap={label_cap}, pseudo_cap={pseudo_cap}, '
                f'crop_max_size={crop_max_size}'
            )
        self.num_classes = num_classes
        self.label_cap = label_cap
        self.pseudo_cap = pseudo_cap
        self.crop_max_size = crop_max_size
        self.beta = beta
        self.pr_eps = pr_eps
        self.version = 0
        self.label_bank: list[list[dict]] = [[] for _ in range(num_classes)]
        self.pseudo_bank: list[list[dict]] = [[] for _ in range(num_classes)]
        self.labeled_counts = np.zeros(num_classes, dtype=np.int64)
        self.num_labeled_images = 0
        # the current window of teacher statistics (reset at each refresh)
        self.window_confidence = np.zeros(num_classes, dtype=np.float64)
        self.window_counts = np.zeros(num_classes, dtype=np.int64)
        self.window_images = 0
        self.candidates: list[dict] = []  # filtered pseudo-labels waiting to be cropped at the next refresh
        self.pr = np.full(num_classes, np.nan)
        self.mu = np.full(num_classes, 1.0 / num_classes)

    # ----- label bank ---------------------------------------------------------------------------------
    def build_label_bank(self, data_infos, max_images: Optional[int] = None) -> None:
        """Fill the label bank from a labeled dataset's ground truth (class counts from every instance).

        Args:
            data_infos (Iterable[dict]): mmdet data infos (``img_path``, ``instances`` with ``bbox``,
                ``bbox_label``, ``ignore_flag``), in dataset order.
            max_images (int, optional): stop reading images after this many (counts still use all).
        """
        self.label_bank = [[] for _ in range(self.num_classes)]
        self.labeled_counts[:] = 0
        self.num_labeled_images = 0
        for index, info in enumerate(data_infos):
            self.num_labeled_images += 1
            wanted = []
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
                if len(self.label_bank[label]) + sum(w[0] == label for w in wanted) < self.label_cap:
                    wanted.append((label, inst['bbox']))
            if wanted and (max_images is None or index < max_images):
                img = mmcv.imread(info['img_path'], channel_order='bgr')
                if img is None:
                    raise FileNotFoundError(f'CropBank: cannot read labeled image {info["img_path"]}')
                for label, box in wanted:
                    crop = crop_instance(img, box, self.crop_max_size)
                    if crop is not None:
                        self.label_bank[label].append({'crop': crop, 'label': label, 'score': 1.0})
        self.version += 1

    # ----- teacher statistics and pseudo bank ---------------------------------------------------------
    def add_teacher_records(self, records: list[dict], conf_thr: float = 0.1) -> None:
        """Accumulate one batch of teacher detections on unlabeled images.

        Args:
            records (list[dict]): one per unlabeled image: ``img_path`` (str), ``bboxes`` ((N, 4) float, in
                original-image pixels), ``labels`` ((N,) int), ``scores`` ((N,) float), ``kept`` ((N,) bool,
                survived the two-stage filter).
            conf_thr (float): detections at or above it count in the PR statistics. Defaults to 0.1.
        """
        for rec in records:
            labels = np.asarray(rec['labels'], dtype=np.int64)
            scores = np.asarray(rec['scores'], dtype=np.float64)
            confident = scores >= conf_thr
            np.add.at(self.window_confidence, labels[confident], scores[confident])
            kept = np.asarray(rec['kept'], dtype=bool)
            np.add.at(self.window_counts, labels[kept], 1)
            self.window_images += 1
            for box, label, score in zip(np.asarray(rec['bboxes'])[kept], labels[kept], scores[kept]):
                self.candidates.append(
                    {
                        'img_path': rec['img_path'],
                        'bbox': [float(v) for v in box],
                        'label': int(label),
                        'score': float(score),
                    }
                )
        self._prune_candidates(4)

    def _prune_candidates(self, factor: int) -> None:
        """Keep at most ``factor * pseudo_cap`` highest-scoring candidates per class (bounded memory)."""
        limit = max(factor * self.pseudo_cap, 0)
        per_class: list[list[dict]] = [[] for _ in range(self.num_classes)]
        for cand in self.candidates:
            per_class[cand['label']].append(cand)
        self.candidates = []
        for cands in per_class:
            cands.sort(key=lambda c: (-c['score'], c['img_path'], c['bbox']))
            self.candidates.extend(cands[:limit])

    def refresh(self) -> None:
        """Refill the pseudo bank from the window's top candidates, recompute PR and mu, open a new window."""
        self._prune_candidates(1)
        bank: list[list[dict]] = [[] for _ in range(self.num_classes)]
        by_image: dict[str, list[dict]] = {}
        for cand in self.candidates:
            by_image.setdefault(cand['img_path'], []).append(cand)
        for img_path in sorted(by_image):
            img = mmcv.imread(img_path, channel_order='bgr')
            if img is None:
                raise FileNotFoundError(f'CropBank: cannot read unlabeled image {img_path}')
            for cand in by_image[img_path]:
                crop = crop_instance(img, cand['bbox'], self.crop_max_size)
                if crop is not None:
                    bank[cand['label']].append({'crop': crop, 'label': cand['label'], 'score': cand['score']})
        for entries in bank:
            entries.sort(key=lambda e: -e['score'])
        self.pseudo_bank = bank
        if self.num_labeled_images > 0:
            pr = pseudo_recall(
                torch.from_numpy(self.window_confidence),
                self.window_images,
                torch.from_numpy(self.labeled_counts),
                self.num_labeled_images,
                eps=self.pr_eps,
            )
            self.pr = pr.double().numpy()
            self.mu = affr_distribution(pr, self.beta).double().numpy()
        self.window_confidence[:] = 0
        self.window_counts[:] = 0
        self.window_images = 0
        self.candidates = []
        self.version += 1

    # ----- what the paste transform reads ---------------------------------------------------------------
    def entries(self, label: int) -> list[dict]:
        """All crops of class ``label`` (label bank first, then pseudo bank)."""
        return self.label_bank[label] + self.pseudo_bank[label]

    def sizes(self) -> np.ndarray:
        """(K,) number of crops per class over both banks."""
        return np.array([len(self.entries(k)) for k in range(self.num_classes)], dtype=np.int64)

    def export(self) -> dict:
        """The part of the bank a paste transform needs (crops, labels, mu, version)."""
        return {
            'version': self.version,
            'num_classes': self.num_classes,
            'mu': self.mu.copy(),
            'crops': [[e['crop'] for e in self.entries(k)] for k in range(self.num_classes)],
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
        keys = (
            'num_classes',
            'label_cap',
            'pseudo_cap',
            'crop_max_size',
            'beta',
            'pr_eps',
            'version',
            'label_bank',
            'pseudo_bank',
            'labeled_counts',
            'num_labeled_images',
            'window_confidence',
            'window_counts',
            'window_images',
            'candidates',
            'pr',
            'mu',
        )
        return copy.deepcopy({k: getattr(self, k) for k in keys})

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` output; the class count must match."""
        if int(state['num_classes']) != self.num_classes:
            raise ValueError(
                f'checkpoint CropBank has {state["num_classes"]} classes but the detector has '
                f'{self.num_classes}: resume with the config the checkpoint was trained with'
            )
        for key, value in copy.deepcopy(state).items():
            setattr(self, key, value)


@HOOKS.register_module()
class CropBankHook(Hook):
    """Build and refresh ACRST's CropBank, publish it to the paste transform, keep it in checkpoints.

    The model must be an :class:`~mmssod.models.acrst.ACRST` detector (it records the teacher's detections
    on unlabeled images for this hook).

    Args:
        bank_file (str, optional): where the bank file is written. Defaults to None:
            ``<work_dir>/cropbank/cropbank.pkl``. Paste transforms with ``bank_file=None`` find it through
            the ``MMSSOD_CROPBANK_FILE`` environment variable set by this hook.
        label_cap (int): crops per class in the label bank. Defaults to 50.
        pseudo_cap (int): crops per class in the pseudo bank. Defaults to 50.
        crop_max_size (int): longest side of a stored crop. Defaults to 128.
        refresh_interval (int): iterations between pseudo-bank / mu refreshes. Defaults to 100.
        beta (float): AFFR exponent; 0 gives plain FBR (uniform classes). Defaults to 0.6.
        conf_thr (float): teacher detections at or above it enter the PR statistics. Defaults to 0.1.
        labeled_dataset_index (int): index of the labeled dataset inside the train ConcatDataset.
            Defaults to 0.
    """

    priority = 'NORMAL'

    def __init__(
        self,
        bank_file: Optional[str] = None,
        label_cap: int = 50,
        pseudo_cap: int = 50,
        crop_max_size: int = 128,
        refresh_interval: int = 100,
        beta: float = 0.6,
        conf_thr: float = 0.1,
        labeled_dataset_index: int = 0,
    ) -> None:
        if refresh_interval <= 0:
            raise ValueError(f'CropBankHook.refresh_interval must be > 0, got {refresh_interval}')
        if beta < 0:
            raise ValueError(f'CropBankHook.beta must be >= 0 (0 = plain FBR), got {beta}')
        if not 0 <= conf_thr <= 1:
            raise ValueError(f'CropBankHook.conf_thr must be in [0, 1], got {conf_thr}')
        self.bank_file = bank_file
        self.bank_kwargs = dict(
            label_cap=label_cap, pseudo_cap=pseudo_cap, crop_max_size=crop_max_size, beta=beta
        )
        self.refresh_interval = refresh_interval
        self.conf_thr = conf_thr
        self.labeled_dataset_index = labeled_dataset_index
        self.bank: Optional[CropBank] = None
        self._restored = False

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

    def _labeled_dataset(self, runner):
        dataset = runner.train_dataloader.dataset
        if hasattr(dataset, 'datasets'):
            dataset = dataset.datasets[self.labeled_dataset_index]
        return dataset

    def _publish(self, runner) -> None:
        """Rank 0 writes the bank file; every rank waits so that its workers can read it."""
        if get_rank() == 0:
            self.bank.save(self.bank_file)
        barrier()

    def before_train(self, runner) -> None:
        """Check the SSMLL scores' classes, build the label bank (unless restored), publish, tell workers."""
        self._model(runner).check_dataset_classes(self._labeled_dataset(runner).metainfo.get('classes'))
        if self.bank_file is None:
            self.bank_file = osp.join(runner.work_dir, 'cropbank', 'cropbank.pkl')
        if self.bank is None or not self._restored:
            self.bank = self._new_bank(runner)
            dataset = self._labeled_dataset(runner)
            self.bank.build_label_bank(dataset.get_data_info(i) for i in range(len(dataset)))
            print_log(
                f'CropBank: label bank from {self.bank.num_labeled_images} labeled images, '
                f'crops per class {self.bank.sizes().tolist()}',
                logger='current',
            )
        self._publish(runner)
        if os.environ.get(CROPBANK_ENV) != osp.abspath(self.bank_file):
            os.environ[CROPBANK_ENV] = osp.abspath(self.bank_file)
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
            self._publish(runner)
            runner.message_hub.update_info('cropbank_version', self.bank.version)
            print_log(
                f'CropBank v{self.bank.version}: crops per class {self.bank.sizes().tolist()}, '
                f'PR {np.round(self.bank.pr, 3).tolist()}, mu {np.round(self.bank.mu, 3).tolist()}',
                logger='current',
            )

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Store the whole bank (crops, statistics, pending candidates, version)."""
        if self.bank is not None:
            checkpoint['cropbank'] = self.bank.state_dict()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Restore the bank saved by :meth:`before_save_checkpoint` (``--resume``)."""
        if 'cropbank' not in checkpoint:
            return
        self.bank = self._new_bank(runner)
        self.bank.load_state_dict(checkpoint['cropbank'])
        self._restored = True
