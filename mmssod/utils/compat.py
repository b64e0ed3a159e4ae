"""Import-time checks and fixes that users of a modern stack need, applied once by ``import mmssod``.

* A readable error when mmcv / mmengine / mmdet / mmpretrain are outside the supported range, or when mmcv
  was installed without its compiled ops (``mmcv._ext``), instead of an assertion deep inside mmdet.
* ``--resume`` / ``load_from`` on torch >= 2.6: MMEngine 0.10.7 checkpoints hold a pickled message hub
  (``HistoryBuffer``, numpy arrays) that ``torch.load(weights_only=True)`` refuses. MMEngine's loader for
  local paths is replaced by :func:`mmssod.utils.safe_load.load_checkpoint_file`: still ``weights_only=True``,
  with exactly those data types allowed; a file with any other pickled type is refused and nothing in it runs.
  Remote (http / modelzoo) loading is left untouched.
* Distributed runs on machines without CUDA (CI, laptops): mmengine's ``pytorch`` launcher always calls
  ``torch.cuda.set_device`` and wraps models with ``device_ids=[local_rank]``; without CUDA the process
  group is started with gloo and the model is wrapped without device ids, so ``tools/dist_train.sh`` works
  on CPU processes exactly as on GPUs.
* transformers >= 5 breaks mmpretrain 1.2.0's multimodal imports (and so ``mmpretrain.models`` and
  ``mmdet.models``); mmpretrain's multimodal models are switched off before they are imported.
"""

from __future__ import annotations

import importlib.util
from importlib.metadata import PackageNotFoundError, version

from packaging.version import Version

#: Supported ranges, ``name: (minimum inclusive, maximum exclusive)``.
SUPPORTED_VERSIONS = {
    'mmengine': ('0.10.0', '1.0.0'),
    'mmcv': ('2.1.0', '2.2.0'),
    'mmdet': ('3.3.0', '3.4.0'),
    'mmpretrain': ('1.2.0', '1.3.0'),
}
SETUP_HINT = 'Run `make setup` in the mmssod repository (README "The two commands").'


class IncompatibleStackError(ImportError):
    """The installed OpenMMLab stack cannot run mmssod; the message says what to install."""


def installed_versions(names=(*SUPPORTED_VERSIONS, 'mmcv-lite')) -> dict[str, str | None]:
    """Read installed distribution versions without importing them.

    Args:
        names (Iterable[str]): distribution names.

    Returns:
        dict[str, str | None]: version string per name, None when not installed.
    """
    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def check_versions(installed: dict[str, str | None]) -> None:
    """Raise :class:`IncompatibleStackError` listing every package outside :data:`SUPPORTED_VERSIONS`.

    Args:
        installed (dict[str, str | None]): ``name -> version`` (None = missing), e.g. from
            :func:`installed_versions`.
    """
    problems = []
    for name, (low, high) in SUPPORTED_VERSIONS.items():
        have = installed.get(name)
        wanted = f'{name}>={low},<{high}'
        if name == 'mmcv' and have is None and installed.get('mmcv-lite'):
            problems.append(
                f'mmcv-lite {installed["mmcv-lite"]} is installed, but mmdet needs the full mmcv '
                f'with compiled ops: install {wanted} built with MMCV_WITH_OPS=1'
            )
        elif have is None:
            problems.append(f'{name} is not installed: install {wanted}')
        elif not Version(low) <= Version(Version(have).base_version) < Version(high):
            problems.append(f'{name} {have} is installed, but mmssod supports {wanted}')
    if problems:
        raise IncompatibleStackError(
            'mmssod cannot run on the installed OpenMMLab stack:\n  - '
            + '\n  - '.join(problems)
            + f'\n{SETUP_HINT}'
        )


def check_mmcv_ops() -> None:
    """Raise :class:`IncompatibleStackError` when mmcv has no compiled ops (mmdet imports them)."""
    if importlib.util.find_spec('mmcv._ext') is None:
        raise IncompatibleStackError(
            'mmcv is installed without its compiled ops (no module mmcv._ext); mmdet imports mmcv.ops at '
            'import time. Rebuild it against the installed torch:\n'
            '  MMCV_WITH_OPS=1 pip install --no-build-isolation --no-deps --force-reinstall mmcv==2.1.0\n'
            '(--no-build-isolation matters: without it the build cannot see torch and ships no ops). '
            + SETUP_HINT
        )


def _transformers_too_new() -> bool:
    try:
        return Version(version('transformers')).major >= 5
    except PackageNotFoundError:
        return False


def disable_mmpretrain_multimodal_if_needed() -> bool:
    """Switch off mmpretrain's multimodal models when transformers >= 5 would break their import.

    Must run before ``mmpretrain.models`` / ``mmpretrain.datasets`` are imported.

    Returns:
        bool: True when the switch was applied.
    """
    if not _transformers_too_new():
        return False
    from mmpretrain.utils import dependency

    dependency.WITH_MULTIMODAL = False
    return True


def enable_cpu_distributed() -> bool:
    """Let mmengine's ``pytorch`` launcher and DDP wrapper run CPU processes with gloo (no-op with CUDA).

    Returns:
        bool: True when the CPU path was installed.
    """
    import torch

    if torch.cuda.is_available():
        return False
    import mmengine.dist.utils as dist_utils
    from mmengine.model.wrappers import MMDistributedDataParallel

    if getattr(dist_utils._init_dist_pytorch, '_mmssod_cpu', False):
        return True

    def init_dist_pytorch_cpu(backend='gloo', init_backend='torch', **kwargs):
        if init_backend != 'torch':
            raise RuntimeError(f'init_backend={init_backend!r} needs CUDA; on CPU only "torch" (gloo) works')
        torch.distributed.init_process_group(backend='gloo', **kwargs)

    init_dist_pytorch_cpu._mmssod_cpu = True
    dist_utils._init_dist_pytorch = init_dist_pytorch_cpu

    ddp_init = MMDistributedDataParallel.__init__

    def ddp_init_cpu(self, module, detect_anomalous_params=False, **kwargs):
        kwargs['device_ids'] = None  # a CPU module must be wrapped without device ids
        ddp_init(self, module, detect_anomalous_params=detect_anomalous_params, **kwargs)

    MMDistributedDataParallel.__init__ = ddp_init_cpu
    return True


def apply_compat() -> None:
    """Run every check and fix of this module (called once by ``import mmssod``)."""
    check_versions(installed_versions())
    check_mmcv_ops()
    disable_mmpretrain_multimodal_if_needed()
    from .safe_load import allow_safe_local_checkpoints  # imports mmengine: after the version checks

    allow_safe_local_checkpoints()
    enable_cpu_distributed()
