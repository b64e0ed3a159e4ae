"""ACRST (Zhang et al., AAAI 2022): the detector, the SSMLL classifier, and the math (``functional``).

The CropBank (records, PR / mu statistics, bank file) lives in :mod:`mmssod.datasets.cropbank`, its hook in
:mod:`mmssod.engine.hooks.cropbank_hook`, the FBR/AFFR paste transform in
:mod:`mmssod.datasets.transforms.acrst_paste`, SSMLL's dataset in :mod:`mmssod.datasets.coco_multilabel` and
its data preprocessor in :mod:`mmssod.models.data_preprocessors`.
"""

from . import functional
from .acrst import ACRST, load_ml_scores
from .ssmll import SSMLL, image_level_targets, teacher_pseudo_targets

__all__ = [
    'ACRST',
    'SSMLL',
    'functional',
    'image_level_targets',
    'load_ml_scores',
    'teacher_pseudo_targets',
]
