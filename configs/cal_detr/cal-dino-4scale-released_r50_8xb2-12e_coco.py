# Reproduction of the official Cal-DETR release (akhtarvision/cal-detr) on DINO-4scale R50 (12 epochs, COCO):
# what the released code really trains, i.e. the last layer's logits modulated as z_L - tanh(var) (operator
# precedence in its `z * 1-tanh(var)`) and no logit mixing loss (the release computes it and drops it).
# For comparison with the paper's method, ./cal-dino-4scale_r50_8xb2-12e_coco.py; see README.md.
_base_ = ['./cal-dino-4scale_r50_8xb2-12e_coco.py']

model = dict(bbox_head=dict(modulation_mode='released', logit_mixing=False))
