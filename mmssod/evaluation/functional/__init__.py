from .dece import *  # noqa: F401,F403
from .market_reid import market_reid_eval, squared_euclidean  # noqa: F401
from .temperature_scaling import *  # noqa: F401,F403
