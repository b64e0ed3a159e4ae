"""Encoders for DDeP's UNet: a ResNet whose pyramid starts at the stem, and an optional input skip.

DDeP's decoder is TransUNet's: it has skip connections from the encoder at strides 2 (the ResNet root, i.e.
the stem output before the max-pool), 4, 8 and 16, and upsamples back to full resolution. mmpretrain's
``ResNet`` only returns its four residual stages (strides 4-32), so without the stem the finest skip is at
stride 4 and per-pixel noise is nearly invisible to the decoder: the denoising loss stays at the
predict-zero level. :class:`ResNetWithStem` returns the stem output as level 0, with the same parameter
names as ``ResNet`` (ImageNet checkpoints load unchanged); its level ``i`` has stride ``2 ** (i + 1)``, the
same indexing as ``EfficientNetLite``.

:class:`InputSkip` wraps any encoder and adds the input image itself as a stride-1 level (an optional
full-resolution skip; not in TransUNet and not our default, see ``configs/ddep/README.md``).
"""

from __future__ import annotations

from typing import Sequence, Tuple

import torch
from mmengine.model import BaseModule
from mmpretrain.models.backbones import ResNet
from mmpretrain.registry import MODELS


@MODELS.register_module()
class ResNetWithStem(ResNet):
    """mmpretrain ``ResNet`` whose outputs can include the stem (stride 2, before the max-pool).

    Args:
        out_indices (Sequence[int]): Levels to return, finest first: 0 = the stem output (stride 2,
            ``stem_channels`` channels), ``i`` = residual stage ``i`` (stride ``2 ** (i + 1)``). Defaults to
            (0, 1, 2, 3, 4): strides 2, 4, 8, 16, 32.
        **kwargs: ``ResNet`` arguments (``depth``, ``base_channels``, ``stem_channels``, ``init_cfg``, ...).
    """

    def __init__(self, depth: int, out_indices: Sequence[int] = (0, 1, 2, 3, 4), **kwargs):
        idx = tuple(int(i) for i in out_indices)
        num_stages = kwargs.get('num_stages', 4)
        if not idx or list(idx) != sorted(set(idx)) or idx[0] < 0 or idx[-1] > num_stages:
            raise ValueError(
                f'ResNetWithStem: out_indices={out_indices} must be increasing level indices in '
                f'0..{num_stages} (0 = stem at stride 2, i = residual stage i at stride 2**(i+1))'
            )
        stage_idx = tuple(i - 1 for i in idx if i > 0)
        if not stage_idx:
            raise ValueError('ResNetWithStem: out_indices must include at least one residual stage (1..4)')
        super().__init__(depth=depth, out_indices=stage_idx, **kwargs)
        self.with_stem_out = idx[0] == 0
        self.level_indices = idx

    def train(self, mode: bool = True) -> ResNetWithStem:
        """``ResNet.train`` (frozen stages, ``norm_eval``), returning the module so that calls chain."""
        super().train(mode)
        return self

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Feature pyramid, finest first.

        Args:
            x (torch.Tensor): (N, 3, H, W) images.

        Returns:
            tuple[torch.Tensor]: The stem output (N, stem_channels, ~H/2, ~W/2) if level 0 is requested,
            then the requested residual stages (N, C_i, ~H / 2**(i+1), ~W / 2**(i+1)).
        """
        if self.deep_stem:
            x = self.stem(x)
        else:
            x = self.relu(self.norm1(self.conv1(x)))
        outs = [x] if self.with_stem_out else []
        x = self.maxpool(x)
        for i, layer_name in enumerate(self.res_layers):
            x = getattr(self, layer_name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)


@MODELS.register_module()
class InputSkip(BaseModule):
    """Wrap an encoder so that its pyramid starts with the input image (a stride-1, full-resolution skip).

    The decoder then sees the (noisy) input directly at its last stage. Use with ``UNetDecoder``
    ``in_strides=(1, 2, 4, ...)`` and ``in_channels=(3, ...)``.

    Args:
        encoder (dict): Config of the wrapped encoder (registered in mmpretrain ``MODELS``).
        init_cfg (dict, optional): Initialisation config. Defaults to None (the encoder's own applies).
    """

    def __init__(self, encoder: dict, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.encoder = MODELS.build(encoder)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """``(x,) + encoder(x)``.

        Args:
            x (torch.Tensor): (N, C, H, W) images.

        Returns:
            tuple[torch.Tensor]: The input (N, C, H, W), then the encoder's features, finest first.
        """
        return (x,) + tuple(self.encoder(x))
