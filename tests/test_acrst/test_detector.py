"""ACRST detector: two-stage filter with SSMLL scores, paste merge + occlusion, selective supervision,
burn-in, and clear errors for bad pseudo-label files / thresholds. Real Faster R-CNN from the demo config."""

import copy
import json
import os.path as osp
import tempfile
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmdet.registry import DATASETS, MODELS
from mmdet.structures import DetDataSample
from mmengine.dataset import pseudo_collate
from mmengine.logging import MessageHub
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from mmssod.datasets.cropbank import CropBank
from mmssod.engine.hooks import CropBankHook
from mmssod.models.acrst import ACRST


@pytest.fixture
def unlabeled_ann(acrst_cfg):
    ds = acrst_cfg.train_dataloader.dataset.datasets[1]
    with open(ds.data_root + ds.ann_file) as f:
        return json.load(f)


def build(cfg, **semi):
    init_default_scope('mmdet')
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.semi_train_cfg.update(semi)
    torch.manual_seed(0)
    return MODELS.build(model_cfg)


def write_scores(path, ann, values, num_classes=10, drop=0):
    images = ann['images'][drop:]
    data = {
        'classes': None,
        'scores': {str(im['id']): list(values) for im in images},
        'file_names': {str(im['id']): im['file_name'] for im in images},
    }
    assert len(values) == num_classes
    path.write_text(json.dumps(data))
    return str(path)


def with_bank_file(node, path):
    """A config tree whose ACRSTPaste transforms read ``path`` (in place; returns ``node``)."""
    if isinstance(node, dict):
        if node.get('type') == 'ACRSTPaste':
            node['bank_file'] = path
        for value in node.values():
            with_bank_file(value, path)
    elif isinstance(node, list):
        for value in node:
            with_bank_file(value, path)
    return node


def with_empty_bank(dataset_cfg):
    """A copy of a dataset config whose ACRSTPaste transforms read an empty CropBank file."""
    bank_file = osp.join(tempfile.mkdtemp(), 'cropbank.pkl')
    CropBank(10).save(bank_file)
    return with_bank_file(copy.deepcopy(dataset_cfg), bank_file)


def unlabeled_batch(cfg, model, n=2):
    """A real batch of unlabeled images through the demo pipelines (teacher + student views).

    The student pipeline's paste reads an empty CropBank (no paste): the tests add pastes themselves.
    """
    init_default_scope('mmdet')
    dataset = DATASETS.build(with_empty_bank(cfg.train_dataloader.dataset.datasets[1]))
    np.random.seed(0)
    items = [dataset[i] for i in range(n)]
    out = {'inputs': {}, 'data_samples': {}}
    for branch in ('unsup_teacher', 'unsup_student'):
        batch = pseudo_collate(
            [{'inputs': it['inputs'][branch], 'data_samples': it['data_samples'][branch]} for it in items]
        )
        data = model.data_preprocessor.data_preprocessor(batch, training=True)
        out['inputs'][branch], out['data_samples'][branch] = data['inputs'], data['data_samples']
    return out


def test_two_stage_filter_uses_ml_scores_and_records_raw_detections(acrst_cfg, unlabeled_ann, tmp_path):
    scores = [0.0] * 10
    scores[3] = 0.9  # the multi-label classifier says only class 3 is present
    path = write_scores(tmp_path / 'scores.json', unlabeled_ann, scores)
    model = build(
        acrst_cfg,
        ml_scores_file=path,
        tau_cls=None,
        tau_ml=0.2,
        pseudo_label_initial_score_thr=0.0,
        rpn_pseudo_thr=0.0,
        cls_pseudo_thr=0.0,
    )
    data = unlabeled_batch(acrst_cfg, model)
    pseudo, _ = model.get_pseudo_instances(
        data['inputs']['unsup_teacher'], data['data_samples']['unsup_teacher']
    )
    records = model.pop_cropbank_records()
    assert len(records) == 2 and model.pop_cropbank_records() == []
    raw = np.concatenate([r['labels'] for r in records])
    assert len(set(raw.tolist())) > 1  # the untrained teacher predicts several classes...
    kept = torch.cat([ds.gt_instances.labels for ds in pseudo])
    assert (raw == 3).any()  # ...class 3 among them...
    assert kept.tolist() == [3] * int((raw == 3).sum())  # ...and stage 2 keeps all of class 3, only class 3
    assert sum(int(r['kept'].sum()) for r in records) == len(kept)


def test_pastes_join_pseudo_labels_and_only_they_are_regressed(acrst_cfg):
    model = build(acrst_cfg)
    model.train()
    teacher_sample = DetDataSample(
        metainfo=dict(homography_matrix=np.eye(3, dtype=np.float32), img_shape=(128, 128))
    )
    teacher_sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[10.0, 10.0, 40.0, 40.0], [60.0, 60.0, 100.0, 100.0]]),
        labels=torch.tensor([1, 2]),
        scores=torch.tensor([0.9, 0.8]),
        reg_uncs=torch.zeros(2),
    )
    student_meta = dict(
        homography_matrix=np.eye(3, dtype=np.float32),
        img_shape=(128, 128),
        pad_shape=(128, 128),
        batch_input_shape=(128, 128),
        pasted_bboxes=np.array([[55.0, 55.0, 105.0, 105.0]], np.float32),  # covers the second pseudo box
        pasted_labels=np.array([7]),
    )
    student = model.project_pseudo_instances([teacher_sample], [DetDataSample(metainfo=student_meta)])[0]
    inst = student.gt_instances
    assert inst.labels.tolist() == [1, 7] and inst.pasted.tolist() == [False, True]
    assert inst.scores[1].item() == 1.0

    torch.manual_seed(0)
    x = model.student.extract_feat(torch.randn(1, 3, 128, 128))
    proposals = InstanceData(
        bboxes=torch.tensor([[12.0, 12.0, 41.0, 42.0], [56.0, 54.0, 104.0, 103.0], [0.0, 0.0, 20.0, 20.0]]),
        scores=torch.ones(3),
    )

    def reg_loss(sample, **semi):
        model.semi_train_cfg.update(semi)
        torch.manual_seed(0)
        return model.rcnn_reg_loss_by_pseudo_instances(x, [proposals], [sample])['loss_bbox'].item()

    only_pseudo = student.clone()
    only_pseudo.gt_instances = inst[~inst.pasted]
    only_pseudo.set_metainfo(dict(num_pasted=0))  # the pasted instance was dropped above
    assert reg_loss(only_pseudo, regress_pseudo=False) == 0.0  # no pasted instance: no regression
    assert reg_loss(only_pseudo, regress_pseudo=True) > 0.0  # selective supervision switched off
    assert reg_loss(student, regress_pseudo=False) > 0.0  # the pasted instance is regressed


def labeled_batch(cfg, model, n=2):
    """A real batch of labeled images through the demo 'sup' pipeline (an empty CropBank: no paste)."""
    init_default_scope('mmdet')
    dataset = DATASETS.build(with_empty_bank(cfg.train_dataloader.dataset.datasets[0]))
    np.random.seed(0)
    items = [dataset[i] for i in range(n)]
    batch = pseudo_collate(
        [{'inputs': it['inputs']['sup'], 'data_samples': it['data_samples']['sup']} for it in items]
    )
    data = model.data_preprocessor.data_preprocessor(batch, training=True)
    return data['inputs'], data['data_samples']


def test_burn_in_gives_supervised_losses_only(acrst_cfg):
    model = build(acrst_cfg, burn_in_iters=5)
    model.train()
    unsup = unlabeled_batch(acrst_cfg, model)
    sup_inputs, sup_samples = labeled_batch(acrst_cfg, model)

    def loss_keys():
        inputs = dict(unsup['inputs'], sup=sup_inputs)
        samples = copy.deepcopy(dict(unsup['data_samples'], sup=sup_samples))
        torch.manual_seed(0)
        losses = model.loss(inputs, samples)
        assert all(torch.isfinite(summed(losses, k)) for k in losses if 'loss' in k)
        return set(losses)

    hub = MessageHub.get_current_instance()
    try:
        hub.update_info('iter', 2)
        assert model.in_burn_in()
        burn_in = loss_keys()
        assert burn_in and all(k.startswith('sup_') for k in burn_in)
        assert {'sup_loss_rpn_cls', 'sup_loss_rpn_bbox', 'sup_loss_cls', 'sup_loss_bbox'} <= burn_in
        hub.update_info('iter', 5)
        assert not model.in_burn_in()
        after = loss_keys()
        assert burn_in <= after
        assert {
            'unsup_loss_rpn_cls',
            'unsup_loss_rpn_bbox',
            'unsup_loss_cls',
            'unsup_loss_bbox',
            'unsup_num_pasted',
            'unsup_num_pseudo',
        } <= after
    finally:
        hub.update_info('iter', 0)


def rpn_sample(instances):
    """A student sample on a 128 x 128 image with the given pseudo-label instances."""
    meta = dict(img_shape=(128, 128), pad_shape=(128, 128), batch_input_shape=(128, 128))
    sample = DetDataSample(metainfo=meta)
    sample.gt_instances = instances
    return sample


def summed(losses, key):
    value = losses[key]
    return sum(value) if isinstance(value, (list, tuple)) else value


def soft_teacher_rpn_loss(model, x, samples):
    """mmdet SoftTeacher's RPN loss (the parent's method, bypassing ACRST's override)."""
    return super(ACRST, model).rpn_loss_by_pseudo_instances(x, samples)


def test_rpn_box_regression_sees_only_pasted_instances(acrst_cfg):
    model = build(acrst_cfg)
    model.train()
    mixed = InstanceData(  # two teacher pseudo boxes and one pasted instance, apart from each other
        bboxes=torch.tensor([[4.0, 4.0, 44.0, 40.0], [70.0, 8.0, 120.0, 60.0], [20.0, 70.0, 90.0, 120.0]]),
        labels=torch.tensor([1, 2, 7]),
        scores=torch.tensor([0.9, 0.8, 1.0]),
        pasted=torch.tensor([False, False, True]),
    )
    no_paste = InstanceData(  # an image without any pasted instance
        bboxes=torch.tensor([[10.0, 10.0, 60.0, 70.0]]),
        labels=torch.tensor([3]),
        scores=torch.tensor([0.95]),
        pasted=torch.tensor([False]),
    )
    batch = [rpn_sample(mixed), rpn_sample(no_paste)]
    pasted_only = [rpn_sample(mixed[mixed.pasted]), rpn_sample(no_paste[no_paste.pasted])]
    torch.manual_seed(0)
    x = model.student.extract_feat(torch.randn(2, 3, 128, 128))

    def rpn_losses(fn, samples, regress_pseudo=False):
        model.semi_train_cfg.regress_pseudo = regress_pseudo
        torch.manual_seed(0)  # the RPN sampler draws negatives at random
        losses, proposals = fn(model, x, copy.deepcopy(samples))
        assert len(proposals) == 2
        return summed(losses, 'loss_rpn_cls'), summed(losses, 'loss_rpn_bbox')

    acrst_cls, acrst_bbox = rpn_losses(ACRST.rpn_loss_by_pseudo_instances, batch)
    all_cls, all_bbox = rpn_losses(soft_teacher_rpn_loss, batch)
    _, pasted_bbox = rpn_losses(soft_teacher_rpn_loss, pasted_only)
    assert acrst_bbox.item() == pytest.approx(pasted_bbox.item(), rel=1e-6, abs=1e-8)
    assert acrst_bbox.item() > 0.0 and abs(acrst_bbox.item() - all_bbox.item()) > 1e-4
    assert acrst_cls.item() == pytest.approx(all_cls.item(), rel=1e-6)  # objectness: all pseudo-labels
    assert acrst_bbox.requires_grad  # still trains the RPN regression branch

    # selective supervision off: the parent's loss on all pseudo-labels
    _, old_bbox = rpn_losses(ACRST.rpn_loss_by_pseudo_instances, batch, regress_pseudo=True)
    assert old_bbox.item() == pytest.approx(all_bbox.item(), rel=1e-6)

    # no pasted instance anywhere: a finite zero regression loss, objectness still from the pseudo-labels
    none_pasted = [rpn_sample(mixed[~mixed.pasted]), rpn_sample(no_paste)]
    cls_loss, bbox_loss = rpn_losses(ACRST.rpn_loss_by_pseudo_instances, none_pasted)
    assert torch.isfinite(cls_loss) and cls_loss.item() > 0.0
    assert torch.isfinite(bbox_loss) and bbox_loss.item() == 0.0


def test_loss_thresholds_must_not_drop_filtered_pseudo_labels(acrst_cfg):
    """Soft Teacher keeps score > cls_pseudo_thr / rpn_pseudo_thr; above tau_cls they would drop labels."""
    for key in ('cls_pseudo_thr', 'rpn_pseudo_thr'):
        with pytest.raises(ValueError, match=f'semi_train_cfg.{key}=0.8 is above semi_train_cfg.tau_cls=0.7'):
            build(acrst_cfg, tau_cls=0.7, **{key: 0.8})
        # stage 1 off: the bound is the teacher's initial score threshold
        with pytest.raises(
            ValueError, match=f'{key}=0.7 is above semi_train_cfg.pseudo_label_initial_score_thr'
        ):
            low = {**dict(rpn_pseudo_thr=0.1, cls_pseudo_thr=0.1), key: 0.7}
            build(acrst_cfg, tau_cls=None, pseudo_label_initial_score_thr=0.1, **low)
    build(acrst_cfg, tau_cls=0.7, cls_pseudo_thr=0.7, rpn_pseudo_thr=0.5)  # equal or lower is fine
    build(acrst_cfg, tau_cls=None, pseudo_label_initial_score_thr=0.3, cls_pseudo_thr=0.3, rpn_pseudo_thr=0.3)


def test_teacher_becomes_the_student_when_burn_in_ends(acrst_cfg):
    """Unbiased Teacher: the first post-burn-in iteration starts from teacher = student, not from an EMA."""
    model = build(acrst_cfg, burn_in_iters=3)
    model.train()
    with torch.no_grad():  # stand-in for burn-in training: the student moved, the teacher is still initial
        for p in model.student.parameters():
            p.add_(0.05 * torch.randn_like(p))
    assert not torch.equal(model.teacher.rpn_head.rpn_cls.weight, model.student.rpn_head.rpn_cls.weight)
    unsup = unlabeled_batch(acrst_cfg, model)
    sup_inputs, sup_samples = labeled_batch(acrst_cfg, model)
    inputs = dict(unsup['inputs'], sup=sup_inputs)
    hub = MessageHub.get_current_instance()
    seen = {}
    original = model.get_pseudo_instances

    def spy(batch_inputs, batch_data_samples):  # what the teacher looks like when it makes pseudo-labels
        seen['teacher'] = copy.deepcopy(model.teacher.state_dict())
        return original(batch_inputs, batch_data_samples)

    model.get_pseudo_instances = spy
    try:
        hub.update_info('iter', 2)  # last burn-in iteration: teacher untouched
        teacher_before = copy.deepcopy(model.teacher.state_dict())
        model.loss(inputs, copy.deepcopy(dict(unsup['data_samples'], sup=sup_samples)))
        assert 'teacher' not in seen
        for key, value in model.teacher.state_dict().items():
            assert torch.equal(value, teacher_before[key]), key
        hub.update_info('iter', 3)  # first iteration after burn-in
        student = copy.deepcopy(model.student.state_dict())
        model.loss(inputs, copy.deepcopy(dict(unsup['data_samples'], sup=sup_samples)))
        for key, value in seen['teacher'].items():
            assert torch.equal(value, student[key]), key  # pseudo-labels from the burnt-in student
        # later iterations leave the teacher to the EMA hook
        with torch.no_grad():
            model.student.rpn_head.rpn_cls.weight.add_(1.0)
        hub.update_info('iter', 4)
        model.loss(inputs, copy.deepcopy(dict(unsup['data_samples'], sup=sup_samples)))
        assert not torch.equal(model.teacher.rpn_head.rpn_cls.weight, model.student.rpn_head.rpn_cls.weight)
    finally:
        hub.update_info('iter', 0)


def test_building_for_test_needs_no_scores_file(acrst_cfg, tmp_path):
    """Testing / inference build the detector without the training-only SSMLL scores file."""
    model = build(acrst_cfg, ml_scores_file=str(tmp_path / 'not_written_yet.json'))
    model.eval()
    torch.manual_seed(0)
    batch = model.data_preprocessor(
        {
            'inputs': [torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)],
            'data_samples': [
                DetDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64), scale_factor=(1.0, 1.0)))
            ],
        },
        False,
    )
    (pred,) = model.predict(batch['inputs'], batch['data_samples'])
    assert 'pred_instances' in pred
    with pytest.raises(FileNotFoundError, match='semi_train_cfg.ml_scores_file'):
        model.check_ml_scores(None)  # training asks for it, before the first iteration


def hook_runner(model, classes, unlabeled_infos=()):
    labeled = SimpleNamespace(metainfo=dict(classes=classes))
    dataset = SimpleNamespace(datasets=[labeled, _Infos(unlabeled_infos)])
    return SimpleNamespace(model=model, train_dataloader=SimpleNamespace(dataset=dataset))


class _Infos:
    """A dataset stand-in: ``len`` and ``get_data_info`` over a list of data infos."""

    def __init__(self, infos):
        self.infos = list(infos)

    def __len__(self):
        return len(self.infos)

    def get_data_info(self, i):
        return self.infos[i]


def test_bad_pseudo_label_files_and_thresholds(acrst_cfg, unlabeled_ann, tmp_path):
    classes = tuple(acrst_cfg.metainfo['classes'])
    infos = [
        {'img_id': im['id'], 'img_path': '/data/train/' + im['file_name']} for im in unlabeled_ann['images']
    ]
    model = build(acrst_cfg, ml_scores_file=str(tmp_path / 'missing.json'))
    with pytest.raises(FileNotFoundError, match='semi_train_cfg.ml_scores_file'):
        CropBankHook().before_train(hook_runner(model, classes, infos))
    model = build(
        acrst_cfg, ml_scores_file=write_scores(tmp_path / 'k.json', unlabeled_ann, [0.5] * 4, num_classes=4)
    )
    with pytest.raises(ValueError, match='10 classes'):
        CropBankHook().before_train(hook_runner(model, classes, infos))
    for key, value in (('tau_cls', 1.2), ('tau_ml', -0.1), ('burn_in_iters', -1)):
        with pytest.raises(ValueError, match=f'semi_train_cfg.{key}'):
            build(acrst_cfg, **{key: value})
    # a scores file written for another unlabeled set (the first images are missing): refused before training
    path = write_scores(tmp_path / 'other.json', unlabeled_ann, [0.5] * 10, drop=2)
    model = build(acrst_cfg, ml_scores_file=path)
    with pytest.raises(KeyError, match='ml_scores_file'):
        CropBankHook().before_train(hook_runner(model, classes, infos))
    data = unlabeled_batch(acrst_cfg, model)
    with pytest.raises(KeyError, match='ml_scores_file'):  # and, were it not checked, during training
        model.get_pseudo_instances(data['inputs']['unsup_teacher'], data['data_samples']['unsup_teacher'])
    # same ids, but the file names disagree with the dataset
    wrong = json.loads((tmp_path / 'other.json').read_text())
    wrong['scores'] = {str(im['id']): [0.5] * 10 for im in unlabeled_ann['images']}
    wrong['file_names'] = {str(im['id']): 'x_' + im['file_name'] for im in unlabeled_ann['images']}
    (tmp_path / 'names.json').write_text(json.dumps(wrong))
    model = build(acrst_cfg, ml_scores_file=str(tmp_path / 'names.json'))
    with pytest.raises(ValueError, match='does not match'):
        CropBankHook().before_train(hook_runner(model, classes, infos))
    with pytest.raises(ValueError, match='does not match'):
        model.get_pseudo_instances(data['inputs']['unsup_teacher'], data['data_samples']['unsup_teacher'])
    # written for the same number of classes in another order: refused before training, by the CropBankHook
    reordered = dict(wrong, classes=list(reversed(classes)), file_names={})
    (tmp_path / 'order.json').write_text(json.dumps(reordered))
    model = build(acrst_cfg, ml_scores_file=str(tmp_path / 'order.json'))
    model.check_ml_scores(tuple(reversed(classes)), infos)  # the file's own order passes
    with pytest.raises(ValueError, match='ml_scores_file=.*written for classes'):
        CropBankHook().before_train(hook_runner(model, classes, infos))


def test_unwritable_bank_path_fails_before_training(acrst_cfg, tmp_path):
    model = build(acrst_cfg, ml_scores_file=None)
    labeled = _Infos([{'img_path': 'a.png', 'instances': [{'bbox': [0, 0, 9, 9], 'bbox_label': 1}]}])
    labeled.metainfo = dict(classes=tuple(acrst_cfg.metainfo['classes']))
    dataset = SimpleNamespace(datasets=[labeled, _Infos([])])
    runner = SimpleNamespace(
        model=model, train_dataloader=SimpleNamespace(dataset=dataset), work_dir=str(tmp_path)
    )
    blocker = tmp_path / 'not_a_folder'
    blocker.write_text('x')
    with pytest.raises(OSError, match='CropBankHook.bank_file'):
        CropBankHook(bank_file=str(blocker / 'cropbank.pkl')).before_train(runner)


def test_burn_in_steps_preprocess_the_labeled_branch_only(acrst_cfg):
    """During burn-in the unlabeled views of a batch never reach the data preprocessor (nor the loss)."""
    from mmengine.optim import OptimWrapper

    model = build(acrst_cfg, burn_in_iters=5)
    model.train()
    init_default_scope('mmdet')
    np.random.seed(0)
    labeled = DATASETS.build(with_empty_bank(acrst_cfg.train_dataloader.dataset.datasets[0]))
    unlabeled = DATASETS.build(with_empty_bank(acrst_cfg.train_dataloader.dataset.datasets[1]))
    batch = pseudo_collate([labeled[0], labeled[1], unlabeled[0], unlabeled[1]])  # as the sampler mixes them
    seen = []
    preprocess = model.data_preprocessor.forward

    def spy(data, training=False):
        seen.append({branch: sum(x is not None for x in xs) for branch, xs in data['inputs'].items()})
        return preprocess(data, training)

    model.data_preprocessor.forward = spy
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.0))
    hub = MessageHub.get_current_instance()
    try:
        hub.update_info('iter', 2)
        losses = model.train_step(copy.deepcopy(batch), optim_wrapper)
        assert seen == [{'sup': 2}]
        assert 'sup_loss_cls' in losses and not any(k.startswith('unsup_') for k in losses)
    finally:
        hub.update_info('iter', 0)
