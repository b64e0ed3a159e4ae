# Fine-tune DDeP (ResNet-50 + UNet 1x) on Cityscapes, all labels, 1024x1024 crops. Test-time aug (--tta) is
# horizontal flip only, at the test scale (the paper; mmseg's Cityscapes base would add scales 0.5-1.75). Few-label variants (1/2/5/10/20%) inherit this and replace ann_file with the subsets written by
# tools/dataset_converters/ddep_label_fractions.py.
_base_ = [
    'mmseg::_base_/datasets/cityscapes_1024x1024.py',
    './_base_/ddep_seg_r50_unet1x.py',
    './_base_/finetune_schedule.py',
]
crop_size = (1024, 1024)
model = dict(data_preprocessor=dict(size=crop_size), decode_head=dict(num_classes=19))
# The paper's training augmentation is random crop + flip: mmseg's Cityscapes pipeline without its colour
# distortion (the random rescale 0.5-2.0 before the crop stays).
train_pipeline = [t for t in _base_.train_pipeline if t['type'] != 'PhotoMetricDistortion']
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=(2048, 1024), keep_ratio=True)],
            [
                dict(type='RandomFlip', prob=0.0, direction='horizontal'),
                dict(type='RandomFlip', prob=1.0, direction='horizontal'),
            ],
            [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs')],
        ],
    ),
]
load_from = 'work_dirs/ddep_r50-unet1x_8xb32-100k_in1k-224/ddep_seg.pth'  # ddep_to_seg.py output
