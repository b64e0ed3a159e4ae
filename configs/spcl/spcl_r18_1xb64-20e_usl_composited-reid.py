# SpCL, unsupervised re-ID on the target domain of the composited two-domain benchmark
# ("composited from real images").
_base_ = ['./_base_/spcl_r18_composited-reid.py']
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)
