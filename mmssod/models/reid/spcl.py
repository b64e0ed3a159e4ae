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
        init_cfg (dict, optional): Defaults to None.
    """

    def __init__(
        self,
        in_channels: int = 2048,
        temperature: float = 0.05,
        momentum: float = 0.2,
        loss_weight: float = 1.0,
        init_cfg: Optional[dict] = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.bn_neck = nn.BatchNorm1d(in_channels)
        nn.init.constant_(self.bn_neck.weight, 1.0)
        nn.init.constant_(self.bn_neck.bias, 0.0)
        self.bn_neck.bias.requires_grad_(False)
        self.memory = HybridMemory(in_channels, 0, temperature, momentum)
        self.loss_weight = loss_weight

    def forward(self, feats: Union[Tensor, Tuple[Tensor, ...]]) -> Tensor:
        """(B, C) pooled features (or a tuple, last used) -> (B, C) L2-normalised embeddings."""
        x = feats[-1] if isinstance(feats, (tuple, list)) else feats
        return F.normalize(self.bn_neck(x.flatten(1)), dim=1)

    def memory_rows(self, data_samples: Sequence[ReIDDataSample], device: torch.device) -> Tensor:
        """Memory row of every sample (source: its class; target: ``S + sample_idx``).

        Args:
            data_samples (Sequence[ReIDDataSample]): With ``sample_idx`` (and ``domain`` for UDA) in their
                metainfo, and ``gt_label`` for source samples.
            device (torch.device): Output device.

        Returns:
            Tensor: (B,) int64 rows.
        """
        s = int(self.memory.num_source)
        rows = []
        for ds in data_samples:
            domain = ds.metainfo.get('domain', TARGET)
            if domain == SOURCE:
                label = int(ds.gt_label.label.reshape(-1)[0])
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
        return torch.as_tensor(rows, dtype=torch.long, device=device)

    def loss(self, feats: Union[Tensor, Tuple[Tensor, ...]], data_samples: List[ReIDDataSample]) -> dict:
        """Unified contrastive loss of the batch against the memory (updated after the backward pass)."""
        emb = self(feats)
        rows = self.memory_rows(data_samples, emb.device)
        return dict(loss_spcl=self.loss_weight * self.memory.loss(emb, rows))

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
