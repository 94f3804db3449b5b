"""``rvm-render weights``: which weights a run would use, and why.

Walks the same lookup as every command (:func:`~rvm_render.engine.weights.find_weights`):
``--weights``, ``$RVM_RENDER_WEIGHTS``, ``weights`` in config.yaml, the user cache, then the
weights shipped with rvm_render; prints each place with what it held, marks the one used, and
identifies the chosen weights: variant, refiner and SHA-256 (:func:`~rvm_render.engine.weights.identify_weights`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rvm_render.engine.weights import WEIGHTS_ENV, find_weights, identify_weights, packaged_weights_dir

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "weights",
        help="show which model weights a run would use and why",
        description=(
            "Show the weights a render would use: the first of --weights, $RVM_RENDER_WEIGHTS, 'weights'\n"
            "in config.yaml ($RVM_RENDER_CONFIG or ./config.yaml), the user cache dir, and the weights\n"
            "shipped with rvm_render (the published RVM MobileNetV3, TensorFlow.js uint8, GPL-3.0)."
        ),
        epilog=(
            "Examples:\n"
            "  rvm-render weights\n"
            "  rvm-render weights --weights ~/models/rvm_resnet50.pth"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--weights", type=Path, default=None, help="weights file or tfjs model folder to check")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    lookup = find_weights(args.weights)
    loaded = identify_weights(lookup.path)
    print(f"weights: {lookup.path}")
    print(f"  RVM {loaded.variant}, {loaded.refiner.replace('_', ' ')} refiner, sha256 {loaded.sha256}")
    if lookup.path == packaged_weights_dir():
        print(f"  shipped with rvm_render; provenance and licence: {lookup.path / 'PROVENANCE.md'}")
    print("why (looked in this order, the first that names weights wins):")
    width = max(len(place.name) for place in lookup.places)
    for number, place in enumerate(lookup.places, start=1):
        used = "  <- used" if place.path == lookup.path else ""
        print(f"  {number}. {place.name:<{width}}  {place.finding}{used}")
    if lookup.source != "--weights":
        print(f"Override with --weights PATH or ${WEIGHTS_ENV} (an official rvm_mobilenetv3.pth / rvm_resnet50.pth,")
        print("or a TensorFlow.js model.json folder).")
    return 0
