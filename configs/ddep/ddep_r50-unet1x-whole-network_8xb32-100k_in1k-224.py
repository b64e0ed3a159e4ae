# The paper's whole-network denoising pretraining: encoder AND decoder are pretrained together by denoising,
# from random init (no classifier weights; compare DDeP, which freezes a classifier-pretrained encoder).
_base_ = ['./ddep_r50-unet1x_8xb32-100k_in1k-224.py']
model = dict(freeze_encoder=False, backbone=dict(init_cfg=None))
