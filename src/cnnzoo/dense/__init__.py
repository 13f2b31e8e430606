"""Dense prediction on any zoo backbone: FCN semantic segmentation and torchvision detectors.

The backbone's stages are read through the model contract (``feature_info``), never by slicing an
architecture by hand, so every registered family works.
"""
