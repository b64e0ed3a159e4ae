# SpCL, UDA source -> target on the composited two-domain re-ID benchmark ("composited from real images"),
# with the ImageNet-pretrained EfficientNet-Lite0 of ./_base_/efficientnet-lite0_reid-model.py.
_base_ = ['./spcl_r18_1xb128-20e_uda_composited-reid.py', './_base_/efficientnet-lite0_reid-model.py']
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)

model = {{_base_.lite0_reid_model}}
