"""ACRST detector: two-stage filter with SSMLL scores, paste merge + occlusion, selective supervision,
burn-in, and clear errors for bad pseudo-label files / thresholds. Real Faster R-CNN from the demo config."""

import copy
import json

import numpy as np
import pytest
import torch
from mmdet.registry import DATASETS, MODELS
from mmdet.structures import DetDataSample
from mmengine.dataset import pseudo_collate
from mmengine.logging import MessageHub
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData


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


def unlabeled_batch(cfg, model, n=2):
    """A real batch of unlabeled images through the demo pipelines (teacher + student views)."""
    init_default_scope('mmdet')
    dataset = DATASETS.build(cfg.train_dataloader.dataset.datasets[1])
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
        acrst_cfg, ml_scores_file=path, tau_cls=None, tau_ml=0.2, pseudo_label_initial_score_thr=0.0
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
    assert set(kept.tolist()) <= {3}  # ...stage 2 keeps only class 3
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
    assert reg_loss(only_pseudo, regress_pseudo=False) == 0.0  # no pasted instance: no regression
    assert reg_loss(only_pseudo, regress_pseudo=True) > 0.0  # selective supervision switched off
    assert reg_loss(student, regress_pseudo=False) > 0.0  # the pasted instance is regressed


def test_burn_in_gives_supervised_losses_only(acrst_cfg):
    model = build(acrst_cfg, burn_in_iters=5)
    hub = MessageHub.get_current_instance()
    hub.update_info('iter', 2)
    assert model.in_burn_in()
    hub.update_info('iter', 5)
    assert not model.in_burn_in()


def test_bad_pseudo_label_files_and_thresholds(acrst_cfg, unlabeled_ann, tmp_path):
    with pytest.raises(FileNotFoundError, match='semi_train_cfg.ml_scores_file'):
        build(acrst_cfg, ml_scores_file=str(tmp_path / 'missing.json'))
    with pytest.raises(ValueError, match='10 classes'):
        build(
            acrst_cfg,
            ml_scores_file=write_scores(tmp_path / 'k.json', unlabeled_ann, [0.5] * 4, num_classes=4),
        )
    for key, value in (('tau_cls', 1.2), ('tau_ml', -0.1), ('burn_in_iters', -1)):
        with pytest.raises(ValueError, match=f'semi_train_cfg.{key}'):
            build(acrst_cfg, **{key: value})
    # a scores file written for another unlabeled set (the first images are missing)
    path = write_scores(tmp_path / 'other.json', unlabeled_ann, [0.5] * 10, drop=2)
    model = build(acrst_cfg, ml_scores_file=path)
    data = unlabeled_batch(acrst_cfg, model)
    with pytest.raises(KeyError, match='ml_scores_file'):
        model.get_pseudo_instances(data['inputs']['unsup_teacher'], data['data_samples']['unsup_teacher'])
    # same ids, but the file names disagree with the dataset
    wrong = json.loads((tmp_path / 'other.json').read_text())
    wrong['scores'] = {str(im['id']): [0.5] * 10 for im in unlabeled_ann['images']}
    wrong['file_names'] = {str(im['id']): 'x_' + im['file_name'] for im in unlabeled_ann['images']}
    (tmp_path / 'names.json').write_text(json.dumps(wrong))
    model = build(acrst_cfg, ml_scores_file=str(tmp_path / 'names.json'))
    with pytest.raises(ValueError, match='does not match'):
        model.get_pseudo_instances(data['inputs']['unsup_teacher'], data['data_samples']['unsup_teacher'])
