"""Datasets of mmssod: the Market-1501-layout re-ID dataset and its two-domain / pseudo-label wrappers.

Importing this package registers the re-ID datasets into ``mmdet.registry.DATASETS`` and the data
transforms (e.g. ACRST's paste) into ``mmdet.registry.TRANSFORMS``.
"""

from . import coco_multilabel, cropbank, reid_lists, reid_uda, transforms  # noqa: F401  (register)
from .coco_multilabel import CocoMultiLabelDataset
from .cropbank import CropBank
from .reid import MarketReIDDataset, format_market_name, list_reid_folder, parse_market_name

__all__ = [
    'CocoMultiLabelDataset',
    'CropBank',
    'MarketReIDDataset',
    'format_market_name',
    'list_reid_folder',
    'parse_market_name',
]
