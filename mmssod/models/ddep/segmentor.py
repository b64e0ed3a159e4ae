"""Fine-tuning DDeP: mmseg ``EncoderDecoder`` with the pretrained encoder and UNet decoder.

``UNetDecodeHead`` is an mmseg decode head whose body is :class:`UNetDecoder` (same parameter names as the
DDeP ``neck``, so :func:`~mmssod.models.ddep.ddep.ddep_to_segmentor` maps weights one to one) followed by
mmseg's ``conv_seg`` classifier. ``DDePEncoderDecoder`` adds the input-size check and refuses unconverted
DDeP checkpoints.

Loading pretrained decoder weights is strict and loud (mmengine's ``load_from`` is not: it only prints
"size mismatch" and leaves such weights random, so a DDeP run would silently become the random-init
baseline). When a checkpoint holds any ``decode_head.decoder.*`` weight, it must carry the decoder layout
recorded by ``tools/model_converters/ddep_to_seg.py``, that layout must equal this decoder's (else the error
names the setting: width, norm, skip strides, channels), and every decoder key must be present with the
right shape and no key may be unexpected. A checkpoint without decoder weights (the encoder-only
random-init-decoder baseline) leaves the decoder at its initialisation.
"""

from __future__ import annotations

import json
from typing import List, Sequence

import torch
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS

from .encoders import InputSkip, ResNetWithStem
from .unet_decoder import UNetDecoder, check_input_size, check_layout

# the DDeP encoders are mmpretrain modules, registered in mmseg too: fine-tuning configs name them plainly
MODELS.register_module('ResNetWithStem', module=ResNetWithStem, force=True)
MODELS.register_module('InputSkip', module=InputSkip, force=True)

#: suffix of the layout entry under the head's prefix (``decode_head.decoder_layout``)
LAYOUT_NAME = 'decoder_layout'


def check_decoder_state(ckpt: dict, own: dict, prefix: str, where: str = 'UNetDecodeHead') -> None:
    """Raise when pretrained decoder weights do not match the decoder key for key.

    Args:
        ckpt (dict): Checkpoint entries under ``prefix`` (name -> tensor).
        own (dict): The model decoder's ``state_dict`` entries under ``prefix``.
        prefix (str): Key prefix, e.g. ``'decode_head.decoder.'``.
        where (str): Component named in the error.

    Raises:
        ValueError: Listing missing, unexpected and mis-shaped keys.
    """
    missing = sorted(set(own) - set(ckpt))
    unexpected = sorted(set(ckpt) - set(own))
    shapes = sorted(
        f'{k}: checkpoint {tuple(ckpt[k].shape)}, model {tuple(own[k].shape)}'
        for k in set(own) & set(ckpt)
        if tuple(ckpt[k].shape) != tuple(own[k].shape)
    )
    if missing or unexpected or shapes:
        parts = []
        for name, items in (('missing', missing), ('unexpected', unexpected), ('mis-shaped', shapes)):
            if items:
                parts.append(
                    f'{len(items)} {name} ({", ".join(items[:5])}{", ..." if len(items) > 5 else ""})'
                )
        raise ValueError(
            f'{where}: the pretrained decoder weights ({prefix}*) do not fit this decoder: '
            + '; '.join(parts)
            + '. The decoder would stay partly random; use the fine-tuning config matching the pretraining '
            'config (same encoder, widen_factor, norm_cfg, in_strides).'
        )


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

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        """Record the decoder layout next to the decoder weights (UTF-8 JSON as a uint8 tensor, so that
        checkpoint tools that move tensors keep working): a fine-tuned checkpoint then loads back
        (``--resume``, ``tools/test.py``) through the same layout check as a converted DDeP checkpoint."""
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + LAYOUT_NAME] = layout_to_tensor(self.decoder.layout())

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        """Check pretrained decoder weights strictly (layout, keys, shapes) before loading them."""
        dec_prefix = prefix + 'decoder.'
        layout = state_dict.pop(prefix + LAYOUT_NAME, None)
        if isinstance(layout, torch.Tensor):  # saved by _save_to_state_dict (the converter writes a dict)
            layout = layout_from_tensor(layout)
        ckpt = {k: v for k, v in state_dict.items() if k.startswith(dec_prefix)}
        if ckpt or layout is not None:
            if layout is None:
                raise ValueError(
                    f'UNetDecodeHead: the checkpoint has decoder weights ({dec_prefix}*) but no recorded '
                    f'decoder layout ({prefix}{LAYOUT_NAME}); convert the DDeP pretraining checkpoint with '
                    'tools/model_converters/ddep_to_seg.py'
                )
            check_layout(layout, self.decoder.layout())
            own = {dec_prefix + k: v for k, v in self.decoder.state_dict().items()}
            check_decoder_state(ckpt, own, dec_prefix)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Segmentation logits.

        Args:
            inputs (Sequence[torch.Tensor]): Encoder features, finest first.

        Returns:
            torch.Tensor: (N, num_classes, H / out_stride, W / out_stride) logits.
        """
        return self.cls_seg(self.decoder(self._transform_inputs(inputs)))


def layout_to_tensor(layout: dict) -> torch.Tensor:
    """A decoder layout dict as a (L,) uint8 tensor of its JSON text."""
    return torch.tensor(list(json.dumps(layout, sort_keys=True).encode('utf-8')), dtype=torch.uint8)


def layout_from_tensor(tensor: torch.Tensor) -> dict:
    """Inverse of :func:`layout_to_tensor`."""
    return json.loads(bytes(tensor.tolist()).decode('utf-8'))


@MODELS.register_module()
class DDePEncoderDecoder(EncoderDecoder):
    """``EncoderDecoder`` that rejects inputs smaller than the UNet decoder's total stride and DDeP
    pretraining checkpoints that were not converted (their ``neck.*`` decoder would silently be skipped)."""

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        """Refuse an unconverted DDeP checkpoint (``neck.*`` / ``head.*`` keys)."""
        if any(k.startswith(prefix + 'neck.') for k in state_dict):
            raise ValueError(
                'DDePEncoderDecoder: load_from is a DDeP pretraining checkpoint (neck.* decoder keys); '
                'convert it first with tools/model_converters/ddep_to_seg.py and load the converted file'
            )
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

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
