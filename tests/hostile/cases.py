"""The hostile-input cases: each a command line, the file its one-line error must name and words of
the problem (and, for some, an environment or a failing ``os.replace``)."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

from tests.hostile.files import convert_with, predict, volumes

# case -> (command line, the file the message names, words of the problem[, environment or fault])
CASES: dict[str, Callable[[SimpleNamespace], tuple]] = {
    # 2. no output is an input
    "convert -o its input": lambda h: (["convert", h.h5, "-o", h.h5], "unet.h5", "equals an input"),
    "convert -o its input spelled otherwise": lambda h: (
        ["convert", h.h5, "-o", h.root / "sub" / ".." / "unet.h5"],
        "unet.h5",
        "equals an input",
    ),
    "convert -o a symlink to its input": lambda h: (
        ["convert", h.h5, "-o", h.root / "link.h5"],
        "link.h5",
        "equals an input",
    ),
    "export -o its checkpoint": lambda h: (
        ["export", h.ckpt, "--format", "torchscript", "-o", h.ckpt],
        "model.ckpt",
        "equals an input",
    ),
    "export -o a hard link to its checkpoint": lambda h: (
        ["export", h.ckpt, "--format", "torchscript", "-o", h.root / "hard_link.pt"],
        "hard_link.pt",
        "equals an input",
    ),
    "split -o an image the manifest names": lambda h: (
        ["split", h.study / "subjects.csv", "--val", "1", "-o", h.study / "scan.nii.gz"],
        "scan.nii.gz",
        "equals a file the manifest names",
    ),
    "predict into the folder of the manifest's labels": lambda h: (
        predict(h, h.study / "subjects.csv", out=h.study),
        "sub11_discs.nii.gz",
        "equals a file its manifest names",
    ),
    "predict into its input folder": lambda h: (predict(h, h.scans, out=h.scans), "scans", "is an input folder"),
    "volumes -o a hard link to its input": lambda h: (
        volumes(h, h.label, out=h.root / "label_link.csv"),
        "label_link.csv",
        "equals an input",
    ),
    "export -o an existing folder": lambda h: (
        ["export", h.ckpt, "--format", "torchscript", "-o", h.existing],
        "existing_folder",
        "existing folder",
    ),
    "convert -o an existing folder": lambda h: (["convert", h.h5, "-o", h.existing], "existing_folder", "folder"),
    # 5. declared sizes checked before allocating
    "nii.gz declaring 1 GiB": lambda h: (predict(h, h.bomb), "bomb.nii.gz", "DISCNET_MAX_IMAGE_"),
    "h5 declaring a 13.4 GiB weight": lambda h: (
        ["convert", h.huge_h5, "-o", h.root / "k.ckpt"],
        "huge_weights.h5",
        "DISCNET_MAX_KERAS_WEIGHT_BYTES",
    ),
    ".keras zip bomb": lambda h: (
        ["convert", h.zip_bomb, "-o", h.root / "k.ckpt"],
        "bomb.keras",
        "DISCNET_MAX_ARCHIVE_MEMBER_BYTES",
        {"DISCNET_MAX_ARCHIVE_MEMBER_BYTES": "1000000"},
    ),
    "checkpoint image_size=200000": lambda h: (predict(h, h.scan, ckpt=h.big_size), "big_size.ckpt", "image_size"),
    "checkpoint base_filters=200000": lambda h: (
        predict(h, h.scan, ckpt=h.big_filters),
        "big_filters.ckpt",
        "base_filters",
    ),
    "billion laughs config.yaml beside a checkpoint": lambda h: (
        predict(h, h.scan, ckpt=h.laughs),
        "laughs/config.yaml",
        "alias",
    ),
    # 6. one line for the rest
    "levels.csv row with a missing field": lambda h: (
        volumes(h, h.label, levels=h.root / "missing_field.csv"),
        "missing_field.csv",
        "row 3 has a missing field",
    ),
    "levels.csv not UTF-8": lambda h: (volumes(h, h.label, levels=h.root / "latin1.csv"), "latin1.csv", "UTF-8"),
    "levels.csv with a label value twice": lambda h: (
        volumes(h, h.label, levels=h.root / "duplicate_value.csv"),
        "duplicate_value.csv",
        "rows 2 and 4",
    ),
    ".label with an unbalanced quote": lambda h: (
        volumes(h, h.label, levels=h.root / "quote.label"),
        "quote.label",
        "line 2",
    ),
    ".label with a non-integer index": lambda h: (
        volumes(h, h.label, levels=h.root / "index.label"),
        "index.label",
        "non-integer label index",
    ),
    "checkpoint hyper_parameters a list": lambda h: (
        predict(h, h.scan, ckpt=h.hyper_list),
        "hyper_list.ckpt",
        "hyper_parameters",
    ),
    "checkpoint with an unknown net key": lambda h: (
        predict(h, h.scan, ckpt=h.unknown_key),
        "unknown_key.ckpt",
        "unknown network setting 'layers'",
    ),
    "checkpoint with a wrongly typed net key": lambda h: (
        predict(h, h.scan, ckpt=h.typed_key),
        "typed_key.ckpt",
        "wrong type",
    ),
    "checkpoint with depth=0": lambda h: (predict(h, h.scan, ckpt=h.depth0), "depth0.ckpt", "depth=0"),
    "checkpoint with image_size='abc'": lambda h: (predict(h, h.scan, ckpt=h.size_abc), "size_abc.ckpt", "abc"),
    "checkpoint whose state_dict is a list": lambda h: (
        predict(h, h.scan, ckpt=h.state_list),
        "state_list.ckpt",
        "state_dict",
    ),
    "${oc.env:...} in config.yaml beside a checkpoint": lambda h: (
        predict(h, h.scan, ckpt=h.env_yaml),
        "env/config.yaml",
        "interpolation",
    ),
    "Keras class_name a list": lambda h: (convert_with(h, "class_list.json"), "class_list.json", "Functional"),
    "Keras layers a mapping": lambda h: (convert_with(h, "layers_dict.json"), "layers_dict.json", "'layers'"),
    "Keras config a list": lambda h: (convert_with(h, "config_list.json"), "config_list.json", "'config'"),
    "Keras config nested 100k deep": lambda h: (convert_with(h, "deep.json"), "deep.json", "nested too deep"),
    "volumes on a full disk": lambda h: (volumes(h, h.label), "v.csv", "cannot be written", "ENOSPC"),
    "evaluate on a full disk": lambda h: (
        ["evaluate", "--pred", h.label, "--truth", h.label, "--levels", h.levels, "-o", h.root / "m.csv"],
        "m.csv",
        "cannot be written",
        "ENOSPC",
    ),
    "export on a read-only disk": lambda h: (
        ["export", h.ckpt, "--format", "torchscript", "-o", h.root / "m.pt"],
        "m.pt",
        "cannot be written",
        "EROFS",
    ),
    "convert on a full disk": lambda h: (
        ["convert", h.h5, "-o", h.root / "k.ckpt"],
        "k.ckpt",
        "cannot be written",
        "ENOSPC",
    ),
    "label +Inf": lambda h: (volumes(h, h.root / "inf_discs.nii.gz"), "inf_discs.nii.gz", "infinite"),
    "label NaN": lambda h: (volumes(h, h.root / "nan_discs.nii.gz"), "nan_discs.nii.gz", "NaN"),
    "label beyond int32": lambda h: (volumes(h, h.root / "int64_discs.nii.gz"), "int64_discs.nii.gz", "int32"),
    "evaluate truth beyond int32": lambda h: (
        ["evaluate", "--pred", h.root / "int64_discs.nii.gz", "--truth", h.root / "int64_discs.nii.gz"]
        + ["-o", h.root / "m.csv"],
        "int64_discs.nii.gz",
        "int32",
    ),
    "complex-valued image": lambda h: (predict(h, h.root / "complex.nii.gz"), "complex.nii.gz", "complex"),
    "synth --size 100000 100000": lambda h: (
        ["synth", h.root / "phantoms", "--size", "100000", "100000"],
        "--size",
        "DISCNET_MAX_IMAGE_SIDE",
    ),
}
