"""SpCL can learn: the hybrid memory moves toward its samples and the unified contrastive loss falls.

The UDA smoke config (quarter-width ResNet-18 with domain-specific BN) on the tiny composited re-ID set
(composited from real images): ``SpCLClusterHook`` fills the memory (source centroids + target instance
features, eval mode) and clusters the target rows; then one batch of the config's sampler (source half +
pseudo-labelled target half) is trained on repeatedly through ``train_step`` with the config's optimiser,
each step followed by the memory's momentum update, as the hook does after every iteration.

The memory rows of the batch move toward the batch's features whatever the learning rate. The contrastive
loss falls below 60% of its first value only when the encoder learns (to about half of it in 20 steps). With
lr 0 the memory converges to the fixed training-mode features of the batch while their cluster mates keep
their eval-mode rows, and the loss rises to about 2.5 times its first value and stays there.
"""

import copy
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.runner import Runner

from mmssod.engine.hooks.spcl_cluster_hook import SpCLClusterHook

from ..conftest import REPO_ROOT
from .conftest import SMOKE_CONFIG

STEPS = 20


def batch_features(model, batch):
    """L2-normalised training-mode embeddings of ``batch`` and the memory row of each sample."""
    with torch.no_grad():
        data = model.data_preprocessor(copy.deepcopy(batch), True)
        emb = model.head(model.extract_feat(data['inputs'].flatten(0, 1)))
    return emb, torch.as_tensor(model.head.memory_rows(data['data_samples']))


@pytest.mark.parametrize('lr', [pytest.param('config', id='config-lr'), pytest.param(0.0, id='lr0')])
def test_memory_moves_toward_its_samples_and_the_contrastive_loss_falls(
    spcl_reid_root, tmp_path, monkeypatch, lr
):
    run_dir, _ = spcl_reid_root
    monkeypatch.chdir(run_dir)  # the smoke config's data_root is relative to the run folder
    cfg = Config.fromfile(osp.join(REPO_ROOT, SMOKE_CONFIG))
    cfg.work_dir = str(tmp_path)
    lr = cfg.optim_wrapper.optimizer.lr if lr == 'config' else lr
    cfg.optim_wrapper.optimizer.lr = lr
    runner = Runner.from_cfg(cfg)
    model = runner.model
    model.init_weights()
    hook = next(h for h in runner.hooks if isinstance(h, SpCLClusterHook))
    hook.before_train(runner)  # memory from eval-mode features
    hook.before_train_epoch(runner)  # target pseudo labels by clustering, handed to the sampler
    batch = next(iter(runner.train_dataloader))
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    memory = model.memory
    emb, rows = batch_features(model, batch)
    start_cos = (memory.features[rows] * emb).sum(1).mean().item()

    losses = []
    for _ in range(STEPS):
        losses.append(model.train_step(copy.deepcopy(batch), optim_wrapper)['loss_spcl'].item())
        memory.apply_pending_update()

    emb, _ = batch_features(model, batch)
    end_cos = (memory.features[rows] * emb).sum(1).mean().item()
    # the memory rows of the batch moved toward the batch's features (momentum update, any lr)
    assert start_cos < 0.2 and end_cos > 0.5, (start_cos, end_cos)
    losses = np.array(losses)
    fell = losses[-3:].mean() < 0.6 * losses[0]
    assert fell == (lr > 0), (lr, losses.round(2).tolist())
