"""SpCL's self-paced clustering hook: initialise the hybrid memory, re-cluster before every epoch.

* ``before_train``: when the memory is empty (not resumed), one pass of the encoder in eval mode over the
  training images (without augmentation) fills it: source class centroids (UDA) and target instance
  features.
* ``before_train_epoch``: sparse k-reciprocal Jaccard distance of the memory's target rows, DBSCAN at eps and
  eps -/+ gap, reliability criterion (independence threshold from the first clustering, then fixed); the
  pseudo labels go to the memory and to the :class:`~mmssod.datasets.reid_uda.PseudoIdentitySampler`;
  numbers of clusters / outliers and the threshold are logged. With ``refresh_memory=True`` the memory's
  target rows are first overwritten by an eval-mode extraction (off by default, as in the official code);
  with ``cluster_fresh=True`` that extraction is clustered and the memory's rows are left as they are.
* ``after_train_epoch`` (``label_quality=True``, benchmarks only): the memory's target rows and a fresh
  eval-mode extraction are each clustered as above and scored against the true identities (ARI / NMI), to
  show how far the momentum-averaged, augmented memory lags behind the model.
* ``after_train_iter``: the momentum update of the batch, after the backward pass and optimizer step.
* Checkpoints: memory features and labels are buffers of the model; the threshold is saved under
  ``checkpoint['spcl']`` and restored on resume.

Rank 0 extracts and clusters; the results are broadcast so every rank holds the same memory and labels.
"""

from __future__ import annotations

import copy
import time
from typing import List, Optional, Sequence

import numpy as np
import torch
from mmdet.registry import DATASETS, HOOKS
from mmengine.dataset import pseudo_collate
from mmengine.dist import broadcast, broadcast_object_list, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch.utils.data import DataLoader

from ...models.reid.clustering import (
    assign_outliers,
    clustered_purity,
    dbscan_labels,
    self_paced_clustering,
)
from ...models.reid.jaccard import jaccard_distance, sparse_to_scipy


def _broadcast_tensor(t: Optional[torch.Tensor], device) -> torch.Tensor:
    """Rank 0's tensor on every rank (shape and dtype sent first)."""
    if get_world_size() == 1:
        return t
    meta = [None if t is None else (tuple(t.shape), t.dtype)]
    broadcast_object_list(meta, src=0)
    shape, dtype = meta[0]
    buf = t.to(device).contiguous() if get_rank() == 0 else torch.empty(shape, dtype=dtype, device=device)
    broadcast(buf, src=0)
    return buf


def class_centroids(feats: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean feature of every class id, on the features' device.

    Args:
        feats (Tensor): (N, D) features.
        labels (Tensor): (N,) int64 class ids in ``[0, C)``, on any device (C = max + 1).

    Returns:
        Tensor: (C, D) centroids (zero rows for absent ids), on ``feats.device``.
    """
    labels = labels.to(feats.device)
    num_classes = int(labels.max()) + 1
    sums = feats.new_zeros(num_classes, feats.size(1)).index_add_(0, labels, feats)
    return sums / torch.bincount(labels, minlength=num_classes).clamp(min=1)[:, None].to(feats.dtype)


@HOOKS.register_module()
class SpCLClusterHook(Hook):
    """Self-paced clustering and hybrid-memory maintenance for SpCL (UDA and unsupervised re-ID).

    Args:
        pipeline (list[dict]): Test-time pipeline for the memory initialisation pass (no augmentation).
        eps (float): DBSCAN eps. Defaults to 0.6.
        eps_gap (float): Tight / loose eps offset. Defaults to 0.02.
        min_samples (int): DBSCAN min_samples. Defaults to 4.
        k1 (int): Jaccard k1. Defaults to 30.
        k2 (int): Jaccard k2. Defaults to 6.
        quantile (float): Independence-threshold quantile. Defaults to 0.9.
        use_reliability (bool): Apply the reliability criterion (False = "SpCL without self-paced
            reliability": plain DBSCAN clusters + outliers). Defaults to True.
        use_dataset_labels (bool): Use the target set's own labels instead of clustering (a supervised /
            source-only baseline trained with the same memory). Defaults to False.
        batch_size (int): Batch size of the initialisation pass. Defaults to 64.
        num_workers (int): Workers of the initialisation pass. Defaults to 0.
        label_quality (bool): Also log the pseudo labels' agreement with the target set's true identities
            (``pid`` of its data infos): adjusted Rand index and normalised mutual information, for
            benchmarks; training never reads them. After every epoch it also clusters the memory's target
            rows and a fresh eval-mode extraction of the target images the same way and logs the ARI / NMI
            of both (one extra extraction and two extra clusterings per epoch). Defaults to False.
        refresh_memory (bool): Before each clustering from the second epoch on (and after a resume),
            overwrite the memory's target rows with the L2-normalised features of the model in eval mode
            over the un-augmented target images (``pipeline``), so that clustering sees the current model
            rather than momentum averages of augmented training-mode views. The official code clusters the
            memory as it is, so this is off by default; ``label_quality`` shows whether the clustered memory
            lags behind the model. Costs one pass over the target images per epoch. Defaults to False.
        cluster_fresh (bool): Cluster the fresh eval-mode features as ``refresh_memory`` does, but leave the
            memory's rows (the loss's instance targets and cluster centroids) as the momentum updates made
            them: only the pseudo labels come from the current model. Separates the two effects of
            ``refresh_memory`` (benchmarks). Defaults to False.
    """

    priority = 'NORMAL'

    def __init__(
        self,
        pipeline: Sequence[dict],
        eps: float = 0.6,
        eps_gap: float = 0.02,
        min_samples: int = 4,
        k1: int = 30,
        k2: int = 6,
        quantile: float = 0.9,
        use_reliability: bool = True,
        use_dataset_labels: bool = False,
        batch_size: int = 64,
        num_workers: int = 0,
        label_quality: bool = False,
        refresh_memory: bool = False,
        cluster_fresh: bool = False,
    ) -> None:
        if not 0 < eps_gap < eps:
            raise ValueError(f'SpCLClusterHook needs 0 < eps_gap < eps, got eps={eps}, eps_gap={eps_gap}')
        self.pipeline = list(pipeline)
        self.eps, self.eps_gap, self.min_samples = eps, eps_gap, min_samples
        self.k1, self.k2, self.quantile = k1, k2, quantile
        self.use_reliability = use_reliability
        self.use_dataset_labels = use_dataset_labels
        self.batch_size, self.num_workers = batch_size, num_workers
        self.label_quality = label_quality
        self.refresh_memory = refresh_memory
        self.cluster_fresh = cluster_fresh
        self.indep_threshold: Optional[float] = None
        # (runner.iter, features) of the last eval-mode target extraction, reused within one iteration
        self._fresh: Optional[tuple] = None
        self._memory_just_extracted = False  # the rows are an eval-mode extraction already: no refresh

    # ----------------------------------------------------------------------------------------- helpers
    @staticmethod
    def _model(runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'memory'):
            raise TypeError(
                f'SpCLClusterHook needs a model with a hybrid memory (SpCLReID), got {type(model)}'
            )
        return model

    @staticmethod
    def _sampler(runner):
        sampler = runner.train_dataloader.sampler
        if not hasattr(sampler, 'set_pseudo_labels'):
            raise TypeError(
                'SpCLClusterHook updates the sampler with pseudo labels: set train_dataloader.sampler to '
                f"dict(type='PseudoIdentitySampler', ...), got {type(sampler).__name__}"
            )
        return sampler

    def _domain_cfgs(self, runner) -> List[dict]:
        """Dataset configs of (source, target) or (target,), with the initialisation pipeline."""
        cfg = copy.deepcopy(runner.cfg.train_dataloader.dataset)
        parts = [cfg['source'], cfg['target']] if cfg.get('type') == 'TwoDomainReIDDataset' else [cfg]
        for p in parts:
            p['pipeline'] = self.pipeline
            p['test_mode'] = True
        return parts

    @torch.no_grad()
    def _extract(self, model, dataset_cfg: dict) -> tuple:
        """L2-normalised embeddings (eval mode) and labels of a whole dataset, in index order."""
        dataset = DATASETS.build(dataset_cfg)
        loader = DataLoader(
            dataset, batch_size=self.batch_size, num_workers=self.num_workers, collate_fn=pseudo_collate
        )
        was_training = model.training
        model.eval()
        feats, labels = [], []
        for batch in loader:
            # labels read from the loader's host tensors, before the preprocessor moves them to the device
            labels.extend(int(ds.gt_label.label.reshape(-1)[0]) for ds in batch['data_samples'])
            data = model.data_preprocessor(batch, False)
            inputs = data['inputs']
            inputs = inputs.flatten(0, 1) if inputs.dim() == 5 else inputs
            feats.append(model.head(model.extract_feat(inputs)).float())
        model.train(was_training)
        return torch.cat(feats), torch.as_tensor(labels, dtype=torch.long)

    def _fresh_target_features(self, runner, model) -> torch.Tensor:
        """L2-normalised eval-mode features of the un-augmented target (rank 0, cached per iter)."""
        if self._fresh is None or self._fresh[0] != runner.iter:
            feats = self._extract(model, self._domain_cfgs(runner)[-1])[0]
            self._fresh = (runner.iter, torch.nn.functional.normalize(feats.float(), dim=1))
        return self._fresh[1]

    # ------------------------------------------------------------------------------------------- hooks
    def before_train(self, runner) -> None:
        """Fill the memory (unless resumed) and hand the current target labels to the sampler."""
        model = self._model(runner)
        memory = model.memory
        sampler = self._sampler(runner)
        device = memory.features.device
        if not bool(memory.initialized):
            start = time.time()
            parts = self._domain_cfgs(runner)
            source, target = None, None
            if get_rank() == 0:
                outs = [self._extract(model, p) for p in parts]
                target_feats, target_labels = outs[-1]
                if len(parts) == 2:
                    source = class_centroids(*outs[0])
                target = target_feats
            source = _broadcast_tensor(source, device) if len(parts) == 2 else None
            target = _broadcast_tensor(target, device)
            memory.init_memory(source, target)
            self._memory_just_extracted = True
            runner.logger.info(
                f'SpCL memory initialised: {int(memory.num_source)} source classes + {memory.num_target} '
                f'target images ({time.time() - start:.1f} s)'
            )
        if memory.num_target != sampler.num_target:
            raise ValueError(
                f'the memory holds {memory.num_target} target rows but the target training set has '
                f'{sampler.num_target} images: a checkpoint of another dataset was loaded'
            )
        s = int(memory.num_source)
        sampler.set_pseudo_labels((memory.labels[s:] - s).cpu().numpy())

    def _cluster(self, runner, target_feats: torch.Tensor) -> tuple:
        """Pseudo labels of the target rows (rank 0)."""
        if self.use_dataset_labels:
            ds = runner.train_dataloader.dataset
            ds = ds.target if hasattr(ds, 'target') else ds
            labels = np.array([int(ds.get_data_info(i)['label']) for i in range(len(ds))])
            labels = np.unique(labels, return_inverse=True)[1].reshape(-1)
            return labels, dict(num_clusters=int((np.bincount(labels) > 1).sum()))
        dist = sparse_to_scipy(
            jaccard_distance(target_feats, self.k1, self.k2, max_distance=self.eps + self.eps_gap)
        )
        if not self.use_reliability:
            if dist.shape[0] < self.min_samples:
                raise ValueError(
                    f'{dist.shape[0]} target images, fewer than min_samples={self.min_samples}: lower '
                    'min_samples or use a larger target training set'
                )
            labels = assign_outliers(dbscan_labels(dist, self.eps, self.min_samples))
            labels = np.unique(labels, return_inverse=True)[1].reshape(-1)
            sizes = np.bincount(labels)
            return labels, dict(num_clusters=int((sizes > 1).sum()), num_outliers=int((sizes == 1).sum()))
        labels, thr, stats = self_paced_clustering(
            dist, self.eps, self.eps_gap, self.min_samples, self.indep_threshold, self.quantile
        )
        self.indep_threshold = thr
        return labels, stats

    @staticmethod
    def _label_quality(runner, labels: np.ndarray) -> dict:
        """ARI / NMI of the pseudo labels against the target set's true identities (``pid``), and their
        :func:`clustered_purity` (on the clustered images only)."""
        from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

        ds = runner.train_dataloader.dataset
        ds = ds.target if hasattr(ds, 'target') else ds
        truth = np.array([int(ds.get_data_info(i)['pid']) for i in range(len(ds))])
        return dict(
            ari=float(adjusted_rand_score(truth, labels)),
            nmi=float(normalized_mutual_info_score(truth, labels)),
            **clustered_purity(truth, labels),
        )

    def before_train_epoch(self, runner) -> None:
        """Re-cluster the memory's target features; update memory labels and the sampler."""
        model = self._model(runner)
        memory = model.memory
        start = time.time()
        if self.refresh_memory and not self._memory_just_extracted:
            fresh = self._fresh_target_features(runner, model) if get_rank() == 0 else None
            memory.set_target_features(_broadcast_tensor(fresh, memory.features.device))
            runner.logger.info(
                f'SpCL epoch {runner.epoch}: target memory rows refreshed from eval-mode features'
            )
        fresh = self.cluster_fresh and not self._memory_just_extracted
        self._memory_just_extracted = False
        labels, stats = None, {}
        if get_rank() == 0:
            if fresh:
                feats = self._fresh_target_features(runner, model)
            else:
                feats = memory.features[int(memory.num_source) :].clone()
            labels, stats = self._cluster(runner, feats)
            if self.label_quality:
                stats.update(self._label_quality(runner, np.asarray(labels)))
            labels = torch.as_tensor(labels, dtype=torch.long)
        labels = _broadcast_tensor(labels, memory.features.device)
        shared = [stats, self.indep_threshold]
        if get_world_size() > 1:
            broadcast_object_list(shared, src=0)
        stats, self.indep_threshold = shared
        memory.set_target_labels(labels)
        self._sampler(runner).set_pseudo_labels(labels.cpu().numpy())
        thr = 'n/a' if self.indep_threshold is None else f'{self.indep_threshold:.4f}'
        runner.logger.info(
            f'SpCL epoch {runner.epoch}: {stats.get("num_clusters", 0)} clusters, '
            f'{stats.get("num_outliers", 0)} un-clustered instances, independence threshold {thr} '
            f'({time.time() - start:.1f} s)'
        )
        if 'ari' in stats:
            runner.logger.info(
                f'SpCL epoch {runner.epoch} pseudo-label quality: ARI {stats["ari"]:.4f} '
                f'NMI {stats["nmi"]:.4f} | clustered {stats["clustered"]:.4f} of the images, on them: ARI '
                f'{stats["ari_clustered"]:.4f}, pairwise precision {stats["pairwise_precision"]:.4f}'
            )
        if stats.get('num_clusters', 0) == 0:
            runner.logger.warning(
                f'SpCL found no cluster among {memory.num_target} target images (all are outliers, each its '
                'own class); training continues. If this persists, raise eps or lower min_samples.'
            )
        hub = runner.message_hub
        for key in ('num_clusters', 'num_outliers', 'ari', 'nmi', 'clustered', 'ari_clustered'):
            if key in stats:
                hub.update_scalar(f'train/spcl_{key}', stats[key])
        if self.indep_threshold is not None:
            hub.update_scalar('train/spcl_indep_threshold', self.indep_threshold)

    def after_train_epoch(self, runner) -> None:
        """With ``label_quality``: ARI / NMI of the clustered memory and of clustered fresh eval features.

        Both go through the same Jaccard distance, DBSCAN and reliability criterion (with the fixed
        independence threshold) as the next epoch's clustering; nothing of the training changes.
        """
        if not self.label_quality or self.use_dataset_labels or get_rank() != 0:
            return
        model = self._model(runner)
        memory = model.memory
        start = time.time()
        results = {}
        threshold = self.indep_threshold
        for name, feats in (
            ('memory', memory.features[int(memory.num_source) :].clone()),
            ('fresh', self._fresh_target_features(runner, model)),
        ):
            labels, stats = self._cluster(runner, feats)
            self.indep_threshold = threshold  # a measurement never sets the threshold
            results[name] = dict(self._label_quality(runner, np.asarray(labels)), **stats)
        mem, fresh = results['memory'], results['fresh']
        runner.logger.info(
            f'SpCL after epoch {runner.epoch}: memory ARI {mem["ari"]:.4f} NMI {mem["nmi"]:.4f} '
            f'({mem.get("num_clusters", 0)} clusters) | fresh eval features ARI {fresh["ari"]:.4f} '
            f'NMI {fresh["nmi"]:.4f} ({fresh.get("num_clusters", 0)} clusters) ({time.time() - start:.1f} s)'
        )
        for name, res in results.items():
            for key in ('ari', 'nmi', 'num_clusters'):
                if key in res:
                    runner.message_hub.update_scalar(f'train/spcl_{name}_{key}', res[key])

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        """Momentum update of the memory rows of the batch (all ranks, gathered)."""
        self._model(runner).memory.apply_pending_update()

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Save the fixed independence threshold."""
        checkpoint['spcl'] = dict(indep_threshold=self.indep_threshold)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Restore the independence threshold (memory and labels come with the model state)."""
        if 'spcl' in checkpoint:
            self.indep_threshold = checkpoint['spcl']['indep_threshold']
