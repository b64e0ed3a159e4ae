# Ablation: the decoder predicts the clean image instead of the noise.
_base_ = ['./ddep_r50-unet1x_8xb32-100k_in1k-224.py']
model = dict(target='image')
