"""A CPU stand-in for tensors on a CUDA device: reading one back to the host raises until ``.cpu()``.

``Runner.resume`` loads checkpoints with ``map_location`` the training device, so on a GPU every tensor of a
restored state is a CUDA tensor, and ``np.asarray`` / ``.numpy()`` of it raise. :func:`on_device` makes
every tensor of a nested state a :class:`DeviceTensor`, which refuses ``numpy``, ``__array__``, ``tolist``
and ``item`` as CUDA tensors refuse numpy (stricter: a restored state is read back once, with ``.cpu()``),
while every other op works and keeps the type. ``.cpu()`` (or ``.to('cpu')``) gives a plain tensor, and
``.numpy(force=True)`` an array, as on CUDA.
"""

import torch
from torch import Tensor

_HOST_READS = {Tensor.numpy, Tensor.__array__, Tensor.tolist, Tensor.item}


def _to_host(args, kwargs) -> bool:
    for a in (*args, kwargs.get('device')):
        if isinstance(a, str) and a.startswith('cpu') or isinstance(a, torch.device) and a.type == 'cpu':
            return True
    return False


class DeviceTensor(Tensor):
    """A tensor that behaves as if it lived on ``cuda:0`` when read back to the host (see module doc)."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _HOST_READS and not (func is Tensor.numpy and kwargs.get('force')):  # force: copies first
            raise TypeError(
                "can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to copy the tensor to "
                'host memory first.'
            )
        if func is Tensor.cpu or func is Tensor.to and _to_host(args[1:], kwargs):
            with torch._C.DisableTorchFunctionSubclass():
                return func(*args, **kwargs).as_subclass(Tensor)
        return super().__torch_function__(func, types, args, kwargs)

    def __deepcopy__(self, memo):
        return self.clone()


def on_device(state):
    """``state`` (nested dicts / lists / tuples) with every tensor a :class:`DeviceTensor` (shared data)."""
    if isinstance(state, Tensor):
        return state.as_subclass(DeviceTensor)
    if isinstance(state, dict):
        return {k: on_device(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(on_device(v) for v in state)
    return state
