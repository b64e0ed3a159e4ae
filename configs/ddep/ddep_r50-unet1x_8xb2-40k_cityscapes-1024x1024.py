# Fine-tune DDeP (ResNet-50 + UNet 1x) on Cityscapes, all labels, 1024x1024 crops, flip test-time aug via
# tta_pipeline. Few-label variants (1/2/5/10/20%) inherit this and replace ann_file with the subsets written by
# tools/dataset_converters/ddep_label_fractions.py.
_base_ = [
    'mmseg::_base_/datasets/cityscapes_1024x1024.py',
    './_base_/ddep_seg_r50_unet1x.py',
    './_base_/finetune_schedule.py',
]
crop_size = (1024, 1024)
model = dict(data_preprocessor=dict(size=crop_size), decode_head=dict(num_classes=19))
load_from = 'work_dirs/ddep_r50-unet1x_8xb32-100k_in1k-224/ddep_seg.pth'  # ddep_to_seg.py output
