# Reproduction of the official Cal-DETR release (akhtarvision/cal-detr, a Deformable-DETR fork) on
# Deformable-DETR R50 (50 epochs, COCO): what the released code really trains, i.e. the last layer's logits
# modulated as z_L - tanh(var) (operator precedence in its `z * 1-tanh(var)`) and no logit mixing loss (the
# release computes it and drops it). The paper's method: ./cal-deformable-detr_r50_16xb2-50e_coco.py.
_base_ = ['./cal-deformable-detr_r50_16xb2-50e_coco.py']

model = dict(bbox_head=dict(modulation_mode='released', logit_mixing=False))
