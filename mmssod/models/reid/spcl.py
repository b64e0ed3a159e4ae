"""SpCL re-ID model parts: the hybrid-memory head, domain-specific BN and the re-ID classifier wrapper.

The network is mmdet's :class:`~mmdet.models.BaseReID` (an mmpretrain ``ImageClassifier``): a ResNet with
last stride 1 (``strides=(1, 2, 2, 1)``), average or GeM pooling as the neck, and :class:`SpCLHead`, which
adds the BatchNorm1d "BN neck", L2-normalises the 2048-d feature and trains it with the unified
contrastive loss against the :class:`~mmssod.models.reid.hybrid_memory.HybridMemory` it owns (so the
memory and its labels are part of the model's state dict and of every checkpoint).

For UDA, every BatchNorm becomes a :class:`DomainSpecificBN` pair: the first half of a training batch
(source) goes through BN_S, the second half (target) through BN_T, and evaluation uses BN_T.
"""

from __future__ import annotations

import copy
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmdet.models import BaseReID
from mmdet.registry import MODELS
from mmdet.structures import ReIDDataSample
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from .hybrid_memory import HybridMemory

SOURCE, TARGET = 'source', 'target'


class DomainSpecificBN(nn.Module):
    """A pair of BatchNorms: BN_S for the source half of a training batch, BN_T for the target half.

    Args:
        bn (_BatchNorm): The BatchNorm to split; both copies start from its parameters and statistics.
    """

    def __init__(self, bn: _BatchNorm) -> None:
        super().__init__()
        self.bn_source = copy.deepcopy(bn)
        self.bn_target = copy.deepcopy(bn)

    def forward(self, x: Tensor) -> Tensor:
        """Source half through BN_S, target half through BN_T (training); BN_T only (evaluation)."""
        if not self.training:
            return self.bn_target(x)
        if x.size(0) % 2:
            raise ValueError(
                f'domain-specific BN needs a training batch of source + target halves of equal size, got '
                f'{x.size(0)} samples: use TwoDomainReIDDataset with PseudoIdentitySampler (even batch_size)'
            )
        src, tgt = x.chunk(2)
        return torch.cat([self.bn_source(src), self.bn_target(tgt)])

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Load a plain BatchNorm's keys (e.g. an ImageNet checkpoint) into both BN_S and BN_T.

        A checkpoint of a domain-specific model (``<prefix>bn_source.*`` / ``<prefix>bn_target.*``) loads
        as is; one of a plain model (``<prefix>weight``, ``bias``, ``running_mean``, ``running_var``,
        ``num_batches_tracked``) is copied into both branches, as SpCL's ``convert_dsbn`` copies the BN it
        replaces. Anything else under this prefix (both forms at once, or an incomplete plain BN) raises.
        """
        plain = {
            k[len(prefix) :]: k for k in state_dict if k.startswith(prefix) and '.' not in k[len(prefix) :]
        }
        if plain:
            split = [k for k in state_dict if k.startswith((prefix + 'bn_source.', prefix + 'bn_target.'))]
            if split:
                raise ValueError(
                    f'checkpoint holds both plain BatchNorm keys ({sorted(plain)}) and domain-specific keys '
                    f'({split[:2]}...) for {prefix[:-1]!r}: it is neither a plain nor a DSBN checkpoint'
                )
            expected = set(self.bn_target.state_dict())
            extra = set(plain) - expected
            absent = expected - set(plain) - {'num_batches_tracked'}
            if extra or absent:
                raise ValueError(
                    f'plain BatchNorm keys of {prefix[:-1]!r} in the checkpoint do not form a BatchNorm: '
                    f'unexpected {sorted(extra)}, missing {sorted(absent)}'
                )
            for name, key in plain.items():
                value = state_dict.pop(key)
                for branch in ('bn_source.', 'bn_target.'):
                    state_dict[prefix + branch + name] = value.clone()
            self._loaded_from = 'plain'
        elif any(k.startswith((prefix + 'bn_source.', prefix + 'bn_target.')) for k in state_dict):
            self._loaded_from = 'dsbn'
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def convert_dsbn(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm (1d/2d/3d, SyncBN) under ``module`` by a :class:`DomainSpecificBN`.

    Args:
        module (nn.Module): Model (modified in place).

    Returns:
        nn.Module: ``module`` (or the replacement when ``module`` itself is a BatchNorm).
    """
    if isinstance(module, _BatchNorm):
        return DomainSpecificBN(module)
    for name, child in module.named_children():
        setattr(module, name, convert_dsbn(child))
    return module


def domain_mean_loss(per_sample: Tensor, domains: Sequence[str]) -> Tensor:
    """Sum over domains of the mean per-sample loss within each domain.

    ``loss = mean_{i in source} l_i + mean_{i in target} l_i`` (SpCL's UDA objective, one term per half of
    the batch); with a single domain it is the plain mean.

    Args:
        per_sample (Tensor): (B,) per-sample losses.
        domains (Sequence[str]): (B,) domain of each sample.

    Returns:
        Tensor: Scalar loss.
    """
    if len(domains) != per_sample.numel():
        raise ValueError(f'{len(domains)} domains for {per_sample.numel()} per-sample losses')
    if len(set(domains)) == 1:
        return per_sample.mean()
    total = per_sample.new_zeros(())
    for name in dict.fromkeys(domains):  # first-seen order
        # positions known on the host: no boolean mask, so the device is not read back
        idx = torch.as_tensor([i for i, d in enumerate(domains) if d == name]).to(
            per_sample.device, non_blocking=True
        )
        total = total + per_sample.index_select(0, idx).mean()
    return total


@MODELS.register_module()
class SpCLHead(BaseModule):
    """BN neck + L2-normalised feature + hybrid memory with the unified contrastive loss.

    Memory rows: a source sample (metainfo ``domain='source'``) uses its class label (``gt_label``), a
    target sample (``domain='target'`` or no domain, i.e. unsupervised) uses ``S + sample_idx``.

    Args:
        in_channels (int): Pooled feature size. Defaults to 2048.
        temperature (float): tau of the contrastive loss. Defaults to 0.05.
        momentum (float): Memory momentum (weight of the old row). Defaults to 0.2.
        loss_weight (float): Defaults to 1.0.
        prob_eps (float): 0 for the exact ``-log p``; 1e-6 for the official code's ``-log(p + 1e-6)`` (see
            :func:`~mmssod.models.reid.hybrid_memory.unified_contrastive_loss`). Defaults to 0.0.
        neck_bias_trainable (bool): Train the BN neck's bias. The official model freezes it (BNNeck), but
            its UDA training replaces every BN by freshly built domain-specific BNs, whose biases then train;
            True reproduces that. Defaults to False (frozen, with or without domain-specific BN).
        init_cfg (dict, optional): Defaults to None.
    """

    def __init__(
        self,
        in_channels: int = 2048,
        temperature: float = 0.05,
        momentum: float = 0.2,
        loss_weight: float = 1.0,
        prob_eps: float = 0.0,
        neck_bias_trainable: bool = False,
        init_cfg: Optional[dict] = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.bn_neck = nn.BatchNorm1d(in_channels)
        nn.init.constant_(self.bn_neck.weight, 1.0)
        nn.init.constant_(self.bn_neck.bias, 0.0)
        self.bn_neck.bias.requires_grad_(bool(neck_bias_trainable))
        self.memory = HybridMemory(in_channels, 0, temperature, momentum, prob_eps)
        self.loss_weight = loss_weight

    def forward(self, feats: Union[Tensor, Tuple[Tensor, ...]]) -> Tensor:
        """(B, C) pooled features (or a tuple, last used) -> (B, C) L2-normalised embeddings."""
        x = feats[-1] if isinstance(feats, (tuple, list)) else feats
        return F.normalize(self.bn_neck(x.flatten(1)), dim=1)

    def memory_rows(self, data_samples: Sequence[ReIDDataSample]) -> List[int]:
        """Memory row of every sample (source: its class; target: ``S + sample_idx``), as host ints.

        Args:
            data_samples (Sequence[ReIDDataSample]): With ``sample_idx`` (and ``domain`` for UDA) in their
                metainfo; source samples with their class as ``source_label`` in the metainfo (set by
                :class:`~mmssod.datasets.reid_uda.TwoDomainReIDDataset`, read without a device sync) or
                as ``gt_label``.

        Returns:
            list[int]: (B,) rows.
        """
        s = self.memory.num_source_rows
        rows = []
        for ds in data_samples:
            domain = ds.metainfo.get('domain', TARGET)
            if domain == SOURCE:
                label = ds.metainfo.get('source_label')
                label = int(ds.gt_label.label.reshape(-1)[0]) if label is None else int(label)
                if not 0 <= label < s:
                    raise ValueError(f'source label {label} outside the {s} source classes of the memory')
                rows.append(label)
            else:
                if 'sample_idx' not in ds.metainfo:
                    raise KeyError(
                        "target samples need 'sample_idx' in their metainfo: add it to the meta_keys of "
                        'PackReIDInputs'
                    )
                rows.append(s + int(ds.metainfo['sample_idx']))
        return rows

    def loss(self, feats: Union[Tensor, Tuple[Tensor, ...]], data_samples: List[ReIDDataSample]) -> dict:
        """Unified contrastive loss of the batch against the memory (updated after the backward pass).

        As in the official UDA training, the loss is ``loss_source + loss_target``, each the mean over its own
        domain's samples (:func:`domain_mean_loss`); a batch of one domain (unsupervised / source-only) is
        the plain mean.
        """
        emb = self(feats)
        per_sample = self.memory.loss(emb, self.memory_rows(data_samples), reduction='none')
        domains = [ds.metainfo.get('domain', TARGET) for ds in data_samples]
        return dict(loss_spcl=self.loss_weight * domain_mean_loss(per_sample, domains))

    def predict(
        self, feats: Union[Tensor, Tuple[Tensor, ...]], data_samples: Optional[List[ReIDDataSample]] = None
    ) -> List[ReIDDataSample]:
        """L2-normalised embeddings as ``pred_feature`` of each data sample."""
        emb = self(feats)
        if data_samples is None:
            data_samples = [ReIDDataSample() for _ in range(emb.size(0))]
        for ds, f in zip(data_samples, emb):
            ds.pred_feature = f
        return data_samples


@MODELS.register_module()
class SpCLReID(BaseReID):
    """mmdet's BaseReID for SpCL: batched single images and optional domain-specific BN.

    Args:
        domain_specific_bn (bool): Convert every BatchNorm to :class:`DomainSpecificBN` (UDA).
            Defaults to False.
        *args, **kwargs: :class:`mmdet.models.BaseReID` arguments (backbone, neck, head,
            data_preprocessor, init_cfg).
    """

    def __init__(self, *args, domain_specific_bn: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.domain_specific_bn = domain_specific_bn
        if domain_specific_bn:
            convert_dsbn(self.backbone)
            convert_dsbn(self.neck)
            self.head.bn_neck = convert_dsbn(self.head.bn_neck)

    def init_weights(self) -> None:
        """Initialise as mmengine does; with DSBN, check that a ``Pretrained`` init filled every BN pair.

        mmengine loads ``Pretrained`` checkpoints with ``strict=False`` and only logs missing keys; a
        domain-specific BN that found neither plain BN keys nor its own keys in the checkpoint would silently
        keep weight 1 / mean 0 / var 1 in both branches, so that is an error here.

        Raises:
            RuntimeError: When a ``Pretrained`` checkpoint left domain-specific BNs of its module unloaded.
        """
        dsbn = {n: m for n, m in self.named_modules() if isinstance(m, DomainSpecificBN)}
        for m in dsbn.values():
            m._loaded_from = None
        super().init_weights()
        scopes = {'': self.init_cfg}
        scopes.update(
            {
                name + '.': getattr(getattr(self, name, None), 'init_cfg', None)
                for name in ('backbone', 'neck', 'head')
            }
        )
        for scope, init_cfg in scopes.items():
            cfgs = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
            ckpts = [
                c.get('checkpoint') for c in cfgs if isinstance(c, dict) and c.get('type') == 'Pretrained'
            ]
            if not ckpts:
                continue
            missing = [n for n, m in dsbn.items() if n.startswith(scope) and m._loaded_from is None]
            if missing:
                raise RuntimeError(
                    f'the Pretrained checkpoint {ckpts[0]} of {scope[:-1] or "the model"} has no BatchNorm '
                    f'keys (neither plain nor bn_source / bn_target) for {len(missing)} domain-specific BNs, '
                    f'e.g. {missing[:3]}: they would keep weight 1 / mean 0 / var 1. Use a checkpoint of '
                    'the same architecture (key names as in the model without domain_specific_bn).'
                )

    @property
    def memory(self) -> HybridMemory:
        """The head's hybrid memory."""
        return self.head.memory

    def forward(self, inputs: Tensor, data_samples: Optional[list] = None, mode: str = 'tensor'):
        """mmdet's PackReIDInputs gives each image as (1, C, H, W): a batch arrives as (B, 1, C, H, W)."""
        if inputs.dim() == 5:
            inputs = inputs.flatten(0, 1)
        if mode == 'loss' and self.domain_specific_bn and data_samples is not None:
            domains = [ds.metainfo.get('domain', TARGET) for ds in data_samples]
            half = len(domains) // 2
            if domains != [SOURCE] * half + [TARGET] * (len(domains) - half):
                raise ValueError(
                    'domain-specific BN expects each training batch as [source half | target half]; got '
                    f'{domains}. Use TwoDomainReIDDataset with PseudoIdentitySampler.'
                )
        return super(BaseReID, self).forward(inputs, data_samples, mode)
