# Fine-tuning segmentor: the DDeP encoder + UNet decoder inside mmseg's EncoderDecoder. Initialise it from a
# DDeP checkpoint converted with tools/model_converters/ddep_to_seg.py (load_from=...), or leave load_from
# unset for the random-init-decoder baseline (the encoder then starts from its ImageNet classifier weights).
# The data preprocessor normalises like DDeP's encoder_norm, so the encoder sees the same statistics.
# Loading is strict for the decoder: a checkpoint whose decoder has another layout (width, norm, skips) fails
# with an error naming the setting (see mmssod/models/ddep/segmentor.py).
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)
norm_cfg = dict(type='SyncBN', requires_grad=True)
widen_factor = 1
model = dict(
    type='DDePEncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=(512, 512),
    ),
    backbone=dict(
        type='mmpretrain.ResNetWithStem',
        depth=50,
        out_indices=(0, 1, 2, 3, 4),  # stem (stride 2) + layer1..4: the decoder's skips
        norm_cfg=norm_cfg,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/resnet/'
            'resnet50_8xb32_in1k_20210831-ea4938fc.pth',
            prefix='backbone.',
        ),
    ),
    decode_head=dict(
        type='UNetDecodeHead',
        decoder=dict(
            in_channels=(64, 256, 512, 1024, 2048),
            in_strides=(2, 4, 8, 16, 32),
            decoder_channels=(256, 128, 64, 32, 16),
            widen_factor=widen_factor,
            out_stride=1,
            norm_cfg=norm_cfg,
        ),
        num_classes=19,
        dropout_ratio=0.1,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0, avg_non_ignore=True),
    ),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'),
)
