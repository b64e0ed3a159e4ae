"""DDeP: Decoder Denoising Pretraining for Semantic Segmentation (Brempong et al., TMLR 2022).

The encoder (pretrained as a classifier) is frozen; a UNet decoder on top of it is trained alone, without
labels, to predict the noise added to the input image:

    x~ = sqrt(gamma) * x + sqrt(1 - gamma) * eps,  gamma = 1 / (1 + sigma^2),  eps ~ N(0, I)
       = (x + sigma * eps) / sqrt(1 + sigma^2)          (scaled additive noise, sigma = 0.22)
    loss = || decoder(encoder(x~)) - eps ||^2           (L2, target = the noise)

``x`` is the image scaled to [-1, 1] (sigma is defined on that scale). The math is in the pure functions
below; :class:`DDeP` wires them into an mmpretrain self-supervised algorithm, and :func:`ddep_to_segmentor`
maps its weights into the fine-tuning segmentor (mmseg ``EncoderDecoder`` + ``UNetDecodeHead``).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from .unet_decoder import check_input_size

NOISE_TYPES = ('scaled', 'simple')
TARGETS = ('noise', 'image')


def noise_gamma(sigma: float) -> float:
    """Signal coefficient gamma of scaled additive noise for a noise level sigma.

    Args:
        sigma (float): Noise standard deviation relative to the signal (paper's best: 0.22).

    Returns:
        float: ``1 / (1 + sigma^2)`` (0.954 for sigma = 0.22).
    """
    return 1.0 / (1.0 + float(sigma) ** 2)


def scaled_additive_noise(x: torch.Tensor, noise: torch.Tensor, sigma: float) -> torch.Tensor:
    """Scaled additive noise (a single diffusion step): ``sqrt(gamma) x + sqrt(1 - gamma) eps``.

    Args:
        x (torch.Tensor): (N, C, H, W) images scaled to [-1, 1].
        noise (torch.Tensor): (N, C, H, W) standard normal noise ``eps``.
        sigma (float): Noise level; ``gamma = 1 / (1 + sigma^2)``.

    Returns:
        torch.Tensor: (N, C, H, W) noisy images ``(x + sigma * eps) / sqrt(1 + sigma^2)``.
    """
    gamma = noise_gamma(sigma)
    return math.sqrt(gamma) * x + math.sqrt(1.0 - gamma) * noise


def simple_additive_noise(x: torch.Tensor, noise: torch.Tensor, sigma: float) -> torch.Tensor:
    """Simple additive noise ``x + sigma * eps`` (the paper's weaker ablation variant).

    Args:
        x (torch.Tensor): (N, C, H, W) images scaled to [-1, 1].
        noise (torch.Tensor): (N, C, H, W) standard normal noise.
        sigma (float): Noise level.

    Returns:
        torch.Tensor: (N, C, H, W) noisy images.
    """
    return x + float(sigma) * noise


def add_noise(x: torch.Tensor, noise: torch.Tensor, sigma: float, noise_type: str = 'scaled') -> torch.Tensor:
    """Corrupt images with DDeP's noise.

    Args:
        x (torch.Tensor): (N, C, H, W) images scaled to [-1, 1].
        noise (torch.Tensor): (N, C, H, W) standard normal noise.
        sigma (float): Noise level.
        noise_type (str): ``'scaled'`` (:func:`scaled_additive_noise`) or ``'simple'``
            (:func:`simple_additive_noise`). Defaults to 'scaled'.

    Returns:
        torch.Tensor: (N, C, H, W) noisy images.
    """
    if noise_type == 'scaled':
        return scaled_additive_noise(x, noise, sigma)
    if noise_type == 'simple':
        return simple_additive_noise(x, noise, sigma)
    raise ValueError(f'DDeP: noise_type must be one of {NOISE_TYPES}, got {noise_type!r}')


def denoising_target(x: torch.Tensor, noise: torch.Tensor, target: str = 'noise') -> torch.Tensor:
    """What the decoder regresses: the noise (paper's choice) or the clean image (ablation).

    Args:
        x (torch.Tensor): (N, C, H, W) clean images scaled to [-1, 1].
        noise (torch.Tensor): (N, C, H, W) the noise that was added.
        target (str): ``'noise'`` or ``'image'``. Defaults to 'noise'.

    Returns:
        torch.Tensor: (N, C, H, W) regression target.
    """
    if target == 'noise':
        return noise
    if target == 'image':
        return x
    raise ValueError(f'DDeP: target must be one of {TARGETS}, got {target!r}')


def to_encoder_input(
    x: torch.Tensor, mean: Optional[torch.Tensor] = None, std: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Map images from the [-1, 1] denoising scale to the normalisation the encoder was trained with.

    Args:
        x (torch.Tensor): (N, C, H, W) (noisy) images on the [-1, 1] scale.
        mean (torch.Tensor, optional): (C,) encoder mean in 0-255 units (e.g. ImageNet's
            123.675, 116.28, 103.53). Defaults to None: feed ``x`` unchanged.
        std (torch.Tensor, optional): (C,) encoder std in 0-255 units. Defaults to None.

    Returns:
        torch.Tensor: (N, C, H, W) ``((x + 1) * 127.5 - mean) / std``, or ``x`` when mean is None.
    """
    if mean is None:
        return x
    return ((x + 1.0) * 127.5 - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


@MODELS.register_module()
class DDePDenoisingHead(BaseModule):
    """1x1 conv from decoder features to the image channels, and the L2 denoising loss.

    Args:
        in_channels (int): Decoder output channels.
        out_channels (int): Image channels. Defaults to 3.
        loss (dict): Loss config. Defaults to ``PixelReconstructionLoss(criterion='L2')``.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 3,
        loss: Optional[dict] = None,
        init_cfg: Optional[dict] = None,
    ):
        super().__init__(init_cfg=init_cfg)
        self.conv_out = nn.Conv2d(in_channels, out_channels, 1)
        self.loss_module = MODELS.build(loss or dict(type='PixelReconstructionLoss', criterion='L2'))

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        """Predict the target.

        Args:
            feat (torch.Tensor): (N, in_channels, H, W) decoder output.

        Returns:
            torch.Tensor: (N, out_channels, H, W) prediction.
        """
        return self.conv_out(feat)

    def loss(self, feat: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """L2 loss between the prediction and the target.

        Args:
            feat (torch.Tensor): (N, in_channels, H, W) decoder output.
            target (torch.Tensor): (N, out_channels, H, W) noise (or image).

        Returns:
            torch.Tensor: Scalar mean squared error.
        """
        pred = self(feat)
        if pred.shape != target.shape:
            raise ValueError(
                f'DDePDenoisingHead: prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ; '
                f'the decoder must output at stride 1 (UNetDecoder out_stride=1) and out_channels must '
                f'equal the image channels'
            )
        return self.loss_module(pred, target)


@MODELS.register_module()
class DDeP(BaseSelfSupervisor):
    """Decoder denoising pretraining: frozen encoder, UNet decoder predicts the added noise.

    Images must reach the model scaled to [-1, 1] (``SelfSupDataPreprocessor`` with ``mean=std=127.5``);
    sigma is defined on that scale. ``encoder_norm`` then maps the noisy image to the normalisation the
    (classifier-pretrained) encoder expects.

    Args:
        backbone (dict): Encoder config (e.g. mmpretrain ``ResNet`` with ``out_indices=(0, 1, 2, 3)``).
        neck (dict): Decoder config (:class:`UNetDecoder` with ``out_stride=1``).
        head (dict): :class:`DDePDenoisingHead` config.
        sigma (float): Noise level. Defaults to 0.22.
        noise_type (str): ``'scaled'`` or ``'simple'`` additive noise. Defaults to 'scaled'.
        target (str): ``'noise'`` or ``'image'``. Defaults to 'noise'.
        freeze_encoder (bool): Freeze the encoder (eval mode, no gradients, not updated): DDeP. ``False``
            is the paper's whole-network variant: encoder and decoder are denoising-pretrained together from
            random init (a backbone that loads pretrained weights is refused). Defaults to True.
        encoder_norm (dict, optional): ``dict(mean=[...], std=[...])`` in 0-255 units applied to the noisy
            image before the encoder. Defaults to None: the encoder sees the [-1, 1] image.
        data_preprocessor (dict, optional): Defaults to ``SelfSupDataPreprocessor(mean=127.5, std=127.5,
            to_rgb=True)``.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(
        self,
        backbone: dict,
        neck: dict,
        head: dict,
        sigma: float = 0.22,
        noise_type: str = 'scaled',
        target: str = 'noise',
        freeze_encoder: bool = True,
        encoder_norm: Optional[dict] = None,
        data_preprocessor: Optional[dict] = None,
        init_cfg: Optional[dict] = None,
    ):
        if noise_type not in NOISE_TYPES:
            raise ValueError(f'DDeP: noise_type must be one of {NOISE_TYPES}, got {noise_type!r}')
        if target not in TARGETS:
            raise ValueError(f'DDeP: target must be one of {TARGETS}, got {target!r}')
        if not (isinstance(sigma, (int, float)) and sigma > 0 and math.isfinite(sigma)):
            raise ValueError(
                f'DDeP: sigma must be a positive noise level (the paper uses 0.22), got {sigma!r}; with '
                f'sigma <= 0 there is no noise to predict'
            )
        if not freeze_encoder and encoder_is_pretrained(backbone):
            raise ValueError(
                'DDeP: freeze_encoder=False is the whole-network variant, which denoising-pretrains encoder '
                'and decoder together from random init, but the backbone config loads pretrained weights '
                f'({backbone.get("type")}: init_cfg / pretrained); set the backbone to random init '
                '(init_cfg=None, or pretrained=False for EfficientNetLite) as in '
                'configs/ddep/*whole-network*, or keep freeze_encoder=True (DDeP: classifier-pretrained '
                'encoder, frozen)'
            )
        if data_preprocessor is None:
            data_preprocessor = dict(
                type='SelfSupDataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3, to_rgb=True
            )
        super().__init__(
            backbone=backbone, neck=neck, head=head, data_preprocessor=data_preprocessor, init_cfg=init_cfg
        )
        self._check_unit_scale()
        self.sigma = float(sigma)
        self.noise_type = noise_type
        self.target = target
        self.freeze_encoder = bool(freeze_encoder)
        if encoder_norm is not None:
            if set(encoder_norm) != {'mean', 'std'}:
                raise ValueError(
                    f'DDeP: encoder_norm must be dict(mean=[...], std=[...]), got {encoder_norm}'
                )
            self.register_buffer(
                'encoder_mean', torch.tensor(encoder_norm['mean'], dtype=torch.float32), False
            )
            self.register_buffer('encoder_std', torch.tensor(encoder_norm['std'], dtype=torch.float32), False)
        else:
            self.encoder_mean = self.encoder_std = None
        if self.freeze_encoder:
            self.backbone.requires_grad_(False)
            self.backbone.eval()

    def _check_unit_scale(self) -> None:
        """Refuse a data preprocessor that does not scale images to [-1, 1]."""
        dp = self.data_preprocessor
        mean, std = getattr(dp, 'mean', None), getattr(dp, 'std', None)
        ok = getattr(dp, '_enable_normalize', False) and mean is not None and std is not None
        ok = (
            ok
            and torch.allclose(mean, torch.full_like(mean, 127.5))
            and torch.allclose(std, torch.full_like(std, 127.5))
        )
        if not ok:
            raise ValueError(
                'DDeP: sigma is defined for images scaled to [-1, 1]; set data_preprocessor=dict('
                "type='SelfSupDataPreprocessor', mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5], "
                'to_rgb=True) and put the encoder normalisation in encoder_norm'
            )

    def train(self, mode: bool = True) -> DDeP:
        """Set train/eval mode, keeping a frozen encoder in eval mode (BN statistics unchanged)."""
        super().train(mode)
        if self.freeze_encoder:
            self.backbone.eval()
        return self

    def extract_feat(self, inputs: torch.Tensor) -> Sequence[torch.Tensor]:
        """Encoder features of images on the [-1, 1] scale (no gradients when the encoder is frozen).

        Args:
            inputs (torch.Tensor): (N, 3, H, W) images scaled to [-1, 1], H and W >= the total stride.

        Returns:
            tuple[torch.Tensor]: Encoder features, finest first.
        """
        check_input_size(inputs.shape[-2:], self.neck.total_stride, 'DDeP')
        x = to_encoder_input(inputs, self.encoder_mean, self.encoder_std)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_encoder):
            return self.backbone(x)

    def loss(self, inputs: Union[torch.Tensor, List[torch.Tensor]], data_samples: List[DataSample]) -> Dict:
        """Denoising loss of one batch.

        Args:
            inputs (torch.Tensor | list[torch.Tensor]): (N, 3, H, W) images scaled to [-1, 1] (a one-view
                list is accepted).
            data_samples (list[DataSample]): Unused (no labels).

        Returns:
            dict[str, torch.Tensor]: ``{'loss': L2 between the decoder's prediction and the target}``.
        """
        x = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        if x.dim() != 4:
            raise ValueError(
                f'DDeP: expected a (N, C, H, W) image batch, got shape {tuple(x.shape)}; use '
                "collate_fn=dict(type='default_collate') in train_dataloader"
            )
        noise = torch.randn_like(x)
        x_noisy = add_noise(x, noise, self.sigma, self.noise_type)
        feats = self.extract_feat(x_noisy)
        dec = self.neck(feats, out_size=x.shape[-2:])
        return dict(loss=self.head.loss(dec, denoising_target(x, noise, self.target)))


def encoder_is_pretrained(backbone: Mapping) -> bool:
    """Whether an encoder config loads pretrained weights (``init_cfg`` of type 'Pretrained', or
    ``EfficientNetLite`` with ``pretrained=True``, its default), looking inside ``InputSkip``.

    Args:
        backbone (Mapping): Encoder config.

    Returns:
        bool: True if building it loads weights.
    """
    if backbone.get('type') == 'InputSkip':
        return encoder_is_pretrained(backbone['encoder'])
    init = backbone.get('init_cfg')
    inits = init if isinstance(init, (list, tuple)) else [init]
    if any(isinstance(i, Mapping) and i.get('type') == 'Pretrained' for i in inits):
        return True
    return str(backbone.get('type', '')).endswith('EfficientNetLite') and bool(
        backbone.get('pretrained', True)
    )


#: where the converted checkpoint records the decoder layout (read by ``UNetDecodeHead`` when loading)
LAYOUT_KEY = 'decode_head.decoder_layout'


def ddep_to_segmentor(
    state_dict: Mapping[str, torch.Tensor], layout: Mapping
) -> OrderedDict[str, Union[torch.Tensor, Dict]]:
    """Map DDeP weights to the fine-tuning segmentor (``EncoderDecoder`` + ``UNetDecodeHead``).

    ``backbone.*`` stays ``backbone.*``; ``neck.*`` (the UNet decoder) becomes ``decode_head.decoder.*``;
    the denoising head and the data preprocessor are dropped (the segmentation classifier starts fresh).
    The decoder's layout is recorded under :data:`LAYOUT_KEY`, so that loading the weights into a decoder
    of another width / norm / skip layout fails with an error naming the setting.

    Args:
        state_dict (Mapping[str, torch.Tensor]): A DDeP ``state_dict`` (``module.`` prefixes of a
            DDP-wrapped model are stripped).
        layout (Mapping): :meth:`UNetDecoder.layout` of the pretrained decoder (``neck``).

    Returns:
        OrderedDict: Segmentor ``state_dict`` entries (tensors shared, not copied) and the layout.
    """
    out: OrderedDict = OrderedDict()
    for key, value in state_dict.items():
        key = key[len('module.') :] if key.startswith('module.') else key
        if key.startswith('backbone.'):
            out[key] = value
        elif key.startswith('neck.'):
            out['decode_head.decoder.' + key[len('neck.') :]] = value
    if not any(k.startswith('decode_head.decoder.') for k in out):
        raise ValueError(
            'ddep_to_segmentor: no "neck." (UNet decoder) weights found; pass a checkpoint saved by a DDeP '
            'pretraining run (configs/ddep/ddep_*pretrain*.py)'
        )
    out[LAYOUT_KEY] = dict(layout)
    return out
