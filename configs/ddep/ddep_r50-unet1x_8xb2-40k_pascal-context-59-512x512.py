# Fine-tune DDeP (ResNet-50 + UNet 1x) on Pascal Context (59 classes), all labels, 480x480 crops.
_base_ = [
    'mmseg::_base_/datasets/pascal_context_59.py',
    './_base_/ddep_seg_r50_unet1x.py',
    './_base_/finetune_schedule.py',
]
crop_size = (480, 480)
train_dataloader = dict(batch_size=2)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_classes=59),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(320, 320)),
)
load_from = 'work_dirs/ddep_r50-unet1x_8xb32-100k_in1k-224/ddep_seg.pth'  # ddep_to_seg.py output
