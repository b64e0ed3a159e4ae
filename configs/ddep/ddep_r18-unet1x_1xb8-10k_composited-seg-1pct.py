# Composited segmentation benchmark ("composited from real images") with 1% of the train labels (fold 1).
_base_ = ['./ddep_r18-unet1x_1xb8-10k_composited-seg-10pct.py']
train_dataloader = dict(dataset=dict(ann_file='splits/train.1@1.txt'))
