"""The hook that builds ACRST's CropBank (:mod:`mmssod.datasets.cropbank`), refreshes and publishes it.

The label bank is built before training from the labeled set; the pseudo bank, PR and mu are refreshed every
``refresh_interval`` iterations from the teacher's detections on unlabeled images.

Dataloader workers cannot see the model or the hook, so every rank publishes the bank as a file of its own
(written atomically, with a version number) that the :class:`~mmssod.datasets.transforms.ACRSTPaste`
transform of that rank's workers reloads whenever it changes. In DDP each rank accumulates the teacher
records of its own images; at each refresh (and at each iteration a ``CheckpointHook`` saves) every rank
gathers what all ranks added (``torch.distributed``, one exchange) and applies the same deterministic update,
so all ranks hold the same bank and no file has to be shared between nodes. Other iterations exchange
nothing. The bank is saved in checkpoints and restored exactly on
``--resume``; ``load_from`` (fine-tuning from weights) starts a new bank.
"""

from __future__ import annotations

import json
import os
import os.path as osp
from typing import Optional

import numpy as np
import torch
from mmdet.registry import HOOKS
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from ...datasets.cropbank import CROPBANK_ENV, PR_FORMS, CropBank, rank_bank_file, read_bank_version
from ...datasets.transforms.acrst_paste import check_pasted_meta_keys


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
        pr_floor (float): a floor on PR relative to the largest (``PR + pr_floor * max PR``) before mu is
            computed, so that a class never detected (PR 0) does not leave the best-recalled class with
            mu = 0 (never pasted). Defaults to 0: the paper's mu, no floor.
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
        pr_floor: float = 0.0,
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
        if pr_floor < 0:
            raise ValueError(f'CropBankHook.pr_floor must be >= 0 (0 = no floor, the paper), got {pr_floor}')
        if label_cap is not None and label_cap < 0 or pseudo_cap < 0:
            raise ValueError(
                f'CropBankHook.label_cap / pseudo_cap must be >= 0, got {label_cap}, {pseudo_cap}'
            )
        self.bank_file = bank_file
        self.bank_kwargs = dict(
            label_cap=label_cap, pseudo_cap=pseudo_cap, beta=beta, pr_form=pr_form, pr_floor=pr_floor
        )
        self.refresh_interval = refresh_interval
        self.conf_thr = conf_thr
        self.labeled_dataset_index = labeled_dataset_index
        self.unlabeled_dataset_index = unlabeled_dataset_index
        self.bank: Optional[CropBank] = None
        self._resume_state: Optional[dict] = None
        self._resume_stats: Optional[dict] = None
        self._checkpoint_bank_unused = False  # a checkpoint with a bank was loaded without --resume
        self.history: list[dict] = []  # PR / mu / sizes at each refresh (stats.json), kept across resumes

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
        """Check the unlabeled pipeline and the SSMLL scores against the data, build the label bank (unless
        resumed), publish it."""
        model = self._model(runner)
        labeled = self._dataset(runner, self.labeled_dataset_index)
        unlabeled = self._dataset(runner, self.unlabeled_dataset_index)
        if getattr(unlabeled, 'pipeline', None) is not None:
            check_pasted_meta_keys(
                unlabeled.pipeline,
                f'train_dataloader.dataset.datasets[{self.unlabeled_dataset_index}].pipeline',
            )
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
            self._restore_stats(model)
            print_log(
                f'CropBank: restored v{self.bank.version} from the resumed checkpoint', logger='current'
            )
        else:
            if self._checkpoint_bank_unused:
                print_log(
                    'CropBank: load_from without --resume: the checkpoint bank is not restored, the bank '
                    "starts anew from this run's labeled set and settings",
                    logger='current',
                )
            self.bank.build_label_bank(labeled.get_data_info(i) for i in range(len(labeled)))
            print_log(
                f'CropBank: label bank from {self.bank.num_labeled_images} labeled images, '
                f'records per class {self.bank.sizes().tolist()}',
                logger='current',
            )
        own = osp.abspath(self._own_bank_file())
        existed = read_bank_version(own) is not None
        self._publish()
        self._announced_before = os.environ.get(CROPBANK_ENV)  # restored by after_run
        if os.environ.get(CROPBANK_ENV) != own or not existed:
            os.environ[CROPBANK_ENV] = own
            self._restart_workers(runner)  # workers started before the file existed or was announced

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

    @staticmethod
    def _checkpoint_due(runner, batch_idx: int) -> bool:
        """True when a ``CheckpointHook`` saves after this iteration (its own rule, asked of it)."""
        for hook in runner.hooks:
            if not isinstance(hook, CheckpointHook):
                continue
            if hook.by_epoch:
                if hook.end_of_epoch(runner.train_dataloader, batch_idx):
                    return True
            elif hook.every_n_train_iters(runner, hook.interval, hook.save_begin) or (
                hook.save_last and hook.is_last_train_iter(runner)
            ):
                return True
        return False

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        """Add this rank's teacher records; refresh every N iterations, sync the ranks before checkpoints.

        Ranks exchange their additions only at a refresh and right before a checkpoint is saved (so the
        checkpoint, written by rank 0, holds every rank's part of the window).
        """
        self.bank.add_teacher_records(self._model(runner).pop_cropbank_records(), self.conf_thr)
        gather = all_gather_object if get_world_size() > 1 else None
        if (runner.iter + 1) % self.refresh_interval != 0:
            if self._checkpoint_due(runner, batch_idx):
                self.bank.sync(gather)
            return
        self.bank.refresh(gather)
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

    def after_run(self, runner) -> None:
        """Withdraw this run's bank announcement, so that a later run in the same process (a notebook, a
        test) does not read, or refuse, this run's bank file."""
        if not hasattr(self, '_announced_before'):
            return  # before_train did not announce (e.g. a test-only run)
        if self._announced_before is None:
            os.environ.pop(CROPBANK_ENV, None)
        else:
            os.environ[CROPBANK_ENV] = self._announced_before
        del self._announced_before

    def _restore_stats(self, model) -> None:
        """The refresh history and the detector's class histograms of the resumed checkpoint."""
        stats, self._resume_stats = self._resume_stats or {}, None
        self.history = [dict(entry) for entry in stats.get('refreshes', [])]
        for key in ('pasted_class_counts', 'pseudo_class_counts'):
            if key in stats and len(stats[key]) == len(getattr(model, key)):
                getattr(model, key).copy_(torch.as_tensor(stats[key]))

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Store the whole bank (records, statistics, pending candidates, version) and what ``stats.json``
        reports (refresh history, class histograms), as builtin types and tensors."""
        if self.bank is None:
            return
        checkpoint['cropbank'] = self.bank.state_dict()
        model = self._model(runner)
        checkpoint['cropbank_stats'] = {
            'refreshes': [dict(entry) for entry in self.history],
            'pasted_class_counts': model.pasted_class_counts.detach().cpu().clone(),
            'pseudo_class_counts': model.pseudo_class_counts.detach().cpu().clone(),
        }

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep the saved bank and statistics for :meth:`before_train` on ``--resume`` only.

        ``load_from`` without ``--resume`` loads weights to fine-tune from: the bank then starts anew from
        this run's labeled set and settings (said when training starts). Testing loads checkpoints too and
        needs no bank: nothing to say then.
        """
        if 'cropbank' not in checkpoint:
            return
        if getattr(runner, '_resume', False):
            self._resume_state = checkpoint['cropbank']
            self._resume_stats = checkpoint.get('cropbank_stats')
        else:
            self._checkpoint_bank_unused = True
