# CPU smoke / benchmark config of Cal-DINO: ./dino-4scale_tiny_cpu-smoke_composited-demo.py with the Cal-DETR head.
_base_ = ['./dino-4scale_tiny_cpu-smoke_composited-demo.py']

model = dict(bbox_head=dict(type='CalDINOHead', logit_modulation=True, logit_mixing=True, mix_alpha=0.9))
