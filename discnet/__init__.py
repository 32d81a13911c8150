"""discnet: slice-wise U-Net segmentation and measurement of intervertebral discs in 3D spine MRI."""

__version__ = "0.1.0"

from discnet.training import resolvers  # noqa: E402,F401  (registers ${discnet_shared:} for the Hydra configs)
