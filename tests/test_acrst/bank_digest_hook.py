"""Test-only hook: each rank writes a digest of its CropBank after training (to compare ranks)."""

import hashlib
import json
import os.path as osp
import pickle

import torch
from mmdet.registry import HOOKS
from mmengine.dist import get_rank
from mmengine.hooks import Hook

from mmssod.engine.hooks import CropBankHook


def canonical(state):
    """A CropBank state with every tensor as (dtype, shape, bytes): equal states pickle to equal bytes."""
    if isinstance(state, dict):
        return {k: canonical(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(canonical(v) for v in state)
    if isinstance(state, torch.Tensor):
        return (str(state.dtype), tuple(state.shape), state.numpy().tobytes())
    return state


def bank_digest(bank) -> str:
    """sha256 of a CropBank's full state (crops, statistics, candidates, version)."""
    return hashlib.sha256(pickle.dumps(canonical(bank.state_dict()), protocol=4)).hexdigest()


@HOOKS.register_module()
class ACRSTTestBankDigestHook(Hook):
    """Write ``<work_dir>/bank_rank<r>.json`` with the bank digest and version at the end of training."""

    priority = 'LOWEST'

    def after_train(self, runner) -> None:
        (hook,) = [h for h in runner.hooks if isinstance(h, CropBankHook)]
        out = {
            'digest': bank_digest(hook.bank),
            'version': hook.bank.version,
            'sizes': hook.bank.sizes().tolist(),
        }
        with open(osp.join(runner.work_dir, f'bank_rank{get_rank()}.json'), 'w') as f:
            json.dump(out, f)
