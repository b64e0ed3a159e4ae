# Pascal Context 59 with 10% of the train labels (subset file from
# tools/dataset_converters/ddep_label_fractions.py).
_base_ = ['./ddep_r50-unet1x_8xb2-40k_pascal-context-59-480x480.py']
train_dataloader = dict(dataset=dict(ann_file='splits/train@10.txt'))
