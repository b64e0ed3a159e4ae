"""Cal-DETR (Munir et al., NeurIPS 2023): calibrated Deformable-DETR and DINO heads, and the math.

``cal_detr_utils`` holds the pure functions (uncertainty, modulation, prototype, mixed logits, soft targets);
``cal_detr_head`` wires them into mmdet's DETR heads. The D-ECE metric lives in
:mod:`mmssod.evaluation.metrics.dece_metric` (reliability diagrams in
:mod:`mmssod.evaluation.functional`).
"""

from . import cal_detr_utils
from .cal_detr_head import CalDeformableDETRHead, CalDETRMixin, CalDINOHead

__all__ = ['CalDETRMixin', 'CalDeformableDETRHead', 'CalDINOHead', 'cal_detr_utils']
