# Composited semantic segmentation, "composited from real images": Fashion-MNIST items on scikit-image
# photos/textures with exact per-pixel labels. Build it with:
#   python tools/dataset_converters/composited_seg.py --out data/composited_seg --seed 0
# Layout (mmseg / mmdet BaseSegDataset): img_dir/{train,val,unlabeled}/*.png, ann_dir/{train,val}/*.png,
# splits/*.txt. Labels: 0 = background (a real class, so reduce_zero_label=False), k+1 = Fashion-MNIST
# class k, 255 = ignore (never written by the generator; used for padding). 11 classes.
# mmseg users: type='BaseSegDataset' from mmseg takes the same arguments (put reduce_zero_label=False on the
# dataset, use mmseg's LoadAnnotations / PackSegInputs and IoUMetric(ignore_index=255)).
_base_ = './composited_classes.py'

dataset_type = 'BaseSegDataset'
data_root = 'data/composited_seg/'
fold = 1
percent = 10  # few-label fraction used by few_label_dataset (splits/train.{fold}@{percent}.txt)
# `provenance` travels with dataset_meta to the evaluators: every results table on these data must say it
# (a list: mmengine reads a str metainfo value as the path of a meta file)
metainfo = dict(
    provenance=['composited from real images'],
    classes=('background',) + _base_.fmnist_classes,
    palette=[(0, 0, 0)] + _base_.fmnist_palette,
)
img_suffix = '.png'
seg_map_suffix = '.png'
ignore_index = 255
crop_size = (256, 256)
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=False, with_mask=False, with_seg=True, reduce_zero_label=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs', meta_keys=('img_path', 'ori_shape', 'img_shape', 'flip', 'flip_direction')),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=False, with_mask=False, with_seg=True, reduce_zero_label=False),
    dict(type='PackDetInputs', meta_keys=('img_path', 'ori_shape', 'img_shape')),
]
# images only (decoder pretraining); the method config usually replaces this pipeline
unlabeled_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs', meta_keys=('img_path', 'ori_shape', 'img_shape', 'flip', 'flip_direction')),
]

full_label_dataset = dict(
    type=dataset_type,
    data_root=data_root,
    metainfo=metainfo,
    img_suffix=img_suffix,
    seg_map_suffix=seg_map_suffix,
    ann_file='splits/train.txt',
    data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'),
    pipeline=train_pipeline,
    backend_args=backend_args,
)
few_label_dataset = dict(
    type=dataset_type,
    data_root=data_root,
    metainfo=metainfo,
    img_suffix=img_suffix,
    seg_map_suffix=seg_map_suffix,
    ann_file=f'splits/train.{fold}@{percent}.txt',
    data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'),
    pipeline=train_pipeline,
    backend_args=backend_args,
)
unlabeled_dataset = dict(
    type=dataset_type,
    data_root=data_root,
    metainfo=metainfo,
    img_suffix=img_suffix,
    ann_file='splits/unlabeled.txt',
    data_prefix=dict(img_path='img_dir/unlabeled'),
    pipeline=unlabeled_pipeline,
    backend_args=backend_args,
)

train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=full_label_dataset,
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        img_suffix=img_suffix,
        seg_map_suffix=seg_map_suffix,
        ann_file='splits/val.txt',
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args,
    ),
)
test_dataloader = val_dataloader

val_evaluator = dict(type='SemSegMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
