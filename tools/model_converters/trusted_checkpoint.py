"""Convert a checkpoint you trust into one that mmssod loads safely (``weights_only=True``).

mmssod refuses checkpoints that hold pickled types other than tensors, builtins, numpy data and MMEngine's
``HistoryBuffer`` (see ``mmssod/utils/safe_load.py``). For a file from a source you trust, this tool reads it
with full unpickling (code in the file runs: that is why ``--trust`` is required), keeps every tensor and data
value, turns ``argparse.Namespace`` objects into dicts, drops any other object (each dropped entry is
printed), writes the result and checks that it loads safely::

    python tools/model_converters/trusted_checkpoint.py IN.pth OUT.pth --trust
"""

from __future__ import annotations

import argparse
import os.path as osp
import sys
from argparse import Namespace
from collections import OrderedDict

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # run from a source checkout
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.logging import HistoryBuffer  # noqa: E402

from mmssod.utils.safe_load import load_checkpoint_file, load_trusted_checkpoint  # noqa: E402

_DATA = (torch.Tensor, str, bytes, int, float, bool, type(None), np.ndarray, np.generic, HistoryBuffer)


def to_safe(obj, path: str, dropped: list[str]):
    """Return ``obj`` with only data types left; record the path and type of every dropped value.

    Args:
        obj: a loaded checkpoint or a value inside it.
        path (str): where ``obj`` sits in the checkpoint, for the report.
        dropped (list[str]): collects ``'path (type)'`` of dropped values.

    Returns:
        The converted value, or None when ``obj`` is dropped.
    """
    if isinstance(obj, _DATA):
        return obj
    if isinstance(obj, Namespace):
        obj = vars(obj)
    if isinstance(obj, dict):
        out = OrderedDict() if isinstance(obj, OrderedDict) else {}
        for key, value in obj.items():
            converted = to_safe(value, f'{path}.{key}' if path else str(key), dropped)
            if converted is not None or value is None:
                out[key] = converted
        return out
    if isinstance(obj, (list, tuple)):
        items = [to_safe(v, f'{path}[{i}]', dropped) for i, v in enumerate(obj)]
        return tuple(items) if type(obj) is tuple else items
    dropped.append(f'{path} ({type(obj).__module__}.{type(obj).__qualname__})')
    return None


def main(argv=None) -> list[str]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('src', help='the checkpoint to convert (it is unpickled fully: only a file you trust)')
    p.add_argument('dst', help='where to write the converted checkpoint')
    p.add_argument('--trust', action='store_true', help='confirm that you trust src (required)')
    args = p.parse_args(argv)
    if not args.trust:
        p.error(
            'reading the file runs any code it holds: pass --trust only for a file from a source you trust'
        )
    if not osp.isfile(args.src):
        p.error(f'no such checkpoint: {args.src}')
    dropped: list[str] = []
    converted = to_safe(load_trusted_checkpoint(args.src), '', dropped)
    torch.save(converted, args.dst)
    load_checkpoint_file(args.dst, map_location='cpu')
    for entry in dropped:
        print(f'dropped: {entry}')
    print(f'wrote {args.dst} (loads with weights_only=True; {len(dropped)} value(s) dropped)')
    return dropped


if __name__ == '__main__':
    main()
