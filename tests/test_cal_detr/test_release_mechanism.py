"""Released Cal-DETR modulation on a toy model: training with ``z' = z - tanh(u)`` raises raw confidence.

The release trains the last layer through ``z_L - tanh(u)`` and reads out the raw ``z_L`` at test. Since
``tanh(u) >= 0``, a loss that pins ``z_L - tanh(u)`` leaves the raw logit higher by ``tanh(u)``: raw test
scores sit above the modulated read-out and above a model trained without modulation, while the modulated
read-out stays near that baseline. A 3-layer MLP with a sigmoid focal-loss classifier after every layer (the
DETR decoder's deep supervision, the earlier layers trained on their raw logits) shows it with mmssod's own
``modulate_logits``, paired over seeds (same data, same initial weights).
"""

import pytest
import torch
import torch.nn.functional as F
from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss
from torch import nn

from mmssod.models.cal_detr.cal_detr_utils import modulate_logits

NUM_CLASSES, IN_DIMS, HIDDEN, LAYERS = 4, 8, 32, 3
SEEDS = range(5)
STEPS = 300


def gaussian_classes(n, generator):
    """``n`` points of 4 overlapping unit Gaussians (fixed means): inputs (n, 8) and labels (n,)."""
    means = torch.randn(NUM_CLASSES, IN_DIMS, generator=torch.Generator().manual_seed(123))
    labels = torch.randint(0, NUM_CLASSES, (n,), generator=generator)
    return means[labels] + torch.randn(n, IN_DIMS, generator=generator), labels


class DeeplySupervisedMLP(nn.Module):
    """An MLP with a classifier after each of its layers, like a DETR decoder's per-layer class branches."""

    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(IN_DIMS if i == 0 else HIDDEN, HIDDEN) for i in range(LAYERS))
        self.cls_branches = nn.ModuleList(nn.Linear(HIDDEN, NUM_CLASSES) for _ in range(LAYERS))

    def forward(self, x):
        """(N, 8) inputs -> class logits of every layer, shape (L, 1, N, C) (the heads' (L, B, Q, C))."""
        logits = []
        for layer, cls in zip(self.layers, self.cls_branches):
            x = F.relu(layer(x))
            logits.append(cls(x))
        return torch.stack(logits)[:, None]


def train_and_read_out(seed, modulation):
    """Train (full batch, Adam) with the last layer's loss on raw (``None``) or modulated logits; return
    the mean sigmoid of the raw and of the released-modulated last-layer logits on held-out data."""
    torch.manual_seed(seed)
    inputs, labels = gaussian_classes(512, torch.Generator().manual_seed(seed))
    targets = F.one_hot(labels, NUM_CLASSES).float()
    model = DeeplySupervisedMLP()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(STEPS):
        logits = model(inputs)
        last = logits[-1] if modulation is None else modulate_logits(logits, modulation)
        loss = py_sigmoid_focal_loss(last[0], targets)
        loss = loss + sum(py_sigmoid_focal_loss(layer[0], targets) for layer in logits[:-1])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    test_inputs, _ = gaussian_classes(2048, torch.Generator().manual_seed(1000 + seed))
    with torch.no_grad():
        logits = model(test_inputs)
        raw = logits[-1].sigmoid().mean().item()
        modulated = modulate_logits(logits, 'released').sigmoid().mean().item()
    return raw, modulated


@pytest.fixture(scope='module')
def confidences():
    """Per seed: (baseline raw, release raw, release modulated) mean test confidence."""
    out = []
    for seed in SEEDS:
        base_raw, _ = train_and_read_out(seed, None)
        release_raw, release_modulated = train_and_read_out(seed, 'released')
        out.append((base_raw, release_raw, release_modulated))
    return torch.tensor(out)


def test_release_training_raises_raw_test_confidence_over_the_modulated_read_out(confidences):
    base_raw, release_raw, release_modulated = confidences.unbind(1)
    # the raw read-out of the released model is above its own modulated read-out...
    assert (release_raw > release_modulated).all(), confidences
    # ...and above a model trained without modulation, on every seed (paired: same data and initial weights)
    assert (release_raw > base_raw).all(), confidences
    # the modulated read-out undoes most of the shift: it is closer to the baseline than the raw one
    shift = (release_raw - base_raw).mean()
    assert (release_modulated - base_raw).mean().abs() < 0.5 * shift, confidences
