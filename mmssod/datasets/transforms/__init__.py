# Each method adds one import line per transform module it creates.
from .acrst_paste import ACRSTPaste  # noqa: F401
