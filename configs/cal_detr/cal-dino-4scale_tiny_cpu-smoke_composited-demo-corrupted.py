# Out-of-domain test of ./cal-dino-4scale_tiny_cpu-smoke_composited-demo.py (test its checkpoint here):
# the baseline's corrupted-val config with the same Cal-DETR head ("composited from real images").
_base_ = ['./dino-4scale_tiny_cpu-smoke_composited-demo-corrupted.py']

model = dict(bbox_head=dict(type='CalDINOHead', logit_modulation=True, logit_mixing=True, mix_alpha=0.9))
