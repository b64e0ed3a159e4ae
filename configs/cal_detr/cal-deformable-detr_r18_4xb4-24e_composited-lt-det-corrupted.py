# Out-of-domain test of ./cal-deformable-detr_r18_4xb4-24e_composited-lt-det.py (test its checkpoint here):
# the baseline's corrupted-val config with the same Cal-DETR head ("composited from real images").
_base_ = ['./deformable-detr_r18_4xb4-24e_composited-lt-det-corrupted.py']

model = dict(
    bbox_head=dict(type='CalDeformableDETRHead', logit_modulation=True, logit_mixing=True, mix_alpha=0.9)
)
