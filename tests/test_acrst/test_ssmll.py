"""SSMLL: image-level targets, teacher pseudo-targets, the focal-BCE loss on labeled / unlabeled rows of a
tiny real mmpretrain classifier, and the teacher's updates (never by backward, only by MeanTeacherHook)."""

import copy
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmengine.registry import init_default_scope

from mmssod.models.acrst import SSMLL, image_level_targets, teacher_pseudo_targets
from mmssod.models.acrst.ssmll import negative_label_precision_recall
from mmssod.models.data_preprocessors import MultiViewClsDataPreprocessor

NUM_CLASSES = 4


def test_image_level_targets_are_multi_hot():
    targets = image_level_targets([[0, 2], [], [3, 1, 3, 3]], NUM_CLASSES)
    assert targets.dtype == torch.float32 and targets.shape == (3, NUM_CLASSES)
    expected = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0]])
    assert torch.equal(targets, expected)  # no label: all zero; repeated labels: still 1
    assert image_level_targets([], NUM_CLASSES).shape == (0, NUM_CLASSES)


def test_teacher_pseudo_targets_threshold_the_sigmoid_score():
    # sigmoid(0) = 0.5, sigmoid(2) ~ 0.881, sigmoid(3) ~ 0.953, sigmoid(-0.01) < 0.5
    logits = torch.tensor([[0.0, -0.01, 2.0, 3.0], [-5.0, 5.0, -0.0, 0.01]])
    assert torch.equal(
        teacher_pseudo_targets(logits), torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0, 1.0]])
    )  # default 0.5, inclusive
    assert torch.equal(
        teacher_pseudo_targets(logits, threshold=0.9),
        torch.tensor([[0.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0]]),
    )
    assert teacher_pseudo_targets(logits, threshold=0.0).sum() == logits.numel()


def focal_bce(logits, targets, gamma=2.0, alpha=0.25):
    """Sigmoid focal binary cross-entropy, mean over all (image, class) entries, by hand."""
    p = logits.sigmoid()
    pt = (1 - p) * targets + p * (1 - targets)  # 1 - probability of the target
    weight = (alpha * targets + (1 - alpha) * (1 - targets)) * pt.pow(gamma)
    return (F.binary_cross_entropy_with_logits(logits, targets, reduction='none') * weight).mean()


def tiny_ssmll(**kwargs):
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    classifier = dict(
        type='ImageClassifier',
        backbone=dict(
            type='ResNet', depth=18, stem_channels=8, base_channels=8, num_stages=4, out_indices=(3,)
        ),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='MultiLabelLinearClsHead', num_classes=NUM_CLASSES, in_channels=64),
    )
    return SSMLL(classifier, loss=dict(type='FocalLoss', gamma=2.0, alpha=0.25), **kwargs)


def samples(labels, labeled):
    from mmpretrain.structures import DataSample

    out = []
    for lab, is_labeled in zip(labels, labeled):
        ds = DataSample(metainfo=dict(labeled=is_labeled))
        ds.set_gt_label(lab)
        out.append(ds)
    return out


def teacher_state(model):
    return {k: v.clone() for k, v in model.teacher.state_dict().items()}


def test_loss_is_focal_bce_on_ground_truth_and_teacher_pseudo_labels():
    model = tiny_ssmll(unsup_weight=0.5, pseudo_thr=0.5, prior_prob=None)  # random head: some pseudo-labels
    model.train()
    torch.manual_seed(1)
    inputs = torch.randn(4, 3, 32, 32)
    # rows 0, 1 labeled; rows 2, 3 unlabeled (row 3 carries a label that must be ignored)
    data_samples = samples([[0, 2], [], [], [1]], [True, True, False, False])
    before = teacher_state(model)
    losses = model.loss(inputs, data_samples)
    assert set(losses) == {'loss_sup', 'loss_unsup'}
    assert all(torch.isfinite(v) and v.dim() == 0 for v in losses.values())
    assert not model.teacher.training  # the teacher predicts in eval mode (running BatchNorm statistics)
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, before[key]), key  # ... so its BN buffers are not touched by loss()

    with torch.no_grad():
        student = model._logits(model.student, inputs)  # train mode: the same batch statistics
        teacher = model._logits(model.teacher, inputs)
    gt = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    pseudo = (teacher[2:].sigmoid() >= 0.5).float()
    assert pseudo.sum() > 0 and not torch.equal(
        pseudo[1], torch.tensor([0.0, 1.0, 0.0, 0.0])
    )  # not the label
    assert losses['loss_sup'].item() == pytest.approx(focal_bce(student[:2], gt).item(), rel=1e-5)
    assert losses['loss_unsup'].item() == pytest.approx(0.5 * focal_bce(student[2:], pseudo).item(), rel=1e-5)


def test_rows_of_one_kind_only_give_a_zero_other_loss():
    model = tiny_ssmll()
    model.train()
    inputs = torch.randn(2, 3, 32, 32)
    labeled_only = model.loss(inputs, samples([[1], [3]], [True, True]))
    assert labeled_only['loss_unsup'].item() == 0.0 and labeled_only['loss_sup'].item() > 0.0
    unlabeled_only = model.loss(inputs, samples([[], []], [False, False]))
    assert unlabeled_only['loss_sup'].item() == 0.0 and torch.isfinite(unlabeled_only['loss_unsup'])


def test_teacher_is_updated_by_the_ema_hook_only():
    from mmdet.engine.hooks import MeanTeacherHook

    model = tiny_ssmll()
    model.train()
    assert not any(p.requires_grad for p in model.teacher.parameters())
    inputs = torch.randn(4, 3, 32, 32)
    data_samples = samples([[0], [1, 2], [], []], [True, True, False, False])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    student_before = copy.deepcopy(model.student.state_dict())
    teacher_before = teacher_state(model)
    loss = sum(model.loss(inputs, data_samples).values())
    loss.backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.student.parameters())
    optimizer.step()
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), key  # backward + step leave the teacher alone
    assert not torch.equal(model.student.head.fc.weight, student_before['head.fc.weight'])

    # the EMA (mmdet's MeanTeacherHook, as the configs use it): teacher = (1 - m) teacher + m student,
    # parameters and floating-point buffers alike with skip_buffer=False
    momentum = 0.25
    hook = MeanTeacherHook(momentum=momentum, skip_buffer=False)
    hook.after_train_iter(SimpleNamespace(model=model, iter=0), batch_idx=0)
    student = model.student.state_dict()
    for key, value in model.teacher.state_dict().items():
        if value.dtype.is_floating_point:
            expected = (1 - momentum) * teacher_before[key] + momentum * student[key]
            torch.testing.assert_close(value, expected, msg=key)
        else:
            assert torch.equal(value, teacher_before[key]), key  # e.g. num_batches_tracked
    # at iteration 0 the hook first copies the student into the teacher
    hook.before_train(SimpleNamespace(model=model, iter=0))
    for key, value in model.teacher.state_dict().items():
        if value.dtype.is_floating_point:
            torch.testing.assert_close(value, student[key], msg=key)


def test_initial_pseudo_targets_are_not_noise():
    """At initialisation the teacher's pseudo-targets are 'absent', not ~50% positives per class."""
    torch.manual_seed(3)
    inputs = torch.randn(16, 3, 32, 32)
    for prior, low, high in ((0.01, 0.0, 0.02), (None, 0.3, 1.0)):
        model = tiny_ssmll(prior_prob=prior)
        model.init_weights()
        model.teacher.eval()
        with torch.no_grad():
            positive = teacher_pseudo_targets(model._logits(model.teacher, inputs)).mean().item()
        assert low <= positive <= high, (prior, positive)  # the old head (bias 0) gave about half positive


def test_teacher_sees_the_weak_view_student_the_strong_view():
    model = tiny_ssmll(unsup_weight=1.0, prior_prob=None)
    model.train()
    torch.manual_seed(2)
    weak, strong = torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)
    data_samples = samples([[0, 2], [1], [], []], [True, True, False, False])
    losses = model.loss([weak, strong], data_samples)
    with torch.no_grad():
        model.teacher.eval()
        pseudo = (model._logits(model.teacher, weak[2:]).sigmoid() >= 0.5).float()
        student = model._logits(model.student, torch.cat([weak[:2], strong[2:]]))  # one batch: same BN stats
    assert pseudo.sum() > 0
    gt = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    assert losses['loss_sup'].item() == pytest.approx(focal_bce(student[:2], gt).item(), rel=1e-5)
    assert losses['loss_unsup'].item() == pytest.approx(focal_bce(student[2:], pseudo).item(), rel=1e-5)
    # the old single-view loss (both networks on one tensor) differs
    same = model.loss(strong, data_samples)['loss_unsup'].item()
    assert same != pytest.approx(losses['loss_unsup'].item(), rel=1e-3)


def test_supervised_pretraining_then_teacher_copy():
    model = tiny_ssmll(pretrain_iters=3, prior_prob=None)
    model.train()
    inputs = [torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)]
    data_samples = samples([[0], [1], [], []], [True, True, False, False])
    hub = MessageHub.get_current_instance()
    calls = []
    teacher_forward = model.teacher.head.forward
    model.teacher.head.forward = lambda *a, **k: calls.append(1) or teacher_forward(*a, **k)
    try:
        hub.update_info('iter', 2)
        assert model.in_pretrain()
        losses = model.loss(inputs, data_samples)
        assert losses['loss_unsup'].item() == 0.0 and losses['loss_sup'].item() > 0 and not calls
        with torch.no_grad():
            model.student.head.fc.weight.add_(0.3)  # pre-training moved the student
        hub.update_info('iter', 3)
        student = copy.deepcopy(model.student.state_dict())
        losses = model.loss(inputs, data_samples)
        assert calls and losses['loss_unsup'].item() > 0
        for key, value in model.teacher.state_dict().items():
            assert torch.equal(value, student[key]), key  # teacher = the pre-trained student
    finally:
        hub.update_info('iter', 0)
    with pytest.raises(ValueError, match='pretrain_iters'):
        tiny_ssmll(pretrain_iters=-1)


def test_negative_label_precision_recall_hand_computed():
    scores = torch.tensor([[0.9, 0.1, 0.05, 0.3], [0.15, 0.8, 0.5, 0.01]])
    targets = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    out = negative_label_precision_recall(scores, targets, tau_ml=0.2)
    # negatives (score < 0.2): (0,1) absent, (0,2) present!, (1,0) absent, (1,3) absent -> 3 of 4 right
    # absent pairs: (0,1), (0,3), (1,0), (1,2), (1,3) -> 3 of 5 found
    assert out['precision'] == pytest.approx(3 / 4) and out['recall'] == pytest.approx(3 / 5)
    assert (out['num_negative_labels'], out['num_absent'], out['num_present_dropped']) == (4, 5, 1)
    with pytest.raises(ValueError, match=r'\(N, K\)'):
        negative_label_precision_recall(scores, targets[:1])


def test_multi_view_preprocessor_gives_one_batch_per_view():
    from mmengine.dataset import pseudo_collate

    init_default_scope('mmpretrain')
    pre = MultiViewClsDataPreprocessor(dict(type='ClsDataPreprocessor', mean=[0.0] * 3, std=[1.0] * 3))
    # three samples as MultiView + PackInputs give them (inputs = [weak, strong]), collated as the loader does
    samples_ = [
        {'inputs': [torch.full((3, 8, 8), float(i)), torch.full((3, 8, 8), 10.0 + i)], 'data_samples': None}
        for i in range(3)
    ]
    out = pre(pseudo_collate(samples_), True)
    assert len(out['inputs']) == 2 and out['inputs'][0].shape == (3, 3, 8, 8)
    assert out['inputs'][0][:, 0, 0, 0].tolist() == [0.0, 1.0, 2.0]  # weak views of samples 0, 1, 2
    assert out['inputs'][1][:, 0, 0, 0].tolist() == [10.0, 11.0, 12.0]  # strong views
    single = pre({'inputs': [torch.zeros(3, 8, 8)], 'data_samples': None}, False)
    assert single['inputs'].shape == (1, 3, 8, 8)
