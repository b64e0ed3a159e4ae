# Each method adds one import line per sub-package it creates (detectors, dense_heads, losses, ...).
from . import dense_heads  # noqa: F401
from . import ddep  # noqa: F401
from . import acrst  # noqa: F401
from . import reid  # noqa: F401
