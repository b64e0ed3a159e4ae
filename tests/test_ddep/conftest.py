"""Fixtures of the DDeP tests: a tiny composited segmentation set (composited from real images)."""

import pytest

SMOKE_PRETRAIN = 'configs/ddep/ddep_r18-tiny_cpu-smoke_pretrain_composited-seg.py'
SMOKE_FINETUNE = 'configs/ddep/ddep_r18-tiny_cpu-smoke_finetune_composited-seg.py'


@pytest.fixture(scope='session')
def ddep_seg_root(tmp_path_factory):
    """A 20/4/8 (train/val/unlabeled) image composited segmentation set at 96x96, built once."""
    from tools.benchmarks.composited.segmentation import SegmentationConfig, build_segmentation

    root = str(tmp_path_factory.mktemp('data') / 'composited_seg_smoke')
    cfg = SegmentationConfig(
        num_train=20,
        num_val=4,
        num_unlabeled=8,
        height=96,
        width=96,
        objects_per_image=(1, 3),
        size_range=(16, 48),
        percents=(10, 50),
        folds=(1,),
    )
    build_segmentation(root, seed=0, cfg=cfg)
    return root + '/'


def tiny_ddep_cfg(**kwargs):
    """Config of a narrow DDeP model (ResNet-18 at width 16, its stem a skip; small UNet decoder)."""
    cfg = dict(
        type='DDeP',
        backbone=dict(
            type='ResNetWithStem', depth=18, base_channels=16, stem_channels=16, out_indices=(0, 1, 2, 3, 4)
        ),
        neck=dict(type='UNetDecoder', in_channels=(16, 16, 32, 64, 128), decoder_channels=(32, 16, 16, 8, 8)),
        head=dict(type='DDePDenoisingHead', in_channels=8),
    )
    cfg.update(kwargs)
    return cfg


@pytest.fixture(autouse=True)
def mmpretrain_scope():
    """Build pretraining parts in mmpretrain's scope (other tests may have made 'mmseg' the default)."""
    from mmengine.registry import DefaultScope

    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield
