# Cal-DINO: mmdet's DINO-4scale R50 (12 epochs, COCO) with the Cal-DETR head (uncertainty-guided logit
# modulation + logit mixing, alpha 0.9, lambda 0.5), evaluated with box AP and D-ECE (+ reliability diagram).
_base_ = ['./dino-4scale_r50_8xb2-12e_coco_dece.py']  # the baseline: same evaluators

model = dict(
    bbox_head=dict(
        type='CalDINOHead',
        logit_modulation=True,
        modulation_mode='paper',  # 'released' reproduces the official code's z - tanh(var), for comparison
        logit_mixing=True,
        mix_alpha=0.9,
        loss_mix=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=0.5),  # lambda
    )
)
