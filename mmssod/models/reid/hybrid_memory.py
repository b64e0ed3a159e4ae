"""SpCL's hybrid memory and unified contrastive loss (Ge et al., NeurIPS 2020).

One buffer of L2-normalised features holds the source-domain class centroids (rows ``[0, S)``, UDA only) and
one instance feature per unlabeled target image (rows ``[S, S + N_t)``). A parallel label vector gives every
row a class id. The logit of a feature against a class is the mean of its logits over the rows of that
class, so a source centroid, a target cluster centroid (mean of its members) and a target outlier (the
instance itself) are all classes of one softmax.

The math lives in the pure functions :func:`unified_contrastive_loss` and :func:`momentum_update`;
:class:`HybridMemory` holds the buffers (so they are saved in checkpoints) and gathers the batch across
ranks before its update so that every rank keeps the same memory.
"""

from __future__ import annotations

import math
from typing import List, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.dist import all_gather, get_world_size
from torch import Tensor, nn


def class_logits(logits: Tensor, labels: Tensor, num_classes: int) -> Tuple[Tensor, Tensor]:
    """Average instance logits over the memory rows of each class.

    Args:
        logits (Tensor): (B, M) logits of B features against the M memory rows.
        labels (Tensor): (M,) int64 class id of every memory row, in ``[0, num_classes)``.
        num_classes (int): Number of class ids C.

    Returns:
        tuple[Tensor, Tensor]: (B, C) class logits (0 for empty classes) and the (C,) bool mask of classes
        that have at least one row.
    """
    sums = logits.new_zeros(logits.size(0), num_classes).index_add_(1, labels, logits)
    counts = labels.new_zeros(num_classes).index_add_(0, labels, torch.ones_like(labels))  # no host sync
    mean = sums / counts.clamp(min=1).to(logits.dtype)
    return mean, counts > 0


def unified_contrastive_loss(
    feats: Tensor,
    memory: Tensor,
    labels: Tensor,
    targets: Tensor,
    temperature: float = 0.05,
    reduction: str = 'mean',
    prob_eps: float = 0.0,
    num_classes: int | None = None,
) -> Tensor:
    """SpCL's unified contrastive loss against a hybrid memory, computed in fp32.

    ``p(k | x) = exp(<x, c_k> / tau) / sum_j exp(<x, c_j> / tau)`` over the classes j with at least one
    memory row, where ``<x, c_k> / tau`` is the mean of ``<x, f_r> / tau`` over the rows r of class k.
    The loss is ``-log p(target | x)`` (``prob_eps = 0``, an exact log-softmax). With ``prob_eps = e > 0`` it
    is the official code's ``-log(p_e + e)`` with ``p_e = exp(z_k) / (sum_j exp(z_j) + e)`` (``e = 1e-6``
    there): a sample's loss is then capped at ``-log(e)`` (13.8) and its gradient fades where ``p << e``.

    Args:
        feats (Tensor): (B, D) L2-normalised features (gradient flows to them).
        memory (Tensor): (M, D) L2-normalised memory rows (no gradient).
        labels (Tensor): (M,) int64 class id of each memory row.
        targets (Tensor): (B,) int64 class id of each feature.
        temperature (float): tau. Defaults to 0.05.
        reduction (str): ``'mean'`` (scalar) or ``'none'`` ((B,) per-sample losses). Defaults to 'mean'.
        prob_eps (float): ``e`` above, >= 0; 1e-6 reproduces the official code. Defaults to 0.0.
        num_classes (int, optional): ``labels.max() + 1`` when the caller knows it (no host sync, and
            ``targets`` are not checked); None computes it and checks ``targets``. Defaults to None.

    Returns:
        Tensor: Mean of ``-log p(target | x)`` (fp32 even when ``feats`` is fp16 / bf16), or the (B,)
        per-sample values.
    """
    if num_classes is None:
        num_classes = int(labels.max().item()) + 1
        if int(targets.max().item()) >= num_classes or int(targets.min().item()) < 0:
            raise ValueError(f'targets must be class ids of memory rows in [0, {num_classes}), got {targets}')
    prob_eps = check_prob_eps(prob_eps)
    with torch.autocast(device_type=feats.device.type, enabled=False):
        logits = feats.float() @ memory.float().t() / temperature
        cls_logits, present = class_logits(logits, labels, num_classes)
        cls_logits = cls_logits.masked_fill(~present, float('-inf'))
        if prob_eps == 0:
            return F.cross_entropy(cls_logits, targets, reduction=reduction)
        # log of the denominator sum_j exp(z_j) + e, stably: e enters as one more exponent, log(e)
        log_eps = cls_logits.new_full((cls_logits.size(0), 1), math.log(prob_eps))
        log_denominator = torch.logsumexp(torch.cat([cls_logits, log_eps], dim=1), dim=1)
        prob = torch.exp(cls_logits.gather(1, targets[:, None]).squeeze(1) - log_denominator)
        per_sample = -torch.log(prob + prob_eps)
        if reduction == 'none':
            return per_sample
        if reduction == 'mean':
            return per_sample.mean()
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def check_prob_eps(prob_eps: float) -> float:
    """Check the probability epsilon of the contrastive loss (>= 0, finite) and return it as a float."""
    if isinstance(prob_eps, bool) or not isinstance(prob_eps, (int, float)) or not 0 <= prob_eps < 1:
        raise ValueError(
            f'`prob_eps` must be a number in [0, 1): 0 for the exact log-softmax, 1e-6 for the official '
            f"code's log(p + 1e-6); got {prob_eps!r}"
        )
    return float(prob_eps)


def momentum_update(
    memory: Tensor, indexes: Union[Tensor, Sequence[int]], feats: Tensor, momentum: float = 0.2
) -> Tensor:
    """Momentum update of memory rows, equal to the sequential per-sample definition.

    For each sample in batch order: ``f_y <- m * f_y + (1 - m) * x``, then ``f_y <- f_y / ||f_y||``.
    On the CPU with numba this is that loop, compiled (one pass over the batch, no thread pool, so it
    stays fast on a loaded machine); otherwise (GPU, or no numba) :func:`momentum_update_vectorised`.

    Args:
        memory (Tensor): (M, D) memory, updated in place.
        indexes (Tensor | Sequence[int]): (B,) row of each sample; host ints spare the device a sync.
        feats (Tensor): (B, D) features (detached).
        momentum (float): m, weight of the old row. Defaults to 0.2.

    Returns:
        Tensor: ``memory`` (the same tensor).
    """
    if len(indexes) == 0:
        return memory
    kernel = _update_kernel() if memory.device.type == 'cpu' else None
    if kernel is not None and memory.dtype == torch.float32 and memory.is_contiguous():
        x = feats.detach().to(torch.float32).contiguous()
        kernel(memory.numpy(), np.ascontiguousarray(indexes, dtype=np.int64), x.numpy(), float(momentum))
        return memory
    if memory.device.type != 'cpu' or torch.get_num_threads() == 1:
        return momentum_update_vectorised(memory, indexes, feats, momentum)
    # CPU without numba: these ops are too small to gain from intra-op threads, and on a loaded machine the
    # thread pool's synchronisation made them slower than the per-sample loop (50 vs 31 ms measured)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return momentum_update_vectorised(memory, indexes, feats, momentum)
    finally:
        torch.set_num_threads(threads)


def _update_kernel():
    """The compiled sequential update (numba), or None without numba."""
    try:
        from .numba_kernels import sequential_update
    except ImportError:
        return None
    return sequential_update


def occurrence_rounds(rows: Sequence[int]) -> List[List[int]]:
    """Batch positions grouped by occurrence of their memory row (host ints in, host ints out).

    Round r lists, in batch order, the position of the r-th sample of every row hit at least r + 1 times,
    so the rows within a round are distinct, and applying the rounds in order keeps each row's samples in
    batch order: the sequential per-sample update.

    Args:
        rows (Sequence[int]): (B,) memory row of each sample.

    Returns:
        list[list[int]]: Positions in ``[0, B)`` per round (as many rounds as the most repeated row has
        samples).
    """
    seen: dict = {}
    rounds: List[List[int]] = []
    for pos, row in enumerate(rows):
        r = seen[row] = seen.get(row, -1) + 1
        if r == len(rounds):
            rounds.append([])
        rounds[r].append(pos)
    return rounds


def momentum_update_vectorised(
    memory: Tensor, indexes: Union[Tensor, Sequence[int]], feats: Tensor, momentum: float = 0.2
) -> Tensor:
    """Vectorised :func:`momentum_update` (any device), equal to the sequential definition.

    The batch is applied in :func:`occurrence_rounds` (one gather / lerp / normalise / ``index_copy_`` per
    round: one round when no row repeats, K for source classes in PK batches). The rounds are planned on
    the host from ``indexes``: given as host ints, the update makes the device wait for nothing; a device
    tensor is read back once.

    Args:
        memory (Tensor): (M, D) memory, updated in place.
        indexes (Tensor | Sequence[int]): (B,) row of each sample.
        feats (Tensor): (B, D) features (detached).
        momentum (float): m. Defaults to 0.2.

    Returns:
        Tensor: ``memory``.
    """
    rows = indexes.tolist() if isinstance(indexes, Tensor) else [int(i) for i in indexes]
    feats = feats.detach().to(memory.dtype)
    for positions in occurrence_rounds(rows):
        r = _to_device([rows[p] for p in positions], memory.device)
        if len(positions) == len(rows):
            x = feats
        else:
            x = feats.index_select(0, _to_device(positions, feats.device))
        new = torch.lerp(x, memory.index_select(0, r), momentum)  # m * old + (1 - m) * x
        memory.index_copy_(0, r, new.div_(new.norm(dim=1, keepdim=True).clamp_(min=1e-12)))
    return memory


def _to_device(ints: Sequence[int], device: torch.device) -> Tensor:
    """Host ints as an int64 tensor on ``device``, copied without waiting for the device's queue."""
    return torch.as_tensor(ints, dtype=torch.long).to(device, non_blocking=True)


def gather_batch(
    feats: Tensor, indexes: Union[Tensor, Sequence[int]]
) -> Tuple[Tensor, Union[Tensor, List[int]]]:
    """All-gather features and memory rows from every rank, in rank order (identity when not distributed).

    Args:
        feats (Tensor): (B, D) local features (same B on every rank).
        indexes (Tensor | Sequence[int]): (B,) local memory rows.

    Returns:
        tuple: (world * B, D) features and the (world * B,) rows (host ints when given host ints).
    """
    if get_world_size() == 1:
        return feats, indexes
    if isinstance(indexes, Tensor):
        return torch.cat(all_gather(feats.contiguous())), torch.cat(all_gather(indexes.contiguous()))
    rows = torch.cat(all_gather(_to_device(indexes, feats.device)))
    return torch.cat(all_gather(feats.contiguous())), rows.tolist()  # one read-back for every rank's rows


class HybridMemory(nn.Module):
    """Source class centroids and target instance features in one buffer, with their class labels.

    Buffers (saved in checkpoints): ``features`` (M, D), ``labels`` (M,), ``num_source`` (S) and
    ``initialized``. Shapes follow a loaded checkpoint, so a memory built empty can be resumed. The scalars
    the training step needs on the host (S, the number of classes, whether it is filled) are read from the
    buffers once after each change of labels, not at every iteration (each read waits for the device).

    Args:
        num_features (int): Feature dimension D. Defaults to 2048.
        num_samples (int): Rows M = S + N_t; may be 0 and set later by :meth:`init_memory`. Defaults to 0.
        temperature (float): Softmax temperature tau. Defaults to 0.05.
        momentum (float): Update momentum m (weight of the old row). Defaults to 0.2.
        prob_eps (float): 0 for the exact ``-log p``, 1e-6 for the official ``-log(p + 1e-6)``; see
            :func:`unified_contrastive_loss`. Defaults to 0.0.
    """

    def __init__(
        self,
        num_features: int = 2048,
        num_samples: int = 0,
        temperature: float = 0.05,
        momentum: float = 0.2,
        prob_eps: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_features = num_features
        self.temperature = temperature
        self.momentum = momentum
        self.prob_eps = check_prob_eps(prob_eps)
        self.register_buffer('features', torch.zeros(num_samples, num_features))
        self.register_buffer('labels', torch.arange(num_samples, dtype=torch.long))
        self.register_buffer('num_source', torch.zeros((), dtype=torch.long))
        self.register_buffer('initialized', torch.zeros((), dtype=torch.bool))
        self._pending: Tuple[Tensor, Union[Tensor, Sequence[int]]] | None = None
        self._host: Tuple[bool, int, int] | None = None  # (initialized, S, number of classes), read lazily

    def _host_scalars(self) -> Tuple[bool, int, int]:
        """(initialized, S, labels.max() + 1) as Python values, read from the buffers once per change."""
        if self._host is None:
            filled = bool(self.initialized)
            classes = int(self.labels.max()) + 1 if filled and self.labels.numel() else 0
            self._host = (filled, int(self.num_source), classes)
        return self._host

    @property
    def num_source_rows(self) -> int:
        """Number of source class rows S, as a Python int."""
        return self._host_scalars()[1]

    @property
    def num_target(self) -> int:
        """Number of target instance rows N_t."""
        return self.features.size(0) - self.num_source_rows

    @torch.no_grad()
    def init_memory(self, source_centroids: Tensor | None, target_features: Tensor) -> None:
        """Fill the memory; target rows start as their own classes (labels set later by clustering).

        Args:
            source_centroids (Tensor | None): (S, D) source class centroids (None for unsupervised).
            target_features (Tensor): (N_t, D) target instance features.
        """
        parts = [target_features] if source_centroids is None else [source_centroids, target_features]
        feats = F.normalize(torch.cat(parts).float(), dim=1).to(self.features.device)
        if feats.size(1) != self.num_features:
            raise ValueError(f'memory expects {self.num_features}-d features, got {feats.size(1)}-d')
        num_source = 0 if source_centroids is None else source_centroids.size(0)
        self.features = feats
        self.labels = torch.arange(feats.size(0), dtype=torch.long, device=feats.device)
        self.num_source.fill_(num_source)
        self.initialized.fill_(True)
        self._host = (True, num_source, feats.size(0))

    @torch.no_grad()
    def set_target_features(self, target_features: Tensor) -> None:
        """Overwrite the target rows (e.g. with a fresh eval-mode extraction); labels are kept.

        Args:
            target_features (Tensor): (N_t, D) target instance features, L2-normalised here.
        """
        if tuple(target_features.shape) != (self.num_target, self.num_features):
            raise ValueError(
                f'set_target_features expects ({self.num_target}, {self.num_features}) features (one per '
                f'target row), got {tuple(target_features.shape)}'
            )
        s = self.num_source_rows
        self.features[s:] = F.normalize(target_features.float(), dim=1).to(self.features)

    @torch.no_grad()
    def set_target_labels(self, target_labels: Tensor) -> None:
        """Set the pseudo labels of the target rows; their class ids become ``S + label``.

        Args:
            target_labels (Tensor): (N_t,) int64 labels in ``[0, K)`` (outliers already own classes).
        """
        if target_labels.numel() != self.num_target:
            raise ValueError(f'{target_labels.numel()} target labels for {self.num_target} target rows')
        s = self.num_source_rows
        self.labels[s:] = target_labels.to(self.labels) + s
        self._host = None  # the number of classes changed

    def target_rows(self, sample_idx: Tensor) -> Tensor:
        """Memory rows of target samples given their dataset indexes."""
        return sample_idx + self.num_source_rows

    def loss(self, feats: Tensor, indexes: Union[Tensor, Sequence[int]], reduction: str = 'mean') -> Tensor:
        """Unified contrastive loss of a batch against the memory as it is before this batch's update.

        In training mode the batch is kept for :meth:`apply_pending_update`: the memory must not change
        before the backward pass, which reads it.

        Args:
            feats (Tensor): (B, D) L2-normalised features.
            indexes (Tensor | Sequence[int]): (B,) memory rows (source: class id; target: ``S + sample
                index``); host ints (as :class:`~mmssod.models.reid.spcl.SpCLHead` gives) let the update
                plan its rounds without reading the device.
            reduction (str): ``'mean'`` or ``'none'`` (per sample). Defaults to 'mean'.

        Returns:
            Tensor: Scalar loss, or (B,) per-sample losses (fp32).
        """
        filled, _, num_classes = self._host_scalars()
        if not filled:
            raise RuntimeError(
                'HybridMemory is empty: SpCLClusterHook (custom_hooks) must initialise it before training'
            )
        if isinstance(indexes, Tensor):
            indexes = indexes.detach()
            rows = indexes.to(self.features.device, non_blocking=True)
        else:
            indexes = [int(i) for i in indexes]
            rows = _to_device(indexes, self.features.device)
        if self.training:  # applied by apply_pending_update() after the backward pass (SpCLClusterHook)
            self._pending = (feats.detach(), indexes)
        return unified_contrastive_loss(
            feats,
            self.features,
            self.labels,
            self.labels[rows],
            self.temperature,
            reduction,
            self.prob_eps,
            num_classes,
        )

    @torch.no_grad()
    def update(self, feats: Tensor, indexes: Tensor) -> None:
        """Momentum-update the rows of a batch, gathered from all ranks (call after the loss).

        Args:
            feats (Tensor): (B, D) features of this rank.
            indexes (Tensor | Sequence[int]): (B,) their memory rows.
        """
        all_feats, all_indexes = gather_batch(feats.detach().float(), indexes)
        momentum_update(self.features, all_indexes, all_feats, self.momentum)

    @torch.no_grad()
    def apply_pending_update(self) -> bool:
        """Apply the update of the last training batch (the hook calls it after the optimizer step).

        Returns:
            bool: Whether a batch was pending.
        """
        pending, self._pending = self._pending, None
        if pending is None:
            return False
        self.update(*pending)
        return True

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        self._host = None
        for name in ('features', 'labels'):
            if prefix + name in state_dict:  # adopt the checkpoint's size (memory built empty)
                setattr(self, name, torch.empty_like(state_dict[prefix + name], device=self.features.device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
