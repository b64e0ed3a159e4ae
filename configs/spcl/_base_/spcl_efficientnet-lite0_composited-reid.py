# SpCL on the composited two-domain re-ID benchmark ("composited from real images") with the ImageNet-pretrained
# EfficientNet-Lite0 of ./efficientnet-lite0_reid-model.py, the CPU-scale stand-in for the paper's ImageNet
# ResNet-50. Unsupervised on the target domain, as ./spcl_r18_composited-reid.py.
_base_ = ['./spcl_r18_composited-reid.py', './efficientnet-lite0_reid-model.py']
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)

model = {{_base_.lite0_reid_model}}
