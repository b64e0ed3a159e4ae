"""HybridMemory: unified contrastive loss and gradient by hand, vectorised update vs the sequential rule."""

import math

import pytest
import torch
import torch.nn.functional as F

from mmssod.models.reid.hybrid_memory import (
    HybridMemory,
    class_logits,
    momentum_update,
    momentum_update_vectorised,
    occurrence_rounds,
    unified_contrastive_loss,
)


def test_loss_and_gradient_match_hand_computation():
    # 2-d features so every number can be written down; tau = 0.5
    memory = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [-1.0, 0.0]])
    labels = torch.tensor([0, 1, 1, 3])  # class 2 is empty (masked); class 1 = mean of rows 1 and 2
    x = torch.tensor([[0.8, 0.6]], requires_grad=True)
    tau = 0.5
    loss = unified_contrastive_loss(x, memory, labels, torch.tensor([1]), tau)
    # instance logits: x.f / tau = [1.6, 1.2, 1.92, -1.6]
    # class logits: c0 = 1.6, c1 = (1.2 + 1.92) / 2, c3 = -1.6
    c0, c1, c3 = 1.6, (1.2 + 1.92) / 2, -1.6
    z = math.exp(c0) + math.exp(c1) + math.exp(c3)
    assert loss.item() == pytest.approx(-(c1 - math.log(z)), abs=1e-6)
    loss.backward()
    p = [math.exp(c) / z for c in (c0, c1, c3)]
    # d loss / d x = sum_k (p_k - y_k) d c_k / d x, d c_k / d x = mean of member rows / tau
    grads = [memory[0] / tau, (memory[1] + memory[2]) / 2 / tau, memory[3] / tau]
    expect = p[0] * grads[0] + (p[1] - 1) * grads[1] + p[2] * grads[2]
    torch.testing.assert_close(x.grad[0], expect, atol=1e-6, rtol=1e-6)


def _official_loss(x, memory, labels, targets, tau, eps=1e-6):
    """The official code's loss written out: exp, masked class sums + eps, then nll of log(p + eps)."""
    inputs = x @ memory.t() / tau  # (B, M)
    num = int(labels.max()) + 1
    sim = torch.zeros(num, x.size(0)).index_add_(0, labels, inputs.t().contiguous())
    nums = torch.zeros(num, 1).index_add_(0, labels, torch.ones(labels.numel(), 1))
    mask = (nums > 0).float()
    sim = (sim / (mask * nums + (1 - mask))).t()
    exps = torch.exp(sim) * mask.t()
    prob = exps / (exps.sum(1, keepdim=True) + eps)
    return F.nll_loss(torch.log(prob + eps), targets)


def test_prob_eps_is_the_official_log_p_plus_eps():
    """prob_eps=1e-6 equals the official -log(p + 1e-6) in value and gradient; 0 is the exact log-softmax."""
    g = torch.Generator().manual_seed(0)
    memory = F.normalize(torch.randn(12, 8, generator=g), dim=1)
    labels = torch.tensor([0, 0, 1, 3, 3, 3, 4, 5, 6, 6, 7, 8])  # class 2 empty
    targets = torch.tensor([0, 3, 6, 8, 1])
    x = F.normalize(torch.randn(5, 8, generator=g), dim=1)
    x[4] = -memory[2]  # anti-aligned to its own class 1: p(1 | x) far below 1e-6
    grads = {}
    for name, fn in (
        ('official', lambda f: _official_loss(f, memory, labels, targets, 0.05)),
        ('eps', lambda f: unified_contrastive_loss(f, memory, labels, targets, 0.05, prob_eps=1e-6)),
        ('exact', lambda f: unified_contrastive_loss(f, memory, labels, targets, 0.05)),
    ):
        f = x.clone().requires_grad_(True)
        loss = fn(f)
        loss.backward()
        grads[name] = (loss.detach(), f.grad)
    torch.testing.assert_close(grads['eps'][0], grads['official'][0])
    torch.testing.assert_close(grads['eps'][1], grads['official'][1])
    # the capped sample: -log(p + 1e-6) <= -log(1e-6) = 13.8 and almost no gradient; the exact loss is 25
    per_eps = unified_contrastive_loss(x, memory, labels, targets, 0.05, 'none', prob_eps=1e-6)
    per_exact = unified_contrastive_loss(x, memory, labels, targets, 0.05, 'none')
    assert per_eps[4] <= -math.log(1e-6) < 20 < per_exact[4]
    # -log(p + 1e-6) with p the exact softmax (the 1e-6 in the denominator is negligible beside sum exp)
    torch.testing.assert_close(per_eps, -torch.log(torch.exp(-per_exact) + 1e-6))
    assert grads['eps'][1][4].norm() < 1e-3 * grads['exact'][1][4].norm()
    torch.testing.assert_close(
        grads['exact'][0], F.cross_entropy(_masked_class_logits(x, memory, labels), targets)
    )
    for bad in (-1e-6, 1.0, float('nan'), True):
        with pytest.raises(ValueError, match='prob_eps'):
            unified_contrastive_loss(x, memory, labels, targets, 0.05, prob_eps=bad)
    with pytest.raises(ValueError, match='prob_eps'):
        HybridMemory(num_features=8, prob_eps=-1)


def _masked_class_logits(x, memory, labels):
    mean, present = class_logits(x @ memory.t() / 0.05, labels, int(labels.max()) + 1)
    return mean.masked_fill(~present, float('-inf'))


def test_class_logits_mask_empty_ids():
    logits = torch.tensor([[1.0, 2.0, 3.0]])
    mean, present = class_logits(logits, torch.tensor([0, 0, 2]), 3)
    torch.testing.assert_close(mean, torch.tensor([[1.5, 0.0, 3.0]]))
    assert present.tolist() == [True, False, True]


def test_loss_is_fp32_under_half_inputs():
    mem = F.normalize(torch.randn(6, 8), dim=1)
    x = F.normalize(torch.randn(3, 8), dim=1).half()
    loss = unified_contrastive_loss(x, mem, torch.arange(6), torch.tensor([0, 1, 2]), 0.05)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_memory_loss_is_fp32_inside_cpu_autocast_and_equals_the_fp32_loss():
    g = torch.Generator().manual_seed(0)
    mem = HybridMemory(num_features=16, temperature=0.05, momentum=0.2)
    mem.init_memory(torch.randn(4, 16, generator=g), torch.randn(20, 16, generator=g))  # 4 source classes
    mem.set_target_labels(torch.arange(20) // 3)  # target clusters of 3 (and a pair)
    torch.manual_seed(0)
    encoder = torch.nn.Linear(32, 16)
    inputs = torch.randn(6, 32, generator=g, requires_grad=True)
    rows = torch.tensor([0, 1, 3, 4, 9, 23])  # two source classes, four target instances
    with torch.autocast('cpu', dtype=torch.bfloat16):
        feats = F.normalize(encoder(inputs), dim=1)
        assert feats.dtype == torch.bfloat16  # the encoder really ran in bf16
        feats.retain_grad()
        loss = mem.loss(feats, rows)
    assert loss.dtype == torch.float32
    # the same bf16 features, loss computed outside autocast in fp32
    expect = unified_contrastive_loss(
        feats.detach().float(), mem.features, mem.labels, mem.labels[rows], 0.05
    )
    torch.testing.assert_close(loss.detach(), expect, rtol=1e-6, atol=1e-6)
    # in bf16 the logits (|x.f| / tau up to 20) keep ~3 significant digits: a far larger error
    with torch.autocast('cpu', dtype=torch.bfloat16):
        low = (feats.detach() @ mem.features.t()) / 0.05
    assert low.dtype == torch.bfloat16
    assert (low.float() - feats.detach().float() @ mem.features.t() / 0.05).abs().max() > 1e-3
    loss.backward()
    assert feats.grad is not None and torch.isfinite(feats.grad).all() and feats.grad.abs().sum() > 0
    assert inputs.grad is not None and inputs.grad.abs().sum() > 0
    assert encoder.weight.grad is not None and encoder.weight.grad.abs().sum() > 0


def sequential_update(memory, indexes, feats, m):
    memory = memory.clone()
    for x, y in zip(feats, indexes.tolist()):
        memory[y] = m * memory[y] + (1 - m) * x
        memory[y] /= memory[y].norm()
    return memory


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_vectorised_update_equals_sequential_definition_with_duplicates(seed):
    g = torch.Generator().manual_seed(seed)
    mem = F.normalize(torch.randn(10, 5, generator=g), dim=1)
    idx = torch.randint(0, 10, (40,), generator=g)  # many duplicate rows, in arbitrary order
    feats = F.normalize(torch.randn(40, 5, generator=g), dim=1)
    expect = sequential_update(mem, idx, feats, 0.2)
    for update in (momentum_update, momentum_update_vectorised):  # compiled loop (CPU + numba), vectorised
        got = update(mem.clone(), idx, feats, 0.2)
        torch.testing.assert_close(got, expect, atol=1e-6, rtol=1e-6)
        untouched = torch.ones(10, dtype=torch.bool)
        untouched[idx] = False
        assert torch.equal(got[untouched], mem[untouched])
    # PK-style batch: source rows 4 times each + unique target rows (one index_copy_ + rounds on 4 rows)
    idx = torch.cat([torch.arange(4).repeat_interleave(4), 4 + torch.randperm(6, generator=g)])
    feats = F.normalize(torch.randn(len(idx), 5, generator=g), dim=1)
    expect = sequential_update(mem, idx, feats, 0.2)
    torch.testing.assert_close(momentum_update_vectorised(mem.clone(), idx, feats, 0.2), expect)


def test_memory_loss_defers_update_until_applied_and_resizes_on_load():
    mem = HybridMemory(num_features=4, temperature=0.05, momentum=0.2)
    with pytest.raises(RuntimeError, match='SpCLClusterHook'):
        mem.loss(torch.randn(2, 4), torch.tensor([0, 1]))
    mem.init_memory(torch.randn(2, 4), torch.randn(5, 4))  # 2 source classes, 5 target images
    assert int(mem.num_source) == 2 and mem.num_target == 5
    mem.set_target_labels(torch.tensor([0, 0, 1, 2, 2]))
    assert mem.labels.tolist() == [0, 1, 2, 2, 3, 4, 4]
    before = mem.features.clone()
    x = F.normalize(torch.randn(3, 4, requires_grad=True), dim=1)
    loss = mem.loss(x, torch.tensor([0, 3, 6]))
    loss.backward()  # memory unchanged until the backward pass is done (the backward reads it)
    assert torch.equal(mem.features, before)
    assert mem.apply_pending_update() and not mem.apply_pending_update()
    assert not torch.equal(mem.features[[0, 3, 6]], before[[0, 3, 6]])
    assert torch.equal(mem.features[[1, 2, 4, 5]], before[[1, 2, 4, 5]])
    fresh = HybridMemory(num_features=4)
    fresh.load_state_dict(mem.state_dict())
    assert torch.equal(fresh.features, mem.features) and torch.equal(fresh.labels, mem.labels)
    assert int(fresh.num_source) == 2 and bool(fresh.initialized)
    with pytest.raises(ValueError, match='target labels'):
        mem.set_target_labels(torch.tensor([0, 1]))


def lerp_loop(memory, indexes, feats, m):
    """The sequential definition with the update's float ops (lerp, clamped norm), one sample at a time."""
    memory = memory.clone()
    for x, y in zip(feats, indexes.tolist()):
        new = torch.lerp(x[None], memory[y][None], m)
        memory[y] = new.div_(new.norm(dim=1, keepdim=True).clamp_(min=1e-12))[0]
    return memory


@pytest.mark.parametrize('as_list', [False, True], ids=['tensor-rows', 'host-rows'])
def test_update_rounds_are_bit_identical_to_the_per_sample_loop(as_list):
    """Planning the rounds on the host changes no float op: the memory is bit-identical to one sample at a
    time (PK batch: 4 source classes x 4 samples + 16 distinct target rows, shuffled)."""
    g = torch.Generator().manual_seed(3)
    mem = F.normalize(torch.randn(40, 32, generator=g), dim=1)
    idx = torch.cat([torch.arange(4).repeat_interleave(4), 4 + torch.randperm(36, generator=g)[:16]])
    idx = idx[torch.randperm(len(idx), generator=g)]
    feats = F.normalize(torch.randn(len(idx), 32, generator=g), dim=1)
    rows = idx.tolist() if as_list else idx
    got = momentum_update_vectorised(mem.clone(), rows, feats, 0.2)
    assert torch.equal(got, lerp_loop(mem, idx, feats, 0.2))
    assert occurrence_rounds(idx.tolist())[0] == sorted({idx.tolist().index(r) for r in set(idx.tolist())})


def test_memory_loss_with_cached_classes_is_bit_identical_to_the_checked_loss():
    """The memory passes its cached number of classes (no read of labels.max() from the device) and counts
    rows with index_add_ (no bincount): the loss and its gradient are the ones the checked path gives."""
    g = torch.Generator().manual_seed(4)
    mem = HybridMemory(num_features=16)
    mem.init_memory(torch.randn(3, 16, generator=g), torch.randn(20, 16, generator=g))
    mem.set_target_labels(torch.tensor([0, 0, 1, 1, 1, 2, 3, 3, 4, 5, 5, 5, 6, 7, 8, 8, 9, 9, 9, 10]))
    x = F.normalize(torch.randn(6, 16, generator=g), dim=1).requires_grad_(True)
    rows = [0, 1, 2, 5, 9, 22]
    got = mem.loss(x, rows, reduction='none')
    (grad_got,) = torch.autograd.grad(got.sum(), x)
    want = unified_contrastive_loss(x, mem.features, mem.labels, mem.labels[rows], 0.05, 'none')
    (grad_want,) = torch.autograd.grad(want.sum(), x)
    assert torch.equal(got, want) and torch.equal(grad_got, grad_want)
    counts = torch.bincount(mem.labels, minlength=14)
    logits = torch.randn(2, len(mem.labels), generator=g)
    mean, present = class_logits(logits, mem.labels, 14)
    sums = logits.new_zeros(2, 14).index_add_(1, mem.labels, logits)
    assert torch.equal(mean, sums / counts.clamp(min=1).float()) and torch.equal(present, counts > 0)
