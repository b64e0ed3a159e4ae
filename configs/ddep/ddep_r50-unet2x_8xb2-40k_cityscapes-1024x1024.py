# Fine-tune the 2x-wide DDeP decoder (from ddep_r50-unet2x_8xb32-100k_in1k-224.py) on Cityscapes. The
# decoder must match the pretrained one: loading a 2x checkpoint into the 1x config fails loudly.
_base_ = ['./ddep_r50-unet1x_8xb2-40k_cityscapes-1024x1024.py']
model = dict(decode_head=dict(decoder=dict(widen_factor=2)))
load_from = 'work_dirs/ddep_r50-unet2x_8xb32-100k_in1k-224/ddep_seg.pth'  # ddep_to_seg.py output
