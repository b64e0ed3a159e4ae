# The embedded demo set (256x256, "composited from real images") and a tiny, iteration-based DETR-family
# setting for the CPU smoke / benchmark configs: quarter-width ResNet-18 from scratch, 1 encoder + 3 decoder
# layers, 30 queries, batch 4, 300 iterations.
#
# Used as the second base next to a ./*_r18_4xb4-24e_composited-lt-det.py config, whose keys it must not
# repeat (mmengine refuses a key defined by two bases): the settings are held as `demo_*` variables and the
# child config assigns them (see ../dino-4scale_tiny_cpu-smoke_composited-demo.py).
demo_data_root = 'data/composited_det_demo/'
demo_img_scale = (256, 256)
demo_model = dict(
    num_queries=30,
    backbone=dict(base_channels=16),
    neck=dict(in_channels=[32, 64, 128]),
    encoder=dict(num_layers=1, layer_cfg=dict(ffn_cfg=dict(feedforward_channels=128))),
    decoder=dict(num_layers=3, layer_cfg=dict(ffn_cfg=dict(feedforward_channels=128))),
    test_cfg=dict(max_per_img=30),
)
demo_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=demo_img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
demo_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=demo_img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
demo_train_dataloader = dict(
    batch_size=4, num_workers=1, dataset=dict(data_root=demo_data_root, pipeline=demo_train_pipeline)
)
demo_val_dataloader = dict(
    batch_size=4, num_workers=1, dataset=dict(data_root=demo_data_root, pipeline=demo_test_pipeline)
)
demo_val_evaluator = [
    dict(type='CocoMetric', ann_file=demo_data_root + 'annotations/instances_val.json', metric='bbox'),
    dict(type='DECEMetric', ann_file=demo_data_root + 'annotations/instances_val.json'),
]
# the out-of-domain test on the demo set's corrupted val copy (with the base's corrupted_test_dataloader)
demo_corrupted_test_evaluator = [
    dict(
        type='CocoMetric', ann_file=demo_data_root + 'annotations/instances_val_corrupted.json', metric='bbox'
    ),
    dict(
        type='DECEMetric',
        ann_file=demo_data_root + 'annotations/instances_val_corrupted.json',
        prefix='dece_corrupted',
    ),
]

max_iters = 300
demo_train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
demo_param_scheduler = [
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=[250], gamma=0.1)
]
demo_default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1),
)
demo_log_processor = dict(by_epoch=False)
demo_auto_scale_lr = dict(enable=False, base_batch_size=4)
