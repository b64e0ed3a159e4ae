"""Data side of SpCL: the two-domain (labeled source + unlabeled target) re-ID set and the PK sampler.

* :class:`TwoDomainReIDDataset` concatenates a labeled source set and an unlabeled target set and tags every
  sample's metainfo with ``domain`` (``'source'`` / ``'target'``); ``sample_idx`` stays the index inside
  its own domain (the target memory row is ``S + sample_idx``); a source sample also gets its class as
  ``source_label`` (its memory row), read on the host.
* :class:`PseudoIdentitySampler` draws P identities x K instances per batch (other-camera images first, as
  SpCL's ``RandomMultipleGallerySampler``) from the *pseudo labels* the clustering hook gives it (source:
  the true labels), with a fixed epoch length of
  ``iters_per_epoch x batch_size`` so that MMEngine's loop length never changes when the clusters do. For
  UDA each batch is ``[source half | target half]``, as domain-specific BN expects.
"""

from __future__ import annotations

import itertools
from typing import Iterator, List, Optional, Sequence

import numpy as np
from mmdet.registry import DATA_SAMPLERS, DATASETS
from mmengine.dataset import ConcatDataset
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler


@DATASETS.register_module()
class TwoDomainReIDDataset(ConcatDataset):
    """Labeled source + unlabeled target re-ID training set (UDA).

    Args:
        source (dict | BaseDataset): Source training set (true labels, relabelled 0..S-1).
        target (dict | BaseDataset): Target training set (labels unused).
        **kwargs: :class:`mmengine.dataset.ConcatDataset` arguments.
    """

    def __init__(self, source, target, **kwargs) -> None:
        # the two domains are different datasets (e.g. MSMT17 list files -> Market-1501 folders), so their
        # metainfo (dataset_layout, ...) differs by design: build them first and exempt every key from
        # ConcatDataset's equality check; ``metainfo`` is the source's, each domain keeps its own
        domains = [DATASETS.build(d) if isinstance(d, dict) else d for d in (source, target)]
        extra = kwargs.pop('ignore_keys', None) or []
        keys = {extra} if isinstance(extra, str) else set(extra)
        for d in domains:
            keys |= set(getattr(d, 'metainfo', {}) or {})
        super().__init__(datasets=domains, ignore_keys=sorted(keys), **kwargs)

    @property
    def source(self):
        """The source set."""
        return self.datasets[0]

    @property
    def target(self):
        """The target set."""
        return self.datasets[1]

    def __getitem__(self, idx: int) -> dict:
        """Pipeline output with ``domain`` added to the data sample's metainfo."""
        data = super().__getitem__(idx)
        domain = 'source' if idx < len(self.source) else 'target'
        samples = data['data_samples']
        for ds in samples if isinstance(samples, (list, tuple)) else [samples]:
            ds.set_metainfo(dict(domain=domain))
            if domain == 'source':  # the class on the host: the memory row without a read from the device
                ds.set_metainfo(dict(source_label=int(ds.gt_label.label.reshape(-1)[0])))
        return data


def multi_gallery_stream(
    groups: Sequence[np.ndarray], camids: np.ndarray, num_instances: int, rng: np.random.Generator
) -> Iterator[int]:
    """Endless stream of indexes in SpCL's ``RandomMultipleGallerySampler`` order.

    Identities come in random order; for each, one random anchor image, then ``K - 1`` more images of the
    identity, drawn from its images taken by *other cameras* than the anchor's when there are any, else from
    its other images; the draw is with replacement when that pool has fewer than K images (so an identity
    of 2-3 images still gives K). An identity of one image (an un-clustered instance) gives only itself.

    Args:
        groups (Sequence[np.ndarray]): Member indexes of each identity.
        camids (np.ndarray): (N,) camera of every index.
        num_instances (int): K.
        rng (np.random.Generator): Random stream.

    Yields:
        int: dataset index.
    """
    if not groups:
        raise ValueError('PseudoIdentitySampler got no identities to sample from')
    while True:
        for g in rng.permutation(len(groups)):
            members = groups[g]
            anchor = members[rng.integers(len(members))]
            yield int(anchor)
            others = members[members != anchor]
            if others.size == 0:
                continue
            other_cams = others[camids[others] != camids[anchor]]
            pool = other_cams if other_cams.size else others
            yield from rng.choice(pool, size=num_instances - 1, replace=pool.size < num_instances).tolist()


def dataset_camids(dataset) -> np.ndarray:
    """(N,) camera id of every sample of a re-ID dataset (``camid`` of its data infos; 0 when absent)."""
    if not hasattr(dataset, 'get_data_info'):  # a plain sequence: no camera information
        return np.zeros(len(dataset), dtype=np.int64)
    return np.array([int(dataset.get_data_info(i).get('camid', 0)) for i in range(len(dataset))])


def group_by_label(labels: np.ndarray) -> List[np.ndarray]:
    """Indexes of each label, labels in increasing order.

    Args:
        labels (np.ndarray): (N,) int labels.

    Returns:
        list[np.ndarray]: member indexes per distinct label.
    """
    order = np.argsort(labels, kind='stable')
    _, starts = np.unique(labels[order], return_index=True)
    return np.split(order, starts[1:])


@DATA_SAMPLERS.register_module()
class PseudoIdentitySampler(Sampler):
    """PK sampler over pseudo identities with a constant epoch length (SpCL's training sampler).

    Within an identity, images follow SpCL's ``RandomMultipleGallerySampler`` (:func:`multi_gallery_stream`):
    an anchor, then K - 1 images preferably from other cameras, with replacement for identities smaller
    than K; un-clustered instances (identities of one image) give one image.

    Args:
        dataset (BaseDataset | TwoDomainReIDDataset): Target set (unsupervised) or source + target (UDA).
        batch_size (int): Images per batch on this rank; must equal the dataloader's ``batch_size``. For UDA
            the first half is source, the second half target (must be even).
        num_instances (int): K images per identity. Defaults to 4.
        iters_per_epoch (int): Batches per epoch (per rank). Defaults to 400.
        seed (int, optional): Random seed (synchronised across ranks when None). Defaults to None.
    """

    def __init__(
        self,
        dataset,
        batch_size: int,
        num_instances: int = 4,
        iters_per_epoch: int = 400,
        seed: Optional[int] = None,
    ) -> None:
        self.rank, self.world_size = get_dist_info()
        self.dataset = dataset
        self.batch_size = batch_size
        self.num_instances = num_instances
        self.iters_per_epoch = iters_per_epoch
        self.seed = sync_random_seed() if seed is None else seed
        self.epoch = 0
        self.uda = isinstance(dataset, TwoDomainReIDDataset)
        if self.uda and batch_size % 2:
            raise ValueError(
                f'UDA batches are [source half | target half]: batch_size must be even, got {batch_size}'
            )
        target = dataset.target if self.uda else dataset
        self.num_target = len(target)
        self.pseudo_labels = np.arange(self.num_target)  # before clustering every image is its own identity
        self.target_camids = dataset_camids(target)
        if self.uda:
            src = dataset.source
            self.source_labels = np.array([int(src.get_data_info(i)['label']) for i in range(len(src))])
            self.source_camids = dataset_camids(src)

    def set_pseudo_labels(self, labels: Sequence[int]) -> None:
        """Target pseudo labels for the following epochs (outliers = their own identity).

        Args:
            labels (Sequence[int]): (N_t,) labels.
        """
        labels = np.asarray(labels, dtype=np.int64)
        if labels.shape != (self.num_target,):
            raise ValueError(f'{labels.shape[0]} pseudo labels for {self.num_target} target images')
        self.pseudo_labels = labels

    def set_epoch(self, epoch: int) -> None:
        """Called by MMEngine's loop before each epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.iters_per_epoch * self.batch_size

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, self.epoch, self.rank])
        target = multi_gallery_stream(
            group_by_label(self.pseudo_labels), self.target_camids, self.num_instances, rng
        )
        if not self.uda:
            yield from itertools.islice(target, len(self))
            return
        offset = len(self.dataset.source)
        source = multi_gallery_stream(
            group_by_label(self.source_labels), self.source_camids, self.num_instances, rng
        )
        half = self.batch_size // 2
        for _ in range(self.iters_per_epoch):
            yield from itertools.islice(source, half)
            yield from (offset + i for i in itertools.islice(target, half))
