"""HostSyncCounter: each kind of call that makes a GPU wait for the host is counted at its calling line."""

import numpy as np
import torch

from mmssod.utils.host_syncs import HostSyncCounter


def test_counts_every_kind_by_calling_line():
    x, m = torch.randn(6), torch.tensor([True, False] * 3)
    with HostSyncCounter() as syncs:
        kinds = {
            'item': lambda: x[0].item(),
            'bool': lambda: bool(x[0] > 0),
            'int': lambda: int(x[1]),
            'tolist': lambda: x.tolist(),
            'mask_index': lambda: x[m],
            'nonzero': lambda: m.nonzero(),
            'unique': lambda: torch.unique(x),
            'bincount': lambda: torch.bincount(torch.tensor([0, 2])),
            'cpu': lambda: x.cpu(),
            'numpy': lambda: np.asarray(x),
            'h2d': lambda: torch.tensor([1, 2], device=x.device),
        }
        for fn in kinds.values():
            fn()
    found = {kind for kind, _ in syncs.calls}
    assert set(kinds) <= found, set(kinds) - found
    assert all(loc.startswith(__file__) for _, loc in syncs.calls)  # attributed to this file, not torch
    assert syncs.count(__file__) == syncs.count() >= len(kinds)


def test_device_side_ops_and_non_blocking_copies_are_not_counted():
    x = torch.randn(4, 3)
    with HostSyncCounter() as syncs:
        y = (x @ x.t()).softmax(1).sum(0)
        idx = torch.as_tensor([0, 2]).to(x.device, non_blocking=True)  # host ints, no wait
        x.index_select(0, idx).masked_fill(x[:2] > 0, 0.0)
        y.to(x.device)
        torch.as_tensor([1.0], device='cpu')  # a host tensor by name
    assert syncs.count() == 0, syncs.table()
