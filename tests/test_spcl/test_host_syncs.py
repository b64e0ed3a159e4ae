"""Host syncs of an SpCL training iteration (UDA, domain-specific BN, PK source half) in mmssod's own lines:
none at world size 1 (with several ranks the all-gather of the batch's memory rows adds one read-back).

The memory is updated by the device code path (the vectorised rounds, as on a GPU; the CPU's compiled loop is
switched off), and the batch is what :class:`~mmssod.datasets.reid_uda.TwoDomainReIDDataset` gives: source
classes on the host as ``source_label``.
"""

import torch
from mmengine.optim import OptimWrapper

from mmssod.models.reid import hybrid_memory
from mmssod.utils.host_syncs import HostSyncCounter

from .test_dsbn_and_loss import _model, _samples


def uda_batch(step):
    g = torch.Generator().manual_seed(step)
    domains = ['source'] * 8 + ['target'] * 8
    labels = [0, 0, 0, 0, 2, 2, 2, 2] + [0] * 8  # 2 source classes x 4 instances, then 8 target images
    samples = _samples(domains, labels)
    for i, ds in enumerate(samples):
        ds.set_metainfo(dict(sample_idx=int(torch.randint(0, 20, (), generator=g)) if i >= 8 else i))
        if i < 8:
            ds.set_metainfo(dict(source_label=labels[i]))
    images = [torch.randint(0, 256, (1, 3, 32, 16), dtype=torch.uint8, generator=g) for _ in domains]
    return dict(inputs=images, data_samples=samples)


def test_training_iteration_makes_no_host_sync_in_mmssod(monkeypatch):
    monkeypatch.setattr(hybrid_memory, '_update_kernel', lambda: None)  # the GPU path of the update
    monkeypatch.setattr(torch, 'get_num_threads', lambda: 1)
    torch.manual_seed(0)
    model = _model(True)
    model.memory.init_memory(torch.randn(3, 64), torch.randn(20, 64))
    model.memory.set_target_labels(torch.arange(20) // 3)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    model.train()
    model.train_step(uda_batch(0), optim)  # warm-up iteration
    model.memory.apply_pending_update()
    before = model.memory.features.clone()
    batch = uda_batch(1)
    with HostSyncCounter() as syncs:
        log_vars = model.train_step(batch, optim)
        assert model.memory.apply_pending_update()
    assert torch.isfinite(log_vars['loss']) and not torch.equal(model.memory.features, before)
    assert syncs.count('mmssod') == 0, syncs.table('mmssod')


def test_tiny_config_training_iteration_has_no_mmssod_sync(spcl_reid_root):
    """The benchmark's count on the real smoke config: Runner, SpCLClusterHook's update, logging."""
    from tools.benchmarks.host_syncs import count_run
    from tools.benchmarks.tiny_runs import RUNS

    run_dir, _ = spcl_reid_root
    (spcl,) = [r for r in RUNS if r.name == 'SpCL']
    result = count_run(spcl, 3, run_dir)
    assert result['iterations'] == 2 and result['total'] > 0  # mmengine's own calls are counted
    assert result['mmssod'] == 0, result['mmssod_lines']
