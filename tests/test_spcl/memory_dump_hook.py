"""A test-only hook: every rank saves its hybrid memory after training (to compare ranks)."""

import os.path as osp

import torch
from mmdet.registry import HOOKS
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper


@HOOKS.register_module()
class SpCLMemoryDumpHook(Hook):
    """Save the memory after its initialisation (``init_rank<r>.pt``) and training (``memory_rank<r>.pt``)."""

    priority = 'LOWEST'

    def _dump(self, runner, name: str) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        mem = model.memory
        torch.save(
            dict(features=mem.features.cpu().clone(), labels=mem.labels.cpu().clone(), iters=runner.iter),
            osp.join(runner.work_dir, f'{name}_rank{get_rank()}.pt'),
        )

    def before_train(self, runner) -> None:
        self._dump(runner, 'init')  # after SpCLClusterHook (higher priority) filled the memory

    def after_train(self, runner) -> None:
        self._dump(runner, 'memory')
