# CPU smoke / benchmark config of Cal-Deformable-DETR: the tiny Deformable-DETR smoke config with the Cal-DETR head.
_base_ = ['./deformable-detr_tiny_cpu-smoke_composited-demo.py']

model = dict(
    bbox_head=dict(type='CalDeformableDETRHead', logit_modulation=True, logit_mixing=True, mix_alpha=0.9)
)
