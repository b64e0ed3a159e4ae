"""CUDA checks, skipped without a GPU: each method's tiny config trains on CUDA with and without ``--amp``,
saves, resumes with ``--resume`` and tests; SpCL's UDA config at world size 1; with 2+ GPUs, NCCL training
through ``tools/dist_train.sh`` keeps every rank's CropBank (ACRST) / hybrid memory (SpCL) equal.

``python tools/benchmarks/cuda_check.py`` runs the same checks and prints a table with s / iteration
against the stock baselines.
"""

import pytest
import torch
import torch.nn.functional as F

from tools.benchmarks.cuda_check import DIST_METHODS, dist_ranks_agree, train_resume_test
from tools.benchmarks.tiny_runs import RUNS, prepare

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
METHODS = {r.name: r for r in RUNS if r.baseline_of is None}


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('cuda_runs'))
    prepare(root, METHODS.values())
    return root


@pytest.mark.parametrize('amp', [False, True], ids=['fp32', 'amp'])
@pytest.mark.parametrize('name', sorted(METHODS))
def test_train_resume_and_test_on_cuda(name, amp, run_dir):
    """SpCL's tiny config is UDA and runs as one process: the memory fills at world size 1."""
    out = train_resume_test(METHODS[name], amp, run_dir)
    assert out['s_per_iter'] is not None and out['s_per_iter'] > 0


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason='needs 2 CUDA devices')
@pytest.mark.parametrize('name', DIST_METHODS)
def test_dist_train_on_2_gpus_keeps_ranks_equal(name, run_dir):
    dist_ranks_agree(METHODS[name], run_dir)


def test_hybrid_memory_on_cuda_equals_the_cpu():
    """Loss and momentum update of the memory on the GPU (vectorised rounds) against the CPU's."""
    from mmssod.models.reid.hybrid_memory import HybridMemory

    g = torch.Generator().manual_seed(0)
    source, target = torch.randn(4, 32, generator=g), torch.randn(30, 32, generator=g)
    feats = F.normalize(torch.randn(12, 32, generator=g), dim=1)
    rows = [0, 0, 1, 1, 2, 2, 4, 9, 11, 20, 21, 33]
    out = {}
    for device in ('cpu', 'cuda'):
        mem = HybridMemory(num_features=32).to(device)
        mem.init_memory(source.to(device), target.to(device))
        mem.set_target_labels((torch.arange(30) // 3).to(device))
        mem.train()
        x = feats.to(device).requires_grad_(True)
        with torch.autocast(device_type=device, dtype=torch.bfloat16 if device == 'cpu' else torch.float16):
            loss = mem.loss(x, rows)
        loss.backward()
        mem.apply_pending_update()
        out[device] = (loss.detach().cpu(), x.grad.cpu(), mem.features.cpu(), mem.labels.cpu())
    cpu, gpu = out['cpu'], out['cuda']
    torch.testing.assert_close(gpu[0], cpu[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gpu[1], cpu[1], rtol=1e-3, atol=1e-5)
    torch.testing.assert_close(gpu[2], cpu[2], rtol=1e-5, atol=1e-6)
    assert torch.equal(gpu[3], cpu[3])
