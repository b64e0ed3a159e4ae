# One import per method sub-package: importing registers its components.
from . import acrst, backbones, cal_detr, data_preprocessors, ddep, reid  # noqa: F401
