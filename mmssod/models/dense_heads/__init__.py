from .cal_detr_head import CalDeformableDETRHead, CalDINOHead  # noqa: F401
