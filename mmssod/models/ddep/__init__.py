"""DDeP (decoder denoising pretraining): UNet decoder, pretraining algorithm, fine-tuning segmentor.

Pretraining components register into ``mmpretrain.registry.MODELS``; the fine-tuning head and segmentor
into ``mmseg.registry.MODELS`` (only when mmsegmentation is installed; it is in requirements/runtime.txt).
"""

from .ddep import (
    LAYOUT_KEY,
    DDeP,
    DDePDenoisingHead,
    add_noise,
    ddep_to_segmentor,
    denoising_target,
    encoder_is_pretrained,
    noise_gamma,
    scaled_additive_noise,
    simple_additive_noise,
    to_encoder_input,
)
from .encoders import InputSkip, ResNetWithStem
from .unet_decoder import UNetDecoder, check_input_size, check_layout

__all__ = [
    'LAYOUT_KEY',
    'DDeP',
    'DDePDenoisingHead',
    'InputSkip',
    'ResNetWithStem',
    'UNetDecoder',
    'add_noise',
    'check_input_size',
    'check_layout',
    'ddep_to_segmentor',
    'denoising_target',
    'encoder_is_pretrained',
    'noise_gamma',
    'scaled_additive_noise',
    'simple_additive_noise',
    'to_encoder_input',
]

try:  # mmseg is needed for fine-tuning only; pretraining works without it
    import mmseg  # noqa: F401
except ImportError:  # pragma: no cover
    pass
else:
    from .segmentor import DDePEncoderDecoder, UNetDecodeHead  # noqa: F401

    __all__ += ['DDePEncoderDecoder', 'UNetDecodeHead']
