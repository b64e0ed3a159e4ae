# One import per method sub-package: importing registers its components.
from . import acrst, backbones, cal_detr, ddep, reid  # noqa: F401
