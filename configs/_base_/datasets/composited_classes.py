# The ten Fashion-MNIST classes of the composited benchmarks ("composited from real images") and the colours
# they are drawn in. Detection labels are the class indices (composited_lt_det.py, semi_composited_lt_det.py);
# segmentation adds 'background' as label 0 (composited_seg.py).
fmnist_classes = (
    'T-shirt/top',
    'Trouser',
    'Pullover',
    'Dress',
    'Coat',
    'Sandal',
    'Shirt',
    'Sneaker',
    'Bag',
    'Ankle boot',
)
fmnist_palette = [
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 190),
]
