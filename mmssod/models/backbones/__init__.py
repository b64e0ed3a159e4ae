"""Backbones usable from mmdet, mmpretrain and mmseg configs (registered in all three)."""

from .efficientnet_lite import (
    EfficientNetLite,
    PretrainedWeightsError,
    imagenet_classifier,
    imagenet_state_dict,
    pair_state_dicts,
)

__all__ = [
    'EfficientNetLite',
    'PretrainedWeightsError',
    'imagenet_classifier',
    'imagenet_state_dict',
    'pair_state_dicts',
]
