"""Volume I/O with exact geometry (NIfTI, NRRD, MetaImage, GIPL, DICOM, TIFF) and level names."""

from discnet.io.files import read_geometry, read_volume, volume_format, write_like
from discnet.io.levels import read_levels
from discnet.io.orientation import from_canonical, to_canonical
from discnet.io.volume import Volume

__all__ = [
    "Volume",
    "from_canonical",
    "read_geometry",
    "read_levels",
    "read_volume",
    "to_canonical",
    "volume_format",
    "write_like",
]
