# Cal-Deformable-DETR (the paper's method: uncertainty-guided logit modulation z_L * (1 - tanh(var)) + logit
# mixing, alpha 0.9, lambda 0.5) on ./deformable-detr-small_efficientnet-lite0_1xb4-900it_composited-demo.py;
# only the head differs.
_base_ = ['./deformable-detr-small_efficientnet-lite0_1xb4-900it_composited-demo.py']

model = dict(
    bbox_head=dict(
        type='CalDeformableDETRHead',
        logit_modulation=True,
        modulation_mode='paper',
        logit_mixing=True,
        mix_alpha=0.9,
        loss_mix=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=0.5),  # lambda
    )
)
