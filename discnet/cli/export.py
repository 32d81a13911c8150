"""``discnet export``: a checkpoint's network as TorchScript or ONNX, for use without discnet.

Example:
    discnet export runs/a/checkpoints/best.ckpt --format onnx -o unet.onnx
    discnet export converted.ckpt --format torchscript -o unet.pt --probabilities
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a checkpoint's network to TorchScript or ONNX",
        description=(
            "Write the network of a trained or converted checkpoint as TorchScript (torch.jit.load) or ONNX "
            "(onnxruntime; needs the onnx extra: pip install 'discnet[onnx]'). Input: N x 1 x H x W float32 "
            "slices prepared as the checkpoint records (input preset, image size); output: logits "
            "N x C x H' x W' (softmax over channels, channel 0 = background) or, with --probabilities, "
            "probabilities. The file is loaded back and checked against PyTorch."
        ),
    )
    parser.add_argument("checkpoint", type=Path, metavar="CKPT", help="checkpoint (discnet train or convert)")
    parser.add_argument("--format", choices=["torchscript", "onnx"], required=True, help="export format")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="FILE", help="file to write")
    parser.add_argument(
        "--image-size", type=int, metavar="N", help="side of the check input (default: the checkpoint's image size)"
    )
    parser.add_argument("--probabilities", action="store_true", help="export softmax probabilities, not logits")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from discnet.convert.export import export_network  # torch only when the verb runs
    from discnet.errors import InputError

    if args.image_size is not None and args.image_size < 8:
        raise InputError(None, f"--image-size {args.image_size} is too small", "give the size the model works at")
    done = export_network(
        args.checkpoint, args.output, args.format, image_size=args.image_size, probabilities=args.probabilities
    )
    shape = " x ".join(str(s) for s in done.input_shape)
    check = (
        f"max difference to PyTorch {done.max_difference:.2g}"
        if done.max_difference is not None
        else "not checked (onnxruntime not installed)"
    )
    print(f"wrote {done.path} ({args.format}; checked on input {shape}, output '{done.output}'; {check})")
    return 0
