# One import per method sub-package: importing registers its components.
from . import acrst, backbones, ddep, dense_heads, reid  # noqa: F401
