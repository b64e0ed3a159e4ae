# Ablation: simple additive noise x + sigma * eps instead of scaled additive noise.
_base_ = ['./ddep_r50-unet1x_8xb32-100k_in1k-224.py']
model = dict(noise_type='simple')
