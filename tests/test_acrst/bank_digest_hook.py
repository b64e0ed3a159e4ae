"""Test-only hook: each rank writes a digest of its CropBank after training (to compare ranks)."""

import hashlib
import json
import os.path as osp
import pickle

from mmdet.registry import HOOKS
from mmengine.dist import get_rank
from mmengine.hooks import Hook

from mmssod.engine.hooks import CropBankHook


def bank_digest(bank) -> str:
    """sha256 of a CropBank's full state (crops, statistics, candidates, version)."""
    return hashlib.sha256(pickle.dumps(bank.state_dict(), protocol=4)).hexdigest()


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
