"""UNet decoder with skip connections from a multi-scale encoder (the decoder DDeP pretrains).

The decoder takes the feature pyramid of an encoder, finest level first, and walks it from the deepest level
up: each stage upsamples, concatenates the skip feature of the next finer level and applies two 3x3
conv-norm-act layers (the ``UpConvBlock`` layout of mmseg's ``UNet``). Below the finest encoder level, extra
stages without skips upsample to ``out_stride`` (1 = input resolution, what denoising needs).

The paper's decoder (TransUNet's) has skips at strides 2 (the encoder stem), 4, 8 and 16 (deepest level at
32): ``in_strides=(2, 4, 8, 16, 32)`` with :class:`~mmssod.models.ddep.encoders.ResNetWithStem` or
``EfficientNetLite`` ``out_indices=(0, 1, 2, 3, 4)``. Without the stride-2 skip the decoder cannot see
per-pixel noise and the denoising loss stays at the predict-zero level.

Input sizes: upsampled features are resized to the exact size of their skip feature, and the last stage
can be resized to ``out_size``, so inputs whose sides are not multiples of the total stride work (the
output has exactly the input's size). Inputs smaller than the total stride are rejected with a clear error
by :func:`check_input_size` (callers: :class:`~mmssod.models.ddep.ddep.DDeP` and the DDeP segmentor).

:meth:`UNetDecoder.layout` describes the decoder (skip strides, channels, width, norm); the checkpoint
converter records it and :func:`check_layout` refuses to load weights pretrained with another layout.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS


def check_input_size(size: Sequence[int], total_stride: int, setting: str = 'UNetDecoder') -> None:
    """Raise a clear error when an input image is smaller than the encoder/decoder's total stride.

    Args:
        size (Sequence[int]): ``(H, W)`` of the input batch.
        total_stride (int): Stride of the deepest encoder feature (e.g. 32 for ResNet).
        setting (str): Name of the component to mention in the error. Defaults to 'UNetDecoder'.

    Raises:
        ValueError: If ``H`` or ``W`` is smaller than ``total_stride``.
    """
    h, w = int(size[0]), int(size[1])
    if h < total_stride or w < total_stride:
        raise ValueError(
            f'{setting}: input images of size {h}x{w} are smaller than the total stride {total_stride} '
            f'of the encoder (deepest feature at 1/{total_stride}); resize or crop inputs to at least '
            f'{total_stride}x{total_stride} (e.g. RandomResizedCrop / RandomCrop / Resize in the pipeline)'
        )


def decoder_strides(in_strides: Sequence[int], out_stride: int) -> List[int]:
    """Output stride of every decoder stage, deepest first.

    Args:
        in_strides (Sequence[int]): Strides of the encoder levels, finest first, each twice the previous.
        out_stride (int): Stride of the decoder output (a power of two dividing ``in_strides[0]``).

    Returns:
        list[int]: ``in_strides[-2], ..., in_strides[0], in_strides[0] / 2, ..., out_stride``.
    """
    extra = []
    s = in_strides[0]
    while s > out_stride:
        s //= 2
        extra.append(s)
    return list(in_strides[-2::-1]) + extra


#: norm layers with the same parameters and buffers (interchangeable between pretraining and fine-tuning)
_NORM_ALIASES = {'SyncBN': 'BN', 'BN2d': 'BN', 'MMSyncBN': 'BN'}

#: layout fields in the order they are checked, with the config setting each one comes from
LAYOUT_SETTINGS = (
    ('in_strides', 'in_strides (the skip layout: which encoder levels feed the decoder)'),
    ('in_channels', 'in_channels (the encoder feature channels)'),
    ('widen_factor', 'widen_factor (decoder width 1x / 2x / 3x)'),
    ('stage_channels', 'decoder_channels x widen_factor (the decoder stage widths)'),
    ('norm', 'norm_cfg type (the decoder norm layer)'),
    ('out_stride', 'out_stride'),
)


def check_layout(pretrained: Mapping, model: Mapping, where: str = 'UNetDecodeHead') -> None:
    """Raise a clear error when a pretrained decoder's layout differs from the model's.

    Args:
        pretrained (Mapping): :meth:`UNetDecoder.layout` recorded in the checkpoint.
        model (Mapping): :meth:`UNetDecoder.layout` of the model being loaded.
        where (str): Component named in the error. Defaults to 'UNetDecodeHead'.

    Raises:
        ValueError: Naming every setting that differs, with both values.
    """
    diffs = []
    for key, setting in LAYOUT_SETTINGS:
        a, b = pretrained.get(key), model.get(key)
        a = list(a) if isinstance(a, (list, tuple)) else a
        b = list(b) if isinstance(b, (list, tuple)) else b
        if a != b:
            diffs.append(f'{setting}: checkpoint {a}, model {b}')
    if diffs:
        raise ValueError(
            f"{where}: the pretrained decoder in the checkpoint has another layout than this model's decoder"
            ': '
            + '; '.join(diffs)
            + '. Fine-tune with the config that matches the pretraining config (e.g. the unet2x / unet3x '
            'fine-tuning configs for 2x / 3x decoders) or set model.decode_head.decoder accordingly.'
        )


class UpStage(nn.Module):
    """Upsample, concatenate the skip feature (if any), then two 3x3 conv-norm-act layers."""

    def __init__(
        self, in_channels: int, skip_channels: int, out_channels: int, norm_cfg: dict, act_cfg: dict
    ):
        super().__init__()
        self.convs = nn.Sequential(
            ConvModule(
                in_channels + skip_channels, out_channels, 3, padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg
            ),
            ConvModule(out_channels, out_channels, 3, padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg),
        )

    def forward(self, x: torch.Tensor, skip: Optional[torch.Tensor], size: Sequence[int]) -> torch.Tensor:
        """Upsample ``x`` to ``size``, concatenate ``skip`` and convolve.

        Args:
            x (torch.Tensor): (N, C_in, h, w) coarser feature.
            skip (torch.Tensor, optional): (N, C_skip, H, W) skip feature, or None.
            size (Sequence[int]): Output ``(H, W)``.

        Returns:
            torch.Tensor: (N, C_out, H, W).
        """
        x = F.interpolate(x, size=tuple(size), mode='bilinear', align_corners=False)
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.convs(x)


@MODELS.register_module()
class UNetDecoder(BaseModule):
    """UNet decoder over a multi-scale encoder (DDeP's pretrained decoder).

    Args:
        in_channels (Sequence[int]): Channels of the encoder features, finest level first. Defaults to
            ResNet-50 with its stem (``ResNetWithStem``): ``(64, 256, 512, 1024, 2048)``.
        in_strides (Sequence[int]): Strides of the encoder features, finest first, each twice the previous.
            Defaults to (2, 4, 8, 16, 32) (the paper's skips; a leading 1 adds the input as a skip).
        decoder_channels (Sequence[int]): Channels of each decoder stage, deepest first: one per skip level
            (``len(in_channels) - 1``) plus one per extra x2 stage down to ``out_stride``. Defaults to
            (256, 128, 64, 32, 16) (strides 16, 8, 4, 2, 1).
        widen_factor (float): Width multiplier of all decoder stages (the paper's 1x / 2x / 3x decoders).
            Defaults to 1.
        out_stride (int): Output stride (1 = input resolution). Defaults to 1.
        norm_cfg (dict): Norm layer. Defaults to ``dict(type='BN')``.
        act_cfg (dict): Activation. Defaults to ``dict(type='ReLU')``.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(
        self,
        in_channels: Sequence[int] = (64, 256, 512, 1024, 2048),
        in_strides: Sequence[int] = (2, 4, 8, 16, 32),
        decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
        widen_factor: float = 1.0,
        out_stride: int = 1,
        norm_cfg: Optional[dict] = None,
        act_cfg: Optional[dict] = None,
        init_cfg: Optional[dict] = None,
    ):
        super().__init__(init_cfg=init_cfg)
        self.in_channels = tuple(int(c) for c in in_channels)
        self.in_strides = tuple(int(s) for s in in_strides)
        if len(self.in_channels) < 1 or len(self.in_channels) != len(self.in_strides):
            raise ValueError(
                f'UNetDecoder: in_channels {self.in_channels} and in_strides {self.in_strides} must be '
                f'non-empty and of the same length (one entry per encoder level, finest first)'
            )
        for a, b in zip(self.in_strides, self.in_strides[1:]):
            if b != 2 * a:
                raise ValueError(
                    f'UNetDecoder: in_strides {self.in_strides} must double from level to level (finest '
                    f'first), e.g. (4, 8, 16, 32) for ResNet out_indices=(0, 1, 2, 3)'
                )
        s0 = self.in_strides[0]
        if out_stride < 1 or s0 % out_stride or (s0 // out_stride) & (s0 // out_stride - 1):
            raise ValueError(
                f'UNetDecoder: out_stride={out_stride} must be a power of two that divides the finest '
                f'encoder stride {s0}'
            )
        strides = decoder_strides(self.in_strides, out_stride)
        if len(decoder_channels) != len(strides):
            raise ValueError(
                f'UNetDecoder: decoder_channels has {len(decoder_channels)} entries but in_strides '
                f'{self.in_strides} with out_stride={out_stride} needs {len(strides)} (one per decoder stage '
                f'at strides {strides}, deepest first)'
            )
        if widen_factor <= 0:
            raise ValueError(f'UNetDecoder: widen_factor must be > 0, got {widen_factor}')
        self.out_stride = int(out_stride)
        self.widen_factor = float(widen_factor)
        self.stage_strides = tuple(strides)
        self.stage_channels = tuple(max(1, int(round(c * widen_factor))) for c in decoder_channels)
        norm_cfg = norm_cfg or dict(type='BN')
        act_cfg = act_cfg or dict(type='ReLU')
        self.norm_type = str(norm_cfg.get('type', 'BN'))
        n_skip = len(self.in_channels) - 1
        self.stages = nn.ModuleList()
        prev = self.in_channels[-1]
        for i, ch in enumerate(self.stage_channels):
            skip = self.in_channels[n_skip - 1 - i] if i < n_skip else 0
            self.stages.append(UpStage(prev, skip, ch, norm_cfg, act_cfg))
            prev = ch

    def layout(self) -> Dict:
        """What a pretrained decoder's weights depend on (recorded by the checkpoint converter).

        Returns:
            dict: ``in_strides``, ``in_channels``, ``widen_factor``, ``stage_channels``, ``norm`` (SyncBN
            counted as BN) and ``out_stride``, as plain Python values.
        """
        return dict(
            in_strides=list(self.in_strides),
            in_channels=list(self.in_channels),
            widen_factor=self.widen_factor,
            stage_channels=list(self.stage_channels),
            norm=_NORM_ALIASES.get(self.norm_type, self.norm_type),
            out_stride=self.out_stride,
        )

    @property
    def total_stride(self) -> int:
        """Stride of the deepest encoder level: the smallest input side the decoder accepts."""
        return self.in_strides[-1]

    @property
    def out_channels(self) -> int:
        """Channels of the decoder output."""
        return self.stage_channels[-1]

    def check_features(self, feats: Sequence[torch.Tensor]) -> None:
        """Raise a clear error when the encoder features do not match ``in_channels``.

        Args:
            feats (Sequence[torch.Tensor]): Encoder features, finest first, each (N, C_i, H_i, W_i).
        """
        if len(feats) != len(self.in_channels):
            raise ValueError(
                f'UNetDecoder: the encoder gives {len(feats)} feature levels but in_channels '
                f'{self.in_channels} expects {len(self.in_channels)}; match the encoder out_indices '
                f'(e.g. ResNetWithStem / EfficientNetLite out_indices=(0, 1, 2, 3, 4) for strides 2-32) and '
                f'UNetDecoder in_channels / in_strides'
            )
        got = tuple(int(f.shape[1]) for f in feats)
        if got != self.in_channels:
            raise ValueError(
                f'UNetDecoder: encoder feature channels {got} do not match in_channels {self.in_channels}; '
                f'set in_channels to the encoder channels (ResNetWithStem-18/34: (64, 64, 128, 256, 512), '
                f'ResNetWithStem-50/101: (64, 256, 512, 1024, 2048), EfficientNetLite lite0: '
                f'(16, 24, 40, 112, 320))'
            )

    def forward(
        self, feats: Sequence[torch.Tensor], out_size: Optional[Sequence[int]] = None
    ) -> torch.Tensor:
        """Decode the encoder pyramid.

        Args:
            feats (Sequence[torch.Tensor]): Encoder features, finest first; level ``i`` is
                (N, in_channels[i], ~H / in_strides[i], ~W / in_strides[i]).
            out_size (Sequence[int], optional): Exact ``(H, W)`` of the last stage (the input size when
                ``out_stride == 1``). Defaults to None: twice the previous stage's size.

        Returns:
            torch.Tensor: (N, out_channels, H / out_stride, W / out_stride).
        """
        feats = tuple(feats)
        self.check_features(feats)
        n_skip = len(feats) - 1
        x = feats[-1]
        last = len(self.stages) - 1
        for i, stage in enumerate(self.stages):
            if i < n_skip:
                skip = feats[n_skip - 1 - i]
                size: Tuple[int, ...] = tuple(skip.shape[-2:])
            else:
                skip = None
                size = tuple(2 * d for d in x.shape[-2:])
            if i == last and out_size is not None:
                size = tuple(int(d) for d in out_size)
            x = stage(x, skip, size)
        return x
