"""mmssod: ACRST, Cal-DETR, SpCL and DDeP for MMDetection / MMEngine / MMPretrain.

Importing the package checks the installed stack, applies the compatibility fixes of
:mod:`mmssod.utils.compat`, and registers every mmssod component into the mmdet / mmpretrain registries.
"""

from .utils.compat import apply_compat
from .version import __version__

apply_compat()

from . import datasets, engine, evaluation, models, registry  # noqa: E402,F401  (register components, mmssod::)

__all__ = ['__version__']
