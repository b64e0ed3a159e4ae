"""Datasets of mmssod: the Market-1501-layout re-ID dataset and the composited benchmark builders.

Importing this package registers the re-ID datasets into ``mmdet.registry.DATASETS`` and the data
transforms (e.g. ACRST's paste) into ``mmdet.registry.TRANSFORMS``.
"""

from . import reid_lists, reid_uda, transforms  # noqa: F401  (register datasets and transforms)
from .composited import ensure_demo_detection
from .reid import MarketReIDDataset, format_market_name, list_reid_folder, parse_market_name

__all__ = [
    'MarketReIDDataset',
    'ensure_demo_detection',
    'format_market_name',
    'list_reid_folder',
    'parse_market_name',
]
