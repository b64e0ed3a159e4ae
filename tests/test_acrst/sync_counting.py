"""Count the host syncs of training iterations run by MMEngine's Runner (model step, optimizer, hooks)."""

from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmssod.utils.host_syncs import HostSyncCounter


class CountSyncsHook(Hook):
    """Counts the host syncs of every iteration from ``from_iter`` on, from its ``before_train_iter`` to its
    ``after_train_iter`` (both run last): the model step and every hook's ``after_train_iter``."""

    priority = 'LOWEST'

    def __init__(self, from_iter: int = 1):
        self.from_iter = from_iter
        self.counters: list[HostSyncCounter] = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter >= self.from_iter:
            self.counters.append(HostSyncCounter().__enter__())

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter >= self.from_iter:
            self.counters[-1].__exit__(None, None, None)


def count_training_syncs(cfg, iters: int = 2) -> tuple[list[HostSyncCounter], Runner]:
    """Train ``cfg`` for ``iters`` iterations (no validation, no checkpoint) and count every iteration after
    the first (a warm-up); returns the counters and the runner."""
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.train_cfg.pop('val_interval', None)
    cfg.train_cfg.max_iters = iters
    cfg.train_dataloader.update(num_workers=0, persistent_workers=False)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=iters + 1)
    runner = Runner.from_cfg(cfg)
    hook = CountSyncsHook()
    runner.register_hook(hook)
    runner.train()
    return hook.counters, runner
