# Composited two-domain re-ID (Market-1501 layout and naming), "composited from real images": an identity is
# one Fashion-MNIST item with its own colour, a camera is a background + colour cast + zoom/blur/noise style.
# Build it with:
#   python tools/dataset_converters/composited_reid.py --out data/composited_reid --seed 0
# Domains: source/ (photo backgrounds, sharp) and target/ (texture backgrounds, low-res, noisy), each with
# bounding_box_train/, query/, bounding_box_test/. MarketReIDDataset drops junk (pid -1) and keeps
# distractors (pid 0) in the gallery by default; train pids are relabelled 0..N-1 (original kept as `pid`).
# The real Market-1501 / MSMT17 keep their own configs; this file is an additional, offline benchmark.
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)
dataset_type = 'MarketReIDDataset'
data_root = 'data/composited_reid/'
source_data_root = data_root + 'source/'
target_data_root = data_root + 'target/'
img_scale = (128, 256)  # (w, h), the usual person re-ID input; crops are 64x128
backend_args = None
# provenance: a list, since mmengine reads a str metainfo value as the path of a meta file
metainfo = dict(provenance=['composited from real images'])

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=img_scale, keep_ratio=False),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackReIDInputs', meta_keys=('flip', 'flip_direction', 'pid', 'camid', 'sample_idx')),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=img_scale, keep_ratio=False),
    dict(type='PackReIDInputs', meta_keys=('pid', 'camid', 'subset', 'sample_idx')),
]

source_train_dataset = dict(
    type=dataset_type, data_root=source_data_root, metainfo=metainfo, subset='train', pipeline=train_pipeline
)
target_train_dataset = dict(
    type=dataset_type, data_root=target_data_root, metainfo=metainfo, subset='train', pipeline=train_pipeline
)
target_query_dataset = dict(
    type=dataset_type,
    data_root=target_data_root,
    metainfo=metainfo,
    subset='query',
    test_mode=True,
    pipeline=test_pipeline,
)
target_gallery_dataset = dict(
    type=dataset_type,
    data_root=target_data_root,
    metainfo=metainfo,
    subset='gallery',
    test_mode=True,
    pipeline=test_pipeline,
)
source_query_dataset = dict(
    type=dataset_type,
    data_root=source_data_root,
    metainfo=metainfo,
    subset='query',
    test_mode=True,
    pipeline=test_pipeline,
)
source_gallery_dataset = dict(
    type=dataset_type,
    data_root=source_data_root,
    metainfo=metainfo,
    subset='gallery',
    test_mode=True,
    pipeline=test_pipeline,
)

# labeled source domain (supervised part of UDA)
source_train_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=source_train_dataset,
)
# unlabeled target domain (pseudo labels come from clustering, not from the dataset)
train_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=target_train_dataset,
)
# target query + gallery in one loader; each sample's metainfo carries `subset` ('query' / 'gallery'),
# `pid` and `camid` for the Market-1501 protocol. The evaluator (query/gallery split, same-camera filtering)
# is defined by the SpCL method config.
val_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='ConcatDataset', datasets=[target_query_dataset, target_gallery_dataset]),
)
test_dataloader = val_dataloader
