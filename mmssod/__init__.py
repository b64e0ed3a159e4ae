"""mmssod: ACRST, Cal-DETR, SpCL and DDeP for MMDetection / MMEngine / MMPretrain.

Importing the package checks the installed stack, applies the compatibility fixes of
:mod:`mmssod.utils.compat`, registers every mmssod component into the mmdet / mmpretrain / mmseg
registries, and lets MMEngine read ``mmssod::<config>`` (:mod:`mmssod.registry`).
"""

from .utils.compat import apply_compat
from .version import __version__

apply_compat()

from . import datasets, engine, evaluation, models, registry  # noqa: E402,F401  (registration, mmssod::)

__all__ = ['__version__']
