# DDeP pretraining with a 3x wider UNet decoder (the paper's decoder-width study); Adam lr 6e-5 as for 1x.
_base_ = ['./ddep_r50-unet1x_8xb32-100k_in1k-224.py']
widen_factor = 3
model = dict(neck=dict(widen_factor=widen_factor), head=dict(in_channels=16 * widen_factor))
