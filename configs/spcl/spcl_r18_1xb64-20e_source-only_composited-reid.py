# Baseline: source-only training (labeled source domain, same memory-based loss with the true identities, no
# target data), evaluated on the target domain of the composited two-domain re-ID benchmark
# ("composited from real images").
_base_ = ['./_base_/spcl_r18_composited-reid.py']
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)

train_dataloader = dict(dataset=dict(data_root={{_base_.source_root}}))
custom_hooks = [
    dict(
        type='SpCLClusterHook',
        pipeline={{_base_.test_pipeline}},
        use_dataset_labels=True,
        batch_size=128,
        num_workers=2,
    )
]
