"""``discnet convert``: a Keras model (the paper's released TensorFlow model, or any Keras U-Net) -> a
discnet checkpoint for ``discnet predict`` and fine-tuning with ``train.py model.init_from=...``.

Example:
    discnet convert unet.h5 -o unet.ckpt --input-preset stretched --image-size 512
    discnet convert model.weights.h5 --config model.json -o model.ckpt
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert a Keras model (.h5, .keras, .weights.h5) into a discnet checkpoint",
        description=(
            "Read a Keras model with h5py and its saved JSON config (no TensorFlow needed; Lambda and custom "
            "layers are refused, no code from the file is run) and write a discnet checkpoint. A Keras U-Net "
            "shaped like discnet's becomes a normal U-Net checkpoint (discnet predict, train.py "
            "model.init_from=OUT); other models are written as generic converted models, usable from Python "
            "(discnet.convert.load_converted) and by discnet export. A TensorFlow SavedModel folder needs "
            "TensorFlow installed."
        ),
    )
    parser.add_argument("model", type=Path, metavar="MODEL", help="Keras .h5, .keras, .weights.h5 or SavedModel")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.ckpt", help="checkpoint to write")
    parser.add_argument("--config", type=Path, metavar="JSON", help="model config (model.to_json()) for bare weights")
    parser.add_argument(
        "--input-preset",
        default="stretched",
        metavar="NAME",
        help="how scans are prepared for the model: raw, deleted_blanks, stretched (default: the paper's final "
        "model), augmented",
    )
    parser.add_argument(
        "--input-scale",
        type=float,
        metavar="X",
        help="factor on the prepared intensities (default 1/255: [0, 1]; give 1 for a model trained on 0-255)",
    )
    parser.add_argument(
        "--image-size",
        type=int,
        metavar="N",
        help="side the slices are resized to (default: the model's input side)",
    )
    parser.add_argument("--generic", action="store_true", help="write the generic model even for a U-Net")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from discnet.convert import convert_keras  # torch and h5py only when the verb runs

    done = convert_keras(
        args.model,
        args.output,
        config=args.config,
        input_preset=args.input_preset,
        input_scale=args.input_scale,
        image_size=args.image_size,
        generic=args.generic,
    )
    size = f"image size {done.image_size}" if done.image_size else "no image size"
    if done.net is None:
        print(
            f"{args.model} does not map onto discnet's U-Net ({done.reason}); wrote the generic converted model "
            f"to {done.output} (input preset {done.input['name']}, {size}). Use it from Python with "
            f"discnet.convert.load_converted('{done.output}') or export it with discnet export; discnet predict "
            "and train.py model.init_from need a U-Net-shaped model."
        )
        return 0
    net = done.net
    print(
        f"converted {args.model} into a discnet U-Net (base_filters {net['base_filters']}, depth {net['depth']}, "
        f"{net['padding']} padding, dilation {net['dilation']}, norm {net['norm']}, dropout {net['dropout']:g}, "
        f"{net['num_classes']} classes, Keras output {done.head}); wrote {done.output} "
        f"(input preset {done.input['name']}, {size})"
    )
    for note in done.notes:
        print(f"note: {note}")
    if net["in_channels"] != 1:
        print(f"note: the model takes {net['in_channels']} input channels; discnet's slices have one")
    print(f"predict:   discnet predict --ckpt {done.output} SCANS --out-dir OUT_DIR")
    print(f"fine-tune: python train.py data=manifest data.manifest=subjects.csv {' '.join(done.train_overrides())}")
    return 0
