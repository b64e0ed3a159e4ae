"""Tiny real DINO / Deformable-DETR detectors from mmdet's shipped configs (small widths, tiny images)."""

import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

import mmssod  # noqa: F401  (registers the Cal-DETR heads)
from mmssod.utils import get_model_cfg, register_all_modules

register_all_modules()

DINO_CFG = 'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py'
DDETR_CFG = 'mmdet::deformable_detr/deformable-detr-refine-twostage_r50_16xb2-50e_coco.py'
DIMS = 256  # DINO's decoder hard-codes 128 sine features per coordinate (2 x 128 = 256)
NUM_CLASSES = 3


def shrink_detr(cfg, head_type=None, num_queries=20, num_classes=NUM_CLASSES, **head_kwargs):
    """Shrink a DETR-family model config: ResNet-18 at 1/4 width, 1 enc / 2 dec layers, small FFNs."""
    cfg.backbone.update(depth=18, base_channels=16, init_cfg=None, frozen_stages=-1, norm_eval=False)
    cfg.backbone.norm_cfg = dict(type='BN', requires_grad=True)
    cfg.neck.update(in_channels=[32, 64, 128], out_channels=DIMS)
    cfg.encoder.num_layers = 1
    cfg.encoder.layer_cfg.self_attn_cfg.embed_dims = DIMS
    cfg.encoder.layer_cfg.ffn_cfg.update(embed_dims=DIMS, feedforward_channels=128)
    cfg.decoder.num_layers = 2
    cfg.decoder.layer_cfg.self_attn_cfg.update(embed_dims=DIMS, num_heads=8)
    cfg.decoder.layer_cfg.cross_attn_cfg.embed_dims = DIMS
    cfg.decoder.layer_cfg.ffn_cfg.update(embed_dims=DIMS, feedforward_channels=128)
    cfg.positional_encoding.num_feats = DIMS // 2
    cfg.num_queries = num_queries
    if 'dn_cfg' in cfg:
        cfg.dn_cfg.group_cfg.num_dn_queries = 10
    cfg.bbox_head.update(num_classes=num_classes, embed_dims=DIMS)
    if head_type is not None:
        cfg.bbox_head.type = head_type
    cfg.bbox_head.update(head_kwargs)
    cfg.test_cfg.max_per_img = num_queries
    return cfg


def build_tiny(config, head_type=None, seed=0, **head_kwargs):
    """Build a tiny detector with deterministic weights (the same seed gives the same weights)."""
    from mmdet.registry import MODELS

    cfg = shrink_detr(get_model_cfg(config), head_type, **head_kwargs)
    torch.manual_seed(seed)
    model = MODELS.build(cfg)
    model.init_weights()  # also fills parameters created uninitialised (e.g. level_embed)
    return model


def make_batch(num_images=2, size=64, boxes_per_image=(3, 2), labels=None, seed=0):
    """Random images with hand-placed boxes, as the data preprocessor would deliver them."""
    g = torch.Generator().manual_seed(seed)
    inputs = torch.rand(num_images, 3, size, size, generator=g) * 255
    samples = []
    for i in range(num_images):
        n = boxes_per_image[i % len(boxes_per_image)]
        xy = torch.rand(n, 2, generator=g) * size * 0.5
        wh = torch.rand(n, 2, generator=g) * size * 0.4 + 8
        bboxes = torch.cat([xy, (xy + wh).clamp(max=size - 1)], dim=1)
        lab = labels[i] if labels is not None else torch.arange(n) % NUM_CLASSES
        sample = DetDataSample(
            metainfo=dict(
                img_shape=(size, size),
                ori_shape=(size, size),
                pad_shape=(size, size),
                batch_input_shape=(size, size),
                scale_factor=(1.0, 1.0),
                img_id=i,
            )
        )
        sample.gt_instances = InstanceData(bboxes=bboxes, labels=torch.as_tensor(lab, dtype=torch.long))
        samples.append(sample)
    return inputs, samples


@pytest.fixture
def tiny_batch():
    return make_batch()
