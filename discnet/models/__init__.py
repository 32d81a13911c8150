"""Segmentation networks.

Example:
    >>> from discnet.models import UNet
    >>> UNet(params=0.5).base_filters
    45
"""

from discnet.models.unet import UNet, count_parameters, filters_for_params, unet_parameter_count

__all__ = ["UNet", "count_parameters", "filters_for_params", "unet_parameter_count"]
