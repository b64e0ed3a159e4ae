from .dece_metric import DECEMetric  # noqa: F401
from .market_reid_metric import MarketReIDMetric  # noqa: F401
