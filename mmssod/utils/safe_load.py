"""Loading checkpoints and dumped results without running code from the file.

A ``.pth`` checkpoint is a pickle: an object in it can name any function to call while it is read. mmssod
loads local checkpoints (``load_from``, ``--resume``, ``tools/test.py CONFIG CKPT``, ``load_checkpoint``) with
``torch.load(weights_only=True)``, which builds only tensors, builtin containers and numbers, plus the few
data types listed in :data:`CHECKPOINT_SAFE_GLOBALS` that every MMEngine checkpoint holds (its message hub's
``HistoryBuffer`` with numpy arrays and scalars). A file that holds any other type is refused with
:class:`UnsafeCheckpointError`, which names the types; nothing from the file runs.

A file you trust (your own checkpoint from an older stack, a release that pickles e.g. an
``argparse.Namespace``) is converted once, explicitly::

    python tools/model_converters/trusted_checkpoint.py IN.pth OUT.pth --trust

which reads it with full unpickling and writes a checkpoint that loads safely.
"""

from __future__ import annotations

import codecs
import io
import os
import os.path as osp
import pickle
from collections import OrderedDict

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

from .config import tool_path

#: ``HistoryBuffer`` pickles its statistics methods as ``getattr(HistoryBuffer, name)``.
_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def _history_buffer_getattr(owner, name: str):
    """The one ``getattr`` an MMEngine checkpoint needs: a ``HistoryBuffer`` statistics method."""
    if owner is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(owner, name)
    raise pickle.UnpicklingError(
        f'the file asks for getattr({owner!r}, {name!r}); only HistoryBuffer statistics methods '
        f'{_HISTORY_BUFFER_METHODS} are read from a checkpoint'
    )


_NUMPY_DTYPE_CLASSES = sorted({type(np.dtype(code)) for code in '?bBhHiIlLqQefdgFDGUSMmV'}, key=str)

#: Data types, beyond tensors and builtins, that a checkpoint may hold. Each builds data only.
CHECKPOINT_SAFE_GLOBALS = [
    HistoryBuffer,
    (_history_buffer_getattr, 'builtins.getattr'),
    np.ndarray,
    np.dtype,
    np._core.multiarray._reconstruct,
    np._core.multiarray.scalar,
    *_NUMPY_DTYPE_CLASSES,
]


def _allowed_names() -> set[str]:
    names = set()
    for entry in CHECKPOINT_SAFE_GLOBALS:
        if isinstance(entry, tuple):
            names.add(entry[1])
        else:
            names.add(f'{entry.__module__}.{entry.__qualname__}')
    return names


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds pickled types that are not loaded by default; the message names them."""


def _refusal(filename: str, reason: str) -> UnsafeCheckpointError:
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
        unsafe = sorted(set(found) - _allowed_names())
    except Exception:  # not a torch zip file: the unpickler's own reason says what it met
        unsafe = []
    what = (
        f'these pickled types: {", ".join(unsafe)}'
        if unsafe
        else f'data that is not loaded safely ({reason})'
    )
    return UnsafeCheckpointError(
        f'{filename} holds {what}. mmssod loads checkpoints with torch.load(weights_only=True) and runs '
        'nothing from the file. If you trust this file, convert it once and load the converted file:\n'
        f'  python {tool_path("model_converters/trusted_checkpoint.py")} {filename} CONVERTED.pth --trust'
    )


def load_checkpoint_file(filename: str, map_location=None) -> dict:
    """Load a local checkpoint with ``weights_only=True`` and MMEngine's data types allowed.

    Registered as MMEngine's loader for local paths by ``import mmssod``.

    Args:
        filename (str): path of a ``.pth`` file.
        map_location: as :func:`torch.load`. Defaults to None.

    Returns:
        dict: the checkpoint.

    Raises:
        FileNotFoundError: no such file.
        UnsafeCheckpointError: the file holds another pickled type (named in the message).
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    try:
        with torch.serialization.safe_globals(CHECKPOINT_SAFE_GLOBALS):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise _refusal(filename, str(err).splitlines()[-1] if str(err) else type(err).__name__) from None


def load_trusted_checkpoint(filename: str, map_location='cpu') -> dict:
    """Load a checkpoint with full unpickling: code in the file runs. Only for files you trust.

    Args:
        filename (str): path of a ``.pth`` file.
        map_location: as :func:`torch.load`. Defaults to 'cpu'.

    Returns:
        dict: the checkpoint.
    """
    return torch.load(filename, map_location=map_location, weights_only=False)


def _tensor_from_bytes(data: bytes):
    """``torch.storage._load_from_bytes`` with ``weights_only=True`` (the stock one unpickles fully)."""
    return torch.load(io.BytesIO(data), weights_only=True)


#: ``module -> {name: object}`` that :class:`_DataUnpickler` resolves; everything else is refused.
_DATA_GLOBALS = {
    '_codecs': {'encode': codecs.encode},  # bytes in pickle protocol 2 (mmengine.dump's default)
    'torch._utils': {'_rebuild_tensor_v2': torch._utils._rebuild_tensor_v2},
    'torch.storage': {'_load_from_bytes': _tensor_from_bytes},
    'collections': {'OrderedDict': OrderedDict},
    'numpy': {'ndarray': np.ndarray, 'dtype': np.dtype},
    'numpy._core.multiarray': {
        '_reconstruct': np._core.multiarray._reconstruct,
        'scalar': np._core.multiarray.scalar,
    },
    'numpy.core.multiarray': {
        '_reconstruct': np._core.multiarray._reconstruct,
        'scalar': np._core.multiarray.scalar,
    },
    'numpy._core.numeric': {'_frombuffer': np._core.numeric._frombuffer},
    'numpy.dtypes': {cls.__name__: cls for cls in _NUMPY_DTYPE_CLASSES},
}


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        found = _DATA_GLOBALS.get(module, {}).get(name)
        if found is None:
            raise UnsafeCheckpointError(
                f'the file asks for {module}.{name}; only tensors, numpy arrays and builtin containers are '
                'read from it, so it is refused and nothing from it runs'
            )
        return found


def load_data_pickle(file):
    """Unpickle a file that holds data only (tensors, numpy arrays, builtin containers), running nothing.

    Reads the predictions that ``tools/test.py --out`` dumps and ACRST's CropBank file.

    Args:
        file (str | BinaryIO): a path, or a binary file positioned at the pickle.

    Returns:
        The unpickled object.

    Raises:
        UnsafeCheckpointError: the pickle asks for any other type (named in the message).
    """
    if isinstance(file, (str, os.PathLike)):
        with open(file, 'rb') as f:
            return _DataUnpickler(f).load()
    return _DataUnpickler(file).load()


def allow_safe_local_checkpoints() -> None:
    """Make MMEngine load local paths through :func:`load_checkpoint_file` (``import mmssod`` does this)."""
    from mmengine.runner.checkpoint import CheckpointLoader

    CheckpointLoader.register_scheme(prefixes='', loader=load_checkpoint_file, force=True)
