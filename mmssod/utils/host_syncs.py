"""Count the operations that make a CUDA device wait for the host, on any device (CPU included).

On a GPU, reading a value back to Python (``.item()``, ``bool(t)``, ``.tolist()``), an op whose output size
depends on the data (``nonzero``, boolean-mask indexing, ``unique``, ``bincount``) or a copy to the host
(``.cpu()``, ``.numpy()``) blocks until the queued kernels finish, and so does a blocking copy of host data
to the device (``torch.tensor(data, device=d)``: counted as ``h2d`` wherever ``device`` is given, except as
the string ``'cpu'``; ``.to(d, non_blocking=True)`` of a host tensor does not wait). These are the same
Python-level calls on every device, so a :class:`HostSyncCounter` run on CPU counts what a CUDA run would
wait for::

    with HostSyncCounter() as syncs:
        runner.train_step(...)
    syncs.count('mmssod')      # syncs whose calling line is in mmssod
    print(syncs.table())       # per calling line, most frequent first

Each sync is attributed to the first stack frame outside torch (the line that called torch).
"""

from __future__ import annotations

import collections
import os.path as osp
import sys

import torch
from torch.overrides import TorchFunctionMode

_T = torch.Tensor
# calls that always wait for the device
_ALWAYS = {
    _T.item: 'item',
    _T.tolist: 'tolist',
    _T.__bool__: 'bool',
    _T.__int__: 'int',
    _T.__float__: 'float',
    _T.__index__: 'index',
    _T.numpy: 'numpy',
    _T.__array__: 'numpy',
    _T.cpu: 'cpu',
    _T.nonzero: 'nonzero',
    torch.nonzero: 'nonzero',
    torch.argwhere: 'nonzero',
    _T.argwhere: 'nonzero',
    torch.masked_select: 'masked_select',
    _T.masked_select: 'masked_select',
    torch.unique: 'unique',
    _T.unique: 'unique',
    torch.unique_consecutive: 'unique',
    _T.unique_consecutive: 'unique',
    torch.bincount: 'bincount',
    _T.bincount: 'bincount',
    torch.equal: 'equal',
    torch.allclose: 'allclose',
    _T.allclose: 'allclose',
    torch.is_nonzero: 'bool',
}
_PKG_DIRS = {
    'torch': osp.dirname(torch.__file__),
    'this': osp.abspath(__file__),
}


def _is_mask(index) -> bool:
    if isinstance(index, torch.Tensor):
        return index.dtype == torch.bool
    if isinstance(index, tuple):
        return any(_is_mask(i) for i in index)
    return False


def _kind(func, args, kwargs) -> str | None:
    """The kind of host sync ``func(*args, **kwargs)`` is, or None."""
    kind = _ALWAYS.get(func)
    if kind is not None:
        return kind
    if func is _T.__getitem__ and _is_mask(args[1]):
        return 'mask_index'
    if func is _T.__setitem__ and _is_mask(args[1]):
        return 'mask_assign'
    if func in (torch.where, _T.where) and len(args) + len(kwargs) == 1:
        return 'nonzero'
    if func in (torch.repeat_interleave, _T.repeat_interleave):
        repeats = args[1] if len(args) > 1 else kwargs.get('repeats', args[0])  # 1-arg form: the repeats
        if isinstance(repeats, torch.Tensor) and kwargs.get('output_size') is None:
            return 'repeat_interleave'
    if func in (_T.to, _T.type) and _to_host(args[0], args[1:], kwargs):
        return 'cpu'
    if func in (torch.tensor, torch.as_tensor) and not isinstance(args[0], torch.Tensor):
        device = kwargs.get('device', args[2] if func is torch.as_tensor and len(args) > 2 else None)
        if device is not None and not (isinstance(device, str) and device.startswith('cpu')):
            return 'h2d'
    return None


def _to_host(tensor, args, kwargs) -> bool:
    """Whether ``tensor.to(*args, **kwargs)`` copies to the host: ``'cpu'`` by name, or a CPU device given
    as a ``torch.device`` (often ``other.device``) while the tensor is elsewhere."""
    for a in (*args, kwargs.get('device')):
        if isinstance(a, str) and a.startswith('cpu'):
            return True
        if isinstance(a, torch.device) and a.type == 'cpu' and tensor.device.type != 'cpu':
            return True
    return False


def _caller() -> str:
    """``path:line`` of the first frame outside torch and this module."""
    frame = sys._getframe(2)
    while frame is not None:
        path = frame.f_code.co_filename
        if not (path.startswith(_PKG_DIRS['torch']) or path == _PKG_DIRS['this']):
            return f'{path}:{frame.f_lineno}'
        frame = frame.f_back
    return '?'


class HostSyncCounter(TorchFunctionMode):
    """A ``TorchFunctionMode`` that records every host sync (see the module docstring) by calling line."""

    def __init__(self):
        super().__init__()
        self.calls: collections.Counter = collections.Counter()  # (kind, 'path:line') -> n

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        kind = _kind(func, args, kwargs)
        if kind is not None:
            self.calls[(kind, _caller())] += 1
        return func(*args, **kwargs)

    def reset(self) -> None:
        self.calls.clear()

    def count(self, where: str | None = None) -> int:
        """Syncs whose calling path contains ``where`` (e.g. ``'mmssod'``, ``'acrst.py'``); all if None."""
        return sum(n for (_, loc), n in self.calls.items() if where is None or where in loc)

    def table(self, where: str | None = None) -> str:
        """One line per (kind, calling line), most frequent first."""
        rows = [(n, kind, loc) for (kind, loc), n in self.calls.items() if where is None or where in loc]
        return '\n'.join(f'{n:5d}  {kind:17s} {loc}' for n, kind, loc in sorted(rows, reverse=True))
