# Each method adds one import line per sub-package it creates (detectors, dense_heads, losses, ...).
from . import ddep  # noqa: F401
