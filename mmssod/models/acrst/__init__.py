"""ACRST (Zhang et al., AAAI 2022): the detector, the SSMLL classifier, and the math (``functional``).

The CropBank and its hook live in :mod:`mmssod.engine.hooks.cropbank_hook`, the FBR/AFFR paste transform
in :mod:`mmssod.datasets.transforms.acrst_paste`.
"""

from . import functional
from .acrst import ACRST, load_ml_scores
from .ssmll import SSMLL, CocoMultiLabelDataset, image_level_targets, teacher_pseudo_targets

__all__ = [
    'ACRST',
    'SSMLL',
    'CocoMultiLabelDataset',
    'functional',
    'image_level_targets',
    'load_ml_scores',
    'teacher_pseudo_targets',
]
