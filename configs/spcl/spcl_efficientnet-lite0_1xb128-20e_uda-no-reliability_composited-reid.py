# Ablation: SpCL UDA without the self-paced reliability criterion on the composited two-domain re-ID benchmark ("composited from real images"), with the
# ImageNet-pretrained EfficientNet-Lite0 of ./_base_/spcl_efficientnet-lite0_composited-reid.py (same model
# settings; mmengine cannot merge two bases that both set `model`, so they are repeated here).
_base_ = ['./spcl_r18_1xb128-20e_uda-no-reliability_composited-reid.py']
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='EfficientNetLite',
        arch='lite0',
        out_indices=(4,),
        frozen_stages=-1,
        norm_eval=False,
        pretrained=True,
    ),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(in_channels=320),
)
