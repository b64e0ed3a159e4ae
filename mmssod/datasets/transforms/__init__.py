# Each method adds one import line per transform module it creates.
from .acrst_paste import ACRSTPaste  # noqa: F401
from .reid_erasing import ReIDRandomErasing  # noqa: F401
