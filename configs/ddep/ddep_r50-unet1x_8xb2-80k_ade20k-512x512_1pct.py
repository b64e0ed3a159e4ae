# ADE20K with 1% of the train labels (subset file from tools/dataset_converters/ddep_label_fractions.py).
_base_ = ['./ddep_r50-unet1x_8xb2-80k_ade20k-512x512.py']
train_dataloader = dict(dataset=dict(ann_file='splits/train@1.txt'))
