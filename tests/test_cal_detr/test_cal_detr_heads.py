"""CalDINOHead / CalDeformableDETRHead inside real (tiny) mmdet DINO and Deformable-DETR detectors."""

import pytest
import torch
from mmdet.registry import MODELS

from mmssod.models.cal_detr.cal_detr_utils import modulate_logits

from .conftest import DDETR_CFG, DINO_CFG, build_tiny, get_model_cfg, make_batch, shrink_detr

CASES = [(DINO_CFG, 'DINOHead', 'CalDINOHead'), (DDETR_CFG, 'DeformableDETRHead', 'CalDeformableDETRHead')]


@pytest.mark.parametrize('config,raw,cal', CASES)
def test_loss_has_a_separate_mixing_key_and_gradients_reach_the_classifier(config, raw, cal):
    model = build_tiny(config, cal)
    inputs, samples = make_batch()
    losses = model.loss(inputs, samples)
    assert 'loss_mix' in losses and 'loss_cls' in losses and 'd0.loss_cls' in losses
    assert torch.isfinite(losses['loss_mix']) and losses['loss_mix'] > 0
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    last_cls = model.bbox_head.cls_branches[-1].weight
    assert last_cls.grad is not None and last_cls.grad.abs().sum() > 0
    raw_losses = build_tiny(config, raw).loss(inputs, samples)
    assert 'loss_mix' not in raw_losses


@pytest.mark.parametrize('config,raw,cal', CASES)
def test_switched_off_equals_the_raw_head(config, raw, cal):
    inputs, samples = make_batch()
    torch.manual_seed(3)
    cal_losses = build_tiny(config, cal, logit_modulation=False, logit_mixing=False).loss(inputs, samples)
    torch.manual_seed(3)
    raw_losses = build_tiny(config, raw).loss(inputs, samples)
    assert set(cal_losses) == set(raw_losses)
    for key in raw_losses:
        assert torch.allclose(cal_losses[key], raw_losses[key]), key


def _head_inputs(head, num_layers=3, num_dn=0, seed=0):
    """Random head outputs for 2 images (3 and 1 gt boxes) to feed ``loss_by_feat`` directly."""
    g = torch.Generator().manual_seed(seed)
    num_q = 12 + num_dn
    cls = torch.randn(num_layers, 2, num_q, head.cls_out_channels, generator=g) * 2
    boxes = torch.rand(num_layers, 2, num_q, 4, generator=g) * 0.5 + 0.2
    _, samples = make_batch(
        size=64, boxes_per_image=(3, 1), labels=[torch.tensor([0, 2, 2]), torch.tensor([0])]
    )
    gts = [s.gt_instances for s in samples]
    metas = [s.metainfo for s in samples]
    return cls, boxes, gts, metas


def _head(config, head_type, **kwargs):
    cfg = shrink_detr(get_model_cfg(config), head_type, **kwargs).bbox_head
    cfg.update(share_pred_layer=False, num_pred_layer=3, as_two_stage=False)
    cfg.train_cfg = dict(
        assigner=dict(
            type='HungarianAssigner',
            match_costs=[
                dict(type='FocalLossCost', weight=2.0),
                dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
                dict(type='IoUCost', iou_mode='giou', weight=2.0),
            ],
        )
    )
    return MODELS.build(cfg)


@pytest.mark.parametrize('mode', ['paper', 'released'])
def test_ddetr_last_layer_is_modulated_for_matching_and_loss_aux_layers_raw(mode):
    cal = _head(DDETR_CFG, 'CalDeformableDETRHead', logit_mixing=False, modulation_mode=mode)
    raw = _head(DDETR_CFG, 'DeformableDETRHead')
    cls, boxes, gts, metas = _head_inputs(raw)
    manual = torch.cat([cls[:-1], modulate_logits(cls, mode)[None]])
    want = raw.loss_by_feat(manual, boxes, None, None, gts, metas)
    got = cal.loss_by_feat(cls, boxes, None, None, gts, metas)
    unmodulated = raw.loss_by_feat(cls, boxes, None, None, gts, metas)
    for key in want:
        assert torch.allclose(got[key], want[key]), key
    assert not torch.allclose(got['loss_cls'], unmodulated['loss_cls'])
    assert torch.allclose(got['d0.loss_cls'], unmodulated['d0.loss_cls'])


def test_dino_modulates_matching_queries_only_never_denoising_queries():
    cal = _head(DINO_CFG, 'CalDINOHead', logit_mixing=False)
    raw = _head(DINO_CFG, 'DINOHead')
    num_dn = 6
    cls, boxes, gts, metas = _head_inputs(raw, num_dn=num_dn)
    dn_meta = dict(num_denoising_queries=num_dn, num_denoising_groups=1)
    manual = cls.clone()
    manual[-1, :, num_dn:] = modulate_logits(cls[:, :, num_dn:])
    want = raw.loss_by_feat(manual, boxes, None, None, gts, metas, dn_meta)
    got = cal.loss_by_feat(cls, boxes, None, None, gts, metas, dn_meta)
    unmodulated = raw.loss_by_feat(cls, boxes, None, None, gts, metas, dn_meta)
    for key in want:
        assert torch.allclose(got[key], want[key]), key
    assert torch.allclose(got['dn_loss_cls'], unmodulated['dn_loss_cls'])  # denoising untouched
    assert not torch.allclose(got['loss_cls'], unmodulated['loss_cls'])


def test_mixing_loss_equals_focal_loss_of_mixed_logits_against_soft_targets():
    from mmssod.models.cal_detr.cal_detr_utils import mix_logits, mixing_targets

    cal = _head(DDETR_CFG, 'CalDeformableDETRHead', logit_modulation=False, mix_alpha=0.8)
    cls, boxes, gts, metas = _head_inputs(cal)
    got = cal.loss_by_feat(cls, boxes, None, None, gts, metas)['loss_mix']
    labels = torch.cat(cal.get_targets(list(cls[-1]), list(boxes[-1]), gts, metas)[0])
    pos = labels < cal.num_classes
    assert int(pos.sum()) == 4  # every gt matched once
    from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss

    z = cls[-1].reshape(-1, cal.num_classes)[pos]
    manual = 0.5 * py_sigmoid_focal_loss(
        mix_logits(z, 0.8), mixing_targets(labels[pos], cal.num_classes, 0.8), avg_factor=4.0
    )
    assert torch.allclose(got, manual)


def test_mixing_target_share_query_uses_the_per_query_share():
    """``mix_target_share='query'``: labels {0, 2, 2, 0}: (1 - alpha) / 3 on the other class."""
    from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss

    heads = {
        share: _head(DDETR_CFG, 'CalDeformableDETRHead', logit_modulation=False, mix_target_share=share)
        for share in ('class', 'query')
    }
    cls, boxes, gts, metas = _head_inputs(heads['query'])
    got = {
        share: head.loss_by_feat(cls, boxes, None, None, gts, metas)['loss_mix']
        for share, head in heads.items()
    }
    labels = torch.cat(heads['query'].get_targets(list(cls[-1]), list(boxes[-1]), gts, metas)[0])
    pos = labels < heads['query'].num_classes
    assert sorted(labels[pos].tolist()) == [0, 0, 2, 2]
    z = cls[-1].reshape(-1, cls.size(-1))[pos]
    mixed = 0.9 * z + 0.1 * z.mean(0)
    for share, other in (('query', 0.1 / 3), ('class', 0.1)):
        target = torch.zeros_like(z)  # hand-written, not from mixing_targets
        target[labels[pos] == 0, 0], target[labels[pos] == 0, 2] = 0.9, other
        target[labels[pos] == 2, 2], target[labels[pos] == 2, 0] = 0.9, other
        assert torch.allclose(got[share], 0.5 * py_sigmoid_focal_loss(mixed, target, avg_factor=4.0)), share
    assert not torch.allclose(got['query'], got['class'])


def test_mixing_loss_of_a_one_class_batch_targets_alpha_not_one():
    """All positives share one class: the mixing target is alpha on it (the paper), not the one-hot vector."""
    from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss

    cal = _head(DDETR_CFG, 'CalDeformableDETRHead', logit_modulation=False)
    cls, boxes, gts, metas = _head_inputs(cal)
    for g in gts:
        g.labels = torch.full_like(g.labels, 1)
    got = cal.loss_by_feat(cls, boxes, None, None, gts, metas)['loss_mix']
    labels = torch.cat(cal.get_targets(list(cls[-1]), list(boxes[-1]), gts, metas)[0])
    pos = labels < cal.num_classes
    z = cls[-1].reshape(-1, cal.num_classes)[pos]
    mixed = 0.9 * z + 0.1 * z.mean(0)
    target = torch.zeros_like(z)
    target[:, 1] = 0.9  # hand-written, not from mixing_targets
    assert torch.allclose(got, 0.5 * py_sigmoid_focal_loss(mixed, target, avg_factor=4.0))
    one_hot = torch.zeros_like(z)
    one_hot[:, 1] = 1.0
    assert not torch.allclose(got, 0.5 * py_sigmoid_focal_loss(mixed, one_hot, avg_factor=4.0))


def test_mixing_loss_without_any_ground_truth_is_zero_and_differentiable():
    cal = _head(DDETR_CFG, 'CalDeformableDETRHead')
    cls, boxes, gts, metas = _head_inputs(cal)
    cls.requires_grad_(True)
    empty = [g[:0] for g in gts]
    out = cal.loss_by_feat(cls, boxes, None, None, empty, metas)
    assert out['loss_mix'].item() == 0.0
    # the mixing loss alone is attached to the logits (a detached zero has no graph and fails here)
    (grad,) = torch.autograd.grad(out['loss_mix'], cls)
    assert grad.shape == cls.shape and torch.equal(grad, torch.zeros_like(cls))


@pytest.mark.parametrize('config,raw,cal', CASES)
def test_inference_is_the_raw_heads(config, raw, cal):
    inputs, samples = make_batch()
    cal_model = build_tiny(config, cal, seed=5).eval()
    raw_model = build_tiny(config, raw, seed=5).eval()
    raw_model.load_state_dict(cal_model.state_dict())  # the Cal heads add no parameters
    with torch.no_grad():
        a = cal_model.predict(inputs, samples)
        b = raw_model.predict(inputs, samples)
    for x, y in zip(a, b):
        assert torch.equal(x.pred_instances.scores, y.pred_instances.scores)
        assert torch.equal(x.pred_instances.bboxes, y.pred_instances.bboxes)
        assert torch.equal(x.pred_instances.labels, y.pred_instances.labels)


@pytest.mark.parametrize('config,raw,cal', CASES)
def test_modulate_at_test_predicts_from_the_modulated_last_layer(config, raw, cal):
    """Off (the paper): the raw head's predictions (above). On: the raw head's prediction from logits whose
    last layer is modulated, which differs from the raw prediction."""
    cal_head = _head(config, cal, modulate_at_test=True)
    raw_head = _head(config, raw)
    for head in (cal_head, raw_head):
        head.test_cfg = dict(max_per_img=10)  # of the 12 random queries
    cls, boxes, _, metas = _head_inputs(raw_head)
    manual = torch.cat([cls[:-1], modulate_logits(cls)[None]])
    got = cal_head.predict_by_feat(cls, boxes, metas)
    want = raw_head.predict_by_feat(manual, boxes, metas)
    plain = raw_head.predict_by_feat(cls, boxes, metas)
    for g, w, p in zip(got, want, plain):
        assert torch.equal(g.scores, w.scores) and torch.equal(g.labels, w.labels)
        assert not torch.equal(g.scores, p.scores)


def test_bad_settings_fail_clearly():
    with pytest.raises(ValueError, match='modulate_at_test'):
        build_tiny(DDETR_CFG, 'CalDeformableDETRHead', logit_modulation=False, modulate_at_test=True)
    with pytest.raises(ValueError, match='mix_alpha'):
        build_tiny(DDETR_CFG, 'CalDeformableDETRHead', mix_alpha=1.5)
    with pytest.raises(ValueError, match=r'`mix_alpha` must be a number in \(0, 1\]'):
        build_tiny(DINO_CFG, 'CalDINOHead', mix_alpha=0.0)
    with pytest.raises(ValueError, match='modulation_mode'):
        build_tiny(DINO_CFG, 'CalDINOHead', modulation_mode='minus')
    with pytest.raises(ValueError, match='mix_target_share'):
        build_tiny(DDETR_CFG, 'CalDeformableDETRHead', mix_target_share='per-query')


def test_dino_mixing_loss_uses_the_matching_queries_only_never_the_denoising_queries():
    cal = _head(DINO_CFG, 'CalDINOHead')  # modulation and mixing on, as in the configs
    num_dn = 6  # 1 group x (3 positive + 3 negative) denoising queries, before the 12 matching queries
    cls, boxes, gts, metas = _head_inputs(cal, num_dn=num_dn)
    dn_meta = dict(num_denoising_queries=num_dn, num_denoising_groups=1)
    base = cal.loss_by_feat(cls, boxes, None, None, gts, metas, dn_meta)
    assert base['loss_mix'] > 0

    # denoising logits of every layer made confident for every class: the denoising loss sees the change
    # (so these queries are really read by the head), the mixing loss does not
    dn_changed = cls.clone()
    g = torch.Generator().manual_seed(1)
    dn_changed[:, :, :num_dn] = 8.0 + torch.randn(cls[:, :, :num_dn].shape, generator=g)
    out = cal.loss_by_feat(dn_changed, boxes, None, None, gts, metas, dn_meta)
    assert not torch.allclose(out['dn_loss_cls'], base['dn_loss_cls'])
    assert torch.equal(out['loss_mix'], base['loss_mix'])
    assert torch.equal(out['loss_cls'], base['loss_cls'])

    # the matching queries' last-layer logits do change it
    match_changed = cls.clone()
    match_changed[-1, :, num_dn:] += torch.linspace(-3, 3, cal.cls_out_channels)
    out = cal.loss_by_feat(match_changed, boxes, None, None, gts, metas, dn_meta)
    assert not torch.allclose(out['loss_mix'], base['loss_mix'])
    assert torch.equal(out['dn_loss_cls'], base['dn_loss_cls'])

    # gradients of loss_mix reach the matching queries' logits only
    cls_grad = cls.clone().requires_grad_(True)
    cal.loss_by_feat(cls_grad, boxes, None, None, gts, metas, dn_meta)['loss_mix'].backward()
    assert cls_grad.grad[:, :, :num_dn].abs().sum() == 0
    assert cls_grad.grad[-1, :, num_dn:].abs().sum() > 0
