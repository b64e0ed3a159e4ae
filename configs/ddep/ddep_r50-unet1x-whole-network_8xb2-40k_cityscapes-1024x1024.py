# Fine-tune the whole-network denoising-pretrained model (encoder + decoder from
# ddep_r50-unet1x-whole-network_8xb32-100k_in1k-224.py) on Cityscapes; no ImageNet classifier weights.
_base_ = ['./ddep_r50-unet1x_8xb2-40k_cityscapes-1024x1024.py']
model = dict(backbone=dict(init_cfg=None))
load_from = 'work_dirs/ddep_r50-unet1x-whole-network_8xb32-100k_in1k-224/ddep_seg.pth'  # ddep_to_seg.py
