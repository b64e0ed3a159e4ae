"""SpCL on a CUDA device, checked on the CPU: the memory, the clustering hook and the loss under
:class:`~tests.fixtures.fake_cuda.FakeCuda`, which raises where a real GPU run would (a host tensor mixed
with a device tensor, ``numpy()`` of a device tensor)."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub, MMLogger

from mmssod.datasets.reid_uda import PseudoIdentitySampler
from mmssod.engine.hooks.spcl_cluster_hook import SpCLClusterHook, class_centroids
from mmssod.models.reid.hybrid_memory import HybridMemory

from ..fixtures.fake_cuda import FakeCuda, OnDevice

DIM, NUM_TARGET = 8, 40


def test_fake_cuda_raises_where_cuda_would():
    with FakeCuda():
        x = torch.randn(3, 4).cuda()
        assert x.device.type == 'cuda' and isinstance(torch.zeros(2, device=x.device), OnDevice)
        with pytest.raises(RuntimeError, match='same device'):
            torch.cat([x, torch.randn(1, 4)])
        with pytest.raises(TypeError, match='cpu'):
            np.asarray(x)
        assert isinstance(x + torch.tensor(1.0), OnDevice)  # 0-d host tensors mix, as on CUDA
        assert type(x.cpu()) is torch.Tensor and x.cpu().numpy().shape == (3, 4)


def source_and_target():
    g = torch.Generator().manual_seed(0)
    source_labels = torch.tensor([0, 0, 1, 2, 2, 2])
    return torch.randn(6, DIM, generator=g), source_labels, torch.randn(NUM_TARGET, DIM, generator=g)


def uda_runner(name):
    model = torch.nn.Module()
    model.memory = HybridMemory(num_features=DIM)
    model.memory._apply(lambda t: t.cuda())
    sampler = PseudoIdentitySampler(list(range(NUM_TARGET)), batch_size=8, iters_per_epoch=2, seed=0)
    dataset = dict(type='TwoDomainReIDDataset', source=dict(domain='source'), target=dict(domain='target'))
    return SimpleNamespace(
        model=model,
        cfg=SimpleNamespace(train_dataloader=SimpleNamespace(dataset=dataset)),
        train_dataloader=SimpleNamespace(sampler=sampler, dataset=None),
        logger=MMLogger.get_instance(name),
        message_hub=MessageHub.get_instance(name),
        epoch=0,
        iter=0,
    )


def test_uda_memory_fills_on_one_device_at_world_size_1():
    """The source centroids are made on the features' device (they were made on the host and crashed
    ``HybridMemory.init_memory`` when concatenated with the device's target features)."""
    source_feats, source_labels, target_feats = source_and_target()
    hook = SpCLClusterHook(pipeline=[], k1=6, k2=3)

    def extract(model, cfg):  # the eval-mode pass's output: device features, host labels
        feats = source_feats if cfg['domain'] == 'source' else target_feats
        labels = source_labels if cfg['domain'] == 'source' else torch.zeros(len(feats), dtype=torch.long)
        return feats.cuda(), labels

    hook._extract = extract
    with FakeCuda():
        runner = uda_runner('spcl_device_init')
        hook.before_train(runner)
        memory = runner.model.memory
        assert memory.features.device.type == 'cuda' and memory.labels.device.type == 'cuda'
        assert int(memory.num_source) == 3 and memory.num_target == NUM_TARGET
        rows = memory.features.cpu()
    want = torch.stack([source_feats[source_labels == c].mean(0) for c in range(3)])
    torch.testing.assert_close(rows[:3], F.normalize(want))
    torch.testing.assert_close(rows[3:], F.normalize(target_feats))
    np.testing.assert_array_equal(runner.train_dataloader.sampler.pseudo_labels, np.arange(NUM_TARGET))


def test_class_centroids_stay_on_the_features_device():
    feats, labels, _ = source_and_target()
    with FakeCuda():
        centroids = class_centroids(feats.cuda(), labels)
        assert centroids.device.type == 'cuda'
        centroids = centroids.cpu()
    torch.testing.assert_close(centroids[1], feats[2])


def test_training_iteration_and_clustering_on_the_device():
    """Loss, backward, deferred momentum update and the next epoch's clustering, all on the device."""
    source_feats, source_labels, target_feats = source_and_target()
    hook = SpCLClusterHook(pipeline=[], k1=6, k2=3, min_samples=2)
    with FakeCuda():
        runner = uda_runner('spcl_device_iter')
        memory = runner.model.memory
        memory.init_memory(class_centroids(source_feats.cuda(), source_labels), target_feats.cuda())
        memory.train()
        feats = F.normalize(torch.randn(8, DIM, generator=torch.Generator().manual_seed(1))).cuda()
        feats.requires_grad_(True)
        rows = memory.target_rows(torch.arange(8, device=feats.device))
        loss = memory.loss(feats, rows)
        loss.backward()
        assert torch.isfinite(loss) and feats.grad.device.type == 'cuda'
        before = memory.features.clone()
        assert memory.apply_pending_update()
        moved = (memory.features != before).any(1).cpu()
        hook.before_train_epoch(runner)
        assert memory.labels.device.type == 'cuda'
    assert moved.tolist() == [False] * 3 + [True] * 8 + [False] * (NUM_TARGET - 8)


def test_resume_from_a_checkpoint_read_to_the_device():
    """``Runner.resume`` reads checkpoints with ``map_location='cuda'``: the memory adopts the device state,
    and the hook hands the resumed pseudo labels to the sampler without re-extracting."""
    source_feats, source_labels, target_feats = source_and_target()
    saved = HybridMemory(num_features=DIM)
    saved.init_memory(class_centroids(source_feats, source_labels), target_feats)
    saved.set_target_labels(torch.arange(NUM_TARGET) // 4)
    hook = SpCLClusterHook(pipeline=[])
    hook._extract = None  # a resumed memory is never re-extracted
    with FakeCuda():
        state = {k: v.cuda() for k, v in saved.state_dict().items()}
        runner = uda_runner('spcl_device_resume')
        memory = runner.model.memory
        memory.load_state_dict(state)
        assert memory.features.device.type == 'cuda' and memory.num_target == NUM_TARGET
        hook.before_train(runner)
        memory.train()
        x = F.normalize(torch.randn(4, DIM, generator=torch.Generator().manual_seed(2))).cuda()
        loss = memory.loss(x, [0, 1, 3, 5])
        memory.apply_pending_update()
        assert torch.isfinite(loss)
    np.testing.assert_array_equal(runner.train_dataloader.sampler.pseudo_labels, np.arange(NUM_TARGET) // 4)
