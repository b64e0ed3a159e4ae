"""Fine-tuning DDeP: mmseg ``EncoderDecoder`` with the pretrained encoder and UNet decoder.

``UNetDecodeHead`` is an mmseg decode head whose body is :class:`UNetDecoder` (same parameter names as the
DDeP ``neck``, so :func:`~mmssod.models.ddep.ddep.ddep_to_segmentor` maps weights one to one) followed by
mmseg's ``conv_seg`` classifier. ``DDePEncoderDecoder`` only adds the input-size check.
"""

from __future__ import annotations

from typing import List, Sequence

import torch
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS

from .unet_decoder import UNetDecoder, check_input_size


@MODELS.register_module()
class UNetDecodeHead(BaseDecodeHead):
    """mmseg decode head: :class:`UNetDecoder` over all encoder levels, then a 1x1 classifier.

    Args:
        decoder (dict): :class:`UNetDecoder` arguments (``in_channels``, ``in_strides``,
            ``decoder_channels``, ``widen_factor``, ``out_stride``, ``norm_cfg``, ...), without ``type``.
        **kwargs: :class:`BaseDecodeHead` arguments (``num_classes``, ``loss_decode``, ``dropout_ratio``,
            ...). ``in_channels``, ``channels``, ``in_index`` and ``input_transform`` are derived from
            ``decoder`` and must not be given.
    """

    def __init__(self, decoder: dict, **kwargs):
        decoder = dict(decoder)
        decoder.pop('type', None)
        given = sorted(k for k in ('in_channels', 'channels', 'in_index', 'input_transform') if k in kwargs)
        if given:
            raise ValueError(
                f'UNetDecodeHead: {given} are derived from decoder=dict(in_channels=...); set them in decoder'
            )
        body = UNetDecoder(**decoder)
        super().__init__(
            in_channels=list(body.in_channels),
            channels=body.out_channels,
            in_index=list(range(len(body.in_channels))),
            input_transform='multiple_select',
            **kwargs,
        )
        self.decoder = body

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Segmentation logits.

        Args:
            inputs (Sequence[torch.Tensor]): Encoder features, finest first.

        Returns:
            torch.Tensor: (N, num_classes, H / out_stride, W / out_stride) logits.
        """
        return self.cls_seg(self.decoder(self._transform_inputs(inputs)))


@MODELS.register_module()
class DDePEncoderDecoder(EncoderDecoder):
    """``EncoderDecoder`` that rejects inputs smaller than the UNet decoder's total stride."""

    def extract_feat(self, inputs: torch.Tensor) -> List[torch.Tensor]:
        """Encoder features, after checking the input size.

        Args:
            inputs (torch.Tensor): (N, 3, H, W) images, H and W >= the decoder's total stride.

        Returns:
            list[torch.Tensor]: Encoder features, finest first.
        """
        decoder = getattr(self.decode_head, 'decoder', None)
        if isinstance(decoder, UNetDecoder):
            check_input_size(inputs.shape[-2:], decoder.total_stride, 'DDePEncoderDecoder')
        return super().extract_feat(inputs)
