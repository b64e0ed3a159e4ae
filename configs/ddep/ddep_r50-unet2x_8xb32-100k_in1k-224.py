# DDeP pretraining with a 2x wider UNet decoder (the paper's decoder-width study); Adam lr 1e-4 (the paper's
# rate for the 2x decoder; 1x and 3x use 6e-5).
_base_ = ['./ddep_r50-unet1x_8xb32-100k_in1k-224.py']
widen_factor = 2
model = dict(neck=dict(widen_factor=widen_factor), head=dict(in_channels=16 * widen_factor))
optim_wrapper = dict(optimizer=dict(lr=1e-4))
