# Ablation: SpCL UDA without the self-paced reliability criterion (plain DBSCAN clusters + outliers),
# composited two-domain re-ID benchmark ("composited from real images").
_base_ = ['./spcl_r18_1xb128-20e_uda_composited-reid.py']
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)

custom_hooks = [
    dict(
        type='SpCLClusterHook',
        pipeline={{_base_.test_pipeline}},
        use_reliability=False,
        batch_size=128,
        num_workers=2,
    )
]
