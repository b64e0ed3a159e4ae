from .cropbank_hook import CropBankHook  # noqa: F401
from .spcl_cluster_hook import SpCLClusterHook  # noqa: F401
