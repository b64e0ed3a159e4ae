# Fine-tune DDeP (ResNet-50 + UNet 1x) on Pascal Context (59 classes), all labels, 512x512 crops (the paper's
# crop for Pascal Context / ADE20K; mmseg's base uses 480). Test-time aug (--tta): multi-scale 0.5-1.75 + flip.
_base_ = [
    'mmseg::_base_/datasets/pascal_context_59.py',
    './_base_/ddep_seg_r50_unet1x.py',
    './_base_/finetune_schedule.py',
]
crop_size = (512, 512)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(520, 520), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),  # the paper: random crop + flip, no colour distortion
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_classes=59),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)),
)
load_from = 'work_dirs/ddep_r50-unet1x_8xb32-100k_in1k-224/ddep_seg.pth'  # ddep_to_seg.py output
