from .compat import IncompatibleStackError, apply_compat
from .config import check_data_paths, config_path, config_root, get_config, get_model_cfg, load_run_config
from .setup_env import register_all_modules

__all__ = [
    'IncompatibleStackError',
    'apply_compat',
    'check_data_paths',
    'config_path',
    'config_root',
    'get_config',
    'get_model_cfg',
    'load_run_config',
    'register_all_modules',
]
