"""Dataset sources: the built-in synthetic renderer, user RGB-D folders, NYU Depth v2 labelled,
KITTI depth, DIODE and prepared TensorFlow Datasets datasets."""
