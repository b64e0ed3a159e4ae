"""Composited benchmarks built from real pixels that install offline.

Fashion-MNIST items (exact masks and boxes) are pasted onto scikit-image photos and textures. Results on
these sets must be labelled "composited from real images" (:data:`PROVENANCE`), never presented as numbers
on the real benchmark they imitate. See ``configs/_base_/datasets/README_composited.md``.

The generator is a benchmark tool, not part of the ``mmssod`` package (``import mmssod`` loads none of it).
It is imported as ``tools.benchmarks.composited`` with the repository root on ``sys.path``: the tools
scripts (``tools/benchmarks/*_bench.py``, ``tools/dataset_converters/composited_*.py``) insert the root
themselves, ``python -c`` / ``python -m pytest tests`` run from the root have it as the current folder, and
other callers put the root first on ``PYTHONPATH``. ``tools`` and ``tools/benchmarks`` are namespace folders
(no ``__init__.py``).
"""

from .canvas import compose_canvas, long_tail_counts, long_tail_weights
from .corruptions import CORRUPTIONS, random_corruption
from .detection import (
    DEMO_CONFIG,
    DetectionConfig,
    build_detection,
    ensure_demo_detection,
    ensure_detection,
    semi_ann_name,
)
from .errors import CompositedDataError
from .files import PROVENANCE
from .reid import DOMAIN_STYLES, ReIDConfig, build_reid
from .segmentation import SEG_CLASSES, SegmentationConfig, build_segmentation
from .sources import FMNIST_CLASSES, load_backgrounds, load_fashion_mnist

__all__ = [
    'CORRUPTIONS',
    'DEMO_CONFIG',
    'DOMAIN_STYLES',
    'FMNIST_CLASSES',
    'PROVENANCE',
    'SEG_CLASSES',
    'CompositedDataError',
    'DetectionConfig',
    'ReIDConfig',
    'SegmentationConfig',
    'build_detection',
    'build_reid',
    'build_segmentation',
    'compose_canvas',
    'ensure_demo_detection',
    'ensure_detection',
    'load_backgrounds',
    'load_fashion_mnist',
    'long_tail_counts',
    'long_tail_weights',
    'random_corruption',
    'semi_ann_name',
]
