# SpCL, unsupervised re-ID on the target domain of the composited two-domain benchmark ("composited from real
# images"), ImageNet-pretrained EfficientNet-Lite0.
_base_ = ['./_base_/spcl_efficientnet-lite0_composited-reid.py']
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)
