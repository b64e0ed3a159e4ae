"""Datasets of mmssod: the Market-1501-layout re-ID dataset and the composited benchmark builders.

Importing this package registers :class:`MarketReIDDataset` into ``mmdet.registry.DATASETS``.
"""

from .composited import ensure_demo_detection
from .reid import MarketReIDDataset, format_market_name, list_reid_folder, parse_market_name

__all__ = [
    'MarketReIDDataset',
    'ensure_demo_detection',
    'format_market_name',
    'list_reid_folder',
    'parse_market_name',
]
from . import reid_lists, reid_uda  # noqa: F401
