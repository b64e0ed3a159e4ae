"""Every Cal-DETR paper config (and its baseline), resolved with its bases, holds the paper's settings.

Sources: Munir et al., "Cal-DETR: Calibrated Detection Transformer", NeurIPS 2023; the official code
akhtarvision/cal-detr (commit a1a819c, a Deformable-DETR fork: main.py defaults, models/deformable_detr.py)
for what the paper leaves to its base detectors; DINO's official DINO_4scale config (IDEA-Research/DINO),
which mmdet's dino-4scale_r50_8xb2-12e_coco reproduces. Config parsing only: no model is built.
"""

import glob
import os.path as osp

import pytest

from tests.conftest import REPO_ROOT
from tests.paper_settings import NOT_PAPER, load, mismatches

CAL_DIR = 'configs/cal_detr'

# Deformable-DETR R50, 50 epochs (official main.py defaults, which the Cal-DETR fork keeps).
DEFORMABLE_DETR = {
    'model.type': 'DeformableDETR',
    'model.backbone.depth': 50,
    'optim_wrapper.optimizer.type': 'AdamW',
    'optim_wrapper.optimizer.lr': 2e-4,
    'optim_wrapper.optimizer.weight_decay': 1e-4,
    'optim_wrapper.clip_grad.max_norm': 0.1,
    'optim_wrapper.paramwise_cfg.custom_keys.backbone.lr_mult': 0.1,  # lr_backbone 2e-5
    'optim_wrapper.paramwise_cfg.custom_keys.sampling_offsets.lr_mult': 0.1,  # lr_linear_proj_mult
    'optim_wrapper.paramwise_cfg.custom_keys.reference_points.lr_mult': 0.1,
    'train_cfg.max_epochs': 50,
    'param_scheduler.0.milestones': [40],  # lr_drop 40
    'train_dataloader.batch_size': 2,  # 2 per GPU, total 32 (16 GPUs)
    'auto_scale_lr.base_batch_size': 32,
    'model.num_queries': 300,
    'model.num_feature_levels': 4,
    'model.with_box_refine': False,
    'model.as_two_stage': False,
    'model.encoder.num_layers': 6,
    'model.decoder.num_layers': 6,  # the uncertainty is the variance over these 6 layers' logits
    'model.decoder.layer_cfg.self_attn_cfg.embed_dims': 256,
    'model.decoder.layer_cfg.ffn_cfg.feedforward_channels': 1024,
    'model.decoder.layer_cfg.ffn_cfg.ffn_drop': 0.1,
    'model.bbox_head.loss_cls.loss_weight': 2.0,  # cls_loss_coef
    'model.bbox_head.loss_cls.alpha': 0.25,  # focal_alpha
    'model.bbox_head.loss_bbox.loss_weight': 5.0,
    'model.bbox_head.loss_iou.loss_weight': 2.0,
    'model.train_cfg.assigner.match_costs.0.weight': 2.0,  # set_cost_class
    'model.train_cfg.assigner.match_costs.1.weight': 5.0,  # set_cost_bbox
    'model.train_cfg.assigner.match_costs.2.weight': 2.0,  # set_cost_giou
    'train_pipeline.2.type': 'RandomFlip',  # DETR augmentation: flip, multi-scale resize / crop
    'train_pipeline.3.transforms.0.0.scales.0': (480, 1333),
    'train_pipeline.3.transforms.0.0.scales.10': (800, 1333),
}
# DINO-4scale R50, 12 epochs (official DINO_4scale config = mmdet's dino-4scale_r50_8xb2-12e_coco).
DINO = {
    'model.type': 'DINO',
    'model.backbone.depth': 50,
    'optim_wrapper.optimizer.type': 'AdamW',
    'optim_wrapper.optimizer.lr': 1e-4,
    'optim_wrapper.optimizer.weight_decay': 1e-4,
    'optim_wrapper.clip_grad.max_norm': 0.1,
    'optim_wrapper.paramwise_cfg.custom_keys.backbone.lr_mult': 0.1,
    'train_cfg.max_epochs': 12,
    'param_scheduler.0.milestones': [11],
    'train_dataloader.batch_size': 2,  # 2 per GPU x 8 GPUs = 16
    'auto_scale_lr.base_batch_size': 16,
    'model.num_queries': 900,
    'model.encoder.layer_cfg.self_attn_cfg.num_levels': 4,
    'model.with_box_refine': True,
    'model.as_two_stage': True,
    'model.encoder.num_layers': 6,
    'model.decoder.num_layers': 6,
    'model.decoder.layer_cfg.ffn_cfg.feedforward_channels': 2048,
    'model.dn_cfg.label_noise_scale': 0.5,
    'model.dn_cfg.box_noise_scale': 1.0,
    'model.dn_cfg.group_cfg.num_dn_queries': 100,
    'model.bbox_head.loss_cls.loss_weight': 1.0,
    'model.bbox_head.loss_bbox.loss_weight': 5.0,
    'model.bbox_head.loss_iou.loss_weight': 2.0,
}
# The paper's method: logit modulation z_L * (1 - tanh(var)), logit mixing alpha 0.9 with weight lambda 0.5
# (official: mxu = 0.9, weight_dict['loss_ceReg'] = 0.5).
PAPER_METHOD = {
    'model.bbox_head.logit_modulation': True,
    'model.bbox_head.modulation_mode': 'paper',
    'model.bbox_head.logit_mixing': True,
    'model.bbox_head.mix_alpha': 0.9,
    'model.bbox_head.loss_mix.type': 'FocalLoss',
    'model.bbox_head.loss_mix.loss_weight': 0.5,
}
# What the official release trains: z_L - tanh(var) (operator precedence) and no mixing loss (overwritten).
RELEASED = {'model.bbox_head.modulation_mode': 'released', 'model.bbox_head.logit_mixing': False}
COCO = {
    'model.bbox_head.num_classes': 80,
    'test_dataloader.dataset.ann_file': 'annotations/instances_val2017.json',
}
CORRUPTED = {  # CorCOCO: COCO val2017, one random corruption at a random severity per image
    'model.bbox_head.num_classes': 80,
    'test_dataloader.dataset.ann_file': 'annotations/instances_val2017_corrupted.json',
}
CITYSCAPES = {  # in-domain Cityscapes (8 classes), out-of-domain Foggy Cityscapes beta 0.02
    'model.bbox_head.num_classes': 8,
    'train_dataloader.dataset.ann_file': 'annotations/instancesonly_filtered_gtFine_train.json',
    'test_dataloader.dataset.ann_file': 'annotations/instancesonly_filtered_gtFine_val_foggy_beta_0.02.json',
}


def _head(head_type: str) -> dict:
    return {'model.bbox_head.type': head_type}


# One dict per paper config: the expected value of each config key.
PAPER_SETTINGS = {
    'cal-deformable-detr_r50_16xb2-50e_coco.py': {
        **DEFORMABLE_DETR,
        **PAPER_METHOD,
        **COCO,
        **_head('CalDeformableDETRHead'),
    },
    'cal-deformable-detr_r50_16xb2-50e_corrupted-coco.py': {
        **DEFORMABLE_DETR,
        **PAPER_METHOD,
        **CORRUPTED,
        **_head('CalDeformableDETRHead'),
    },
    'cal-deformable-detr_r50_16xb2-50e_cityscapes-to-foggy.py': {
        **DEFORMABLE_DETR,
        **PAPER_METHOD,
        **CITYSCAPES,
        **_head('CalDeformableDETRHead'),
    },
    'cal-deformable-detr-released_r50_16xb2-50e_coco.py': {
        **DEFORMABLE_DETR,
        **RELEASED,
        **COCO,
        **_head('CalDeformableDETRHead'),
    },
    'cal-deformable-detr-released_r50_16xb2-50e_corrupted-coco.py': {
        **DEFORMABLE_DETR,
        **RELEASED,
        **CORRUPTED,
        **_head('CalDeformableDETRHead'),
    },
    'deformable-detr_r50_16xb2-50e_coco_dece.py': {**DEFORMABLE_DETR, **COCO, **_head('DeformableDETRHead')},
    'deformable-detr_r50_16xb2-50e_corrupted-coco_dece.py': {
        **DEFORMABLE_DETR,
        **CORRUPTED,
        **_head('DeformableDETRHead'),
    },
    'deformable-detr_r50_16xb2-50e_cityscapes-to-foggy_dece.py': {
        **DEFORMABLE_DETR,
        **CITYSCAPES,
        **_head('DeformableDETRHead'),
    },
    'cal-dino-4scale_r50_8xb2-12e_coco.py': {**DINO, **PAPER_METHOD, **COCO, **_head('CalDINOHead')},
    'cal-dino-4scale_r50_8xb2-12e_corrupted-coco.py': {
        **DINO,
        **PAPER_METHOD,
        **CORRUPTED,
        **_head('CalDINOHead'),
    },
    'cal-dino-4scale-released_r50_8xb2-12e_coco.py': {**DINO, **RELEASED, **COCO, **_head('CalDINOHead')},
    'cal-dino-4scale-released_r50_8xb2-12e_corrupted-coco.py': {
        **DINO,
        **RELEASED,
        **CORRUPTED,
        **_head('CalDINOHead'),
    },
    'dino-4scale_r50_8xb2-12e_coco_dece.py': {**DINO, **COCO, **_head('DINOHead')},
    'dino-4scale_r50_8xb2-12e_corrupted-coco_dece.py': {**DINO, **CORRUPTED, **_head('DINOHead')},
}

# D-ECE as the paper's: detections with score >= 0.3, IoU >= 0.5 for a true positive, 10 confidence bins.
DECE = {'score_thr': 0.3, 'iou_thr': 0.5, 'num_bins': 10}


def test_every_paper_config_is_in_the_table():
    found = {
        osp.basename(p)
        for p in glob.glob(osp.join(REPO_ROOT, CAL_DIR, '*.py'))
        if not any(tag in osp.basename(p) for tag in NOT_PAPER)
        and not osp.basename(p).split('_')[1].startswith(('r18', 'efficientnet'))  # composited benchmarks
    }
    assert found == set(PAPER_SETTINGS)


@pytest.mark.parametrize('name', sorted(PAPER_SETTINGS))
def test_paper_settings(name):
    wrong = mismatches(load(f'{CAL_DIR}/{name}'), PAPER_SETTINGS[name])
    assert not wrong, f'{name}: (config value, paper value) {wrong}'


@pytest.mark.parametrize('name', sorted(PAPER_SETTINGS))
def test_dece_evaluators(name):
    cfg = load(f'{CAL_DIR}/{name}')
    for evaluators in (cfg.val_evaluator, cfg.test_evaluator):
        (dece,) = [e for e in evaluators if e['type'] == 'DECEMetric']
        assert {k: dece[k] for k in DECE} == DECE
        (coco,) = [e for e in evaluators if e['type'] == 'CocoMetric']
        assert dece['ann_file'] == coco['ann_file']
    test_ann = cfg.test_dataloader.dataset.ann_file
    assert dece['ann_file'].endswith(test_ann)  # the test D-ECE scores the test set
