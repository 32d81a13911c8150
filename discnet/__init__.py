"""discnet: slice-wise U-Net segmentation and measurement of intervertebral discs in 3D spine MRI."""

__version__ = "0.1.0"
