"""Argument groups shared by sub-commands, so flags are spelled the same everywhere."""

from __future__ import annotations

import argparse
import logging
import math
import os
import textwrap

#: Help text of --overwrite, the same in every command.
OVERWRITE_HELP = ("replace a previous tfforensics output only (never a folder or file tfforensics did not "
                  "write, nor a source)")


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one ``tfforensics: error: ...`` line (exit status 2)."""

    def error(self, message):
        command = self.prog.split(" ", 1)[1] if " " in self.prog else ""
        where = f"{command}: " if command else ""
        self.exit(2, f"tfforensics: error: {where}{message} (see `{self.prog} --help`)\n")


def _int_at_least(low: int):
    """An argparse type: a whole number >= ``low``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {low}, got {text!r}") from None
        return value
    return parse


#: argparse types: an integer >= 1, an integer >= 0.
positive_int = _int_at_least(1)
nonnegative_int = _int_at_least(0)


def fraction(text: str) -> float:
    """argparse type: a finite number between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return value


def add_command(subparsers, name: str, *, help: str, description: str, examples: str):
    """A sub-command parser whose ``--help`` ends with worked examples."""
    return subparsers.add_parser(
        name,
        help=help,
        description=description,
        epilog="examples:\n" + textwrap.indent(textwrap.dedent(examples).strip(), "  "),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_output_args(parser, *, overwrite: bool = True) -> None:
    group = parser.add_argument_group("output")
    if overwrite:
        group.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)


def add_runtime_args(parser, *, workers: bool = False, seed: bool = True) -> None:
    group = parser.add_argument_group("runtime")
    if seed:
        group.add_argument("--seed", type=int, default=0, help="random seed, for repeatable runs (default: 0)")
    if workers:
        group.add_argument(
            "--workers", type=positive_int, default=None,
            help=f"worker processes (default: all cores, here {os.cpu_count()})",
        )
    group.add_argument("--quiet", "-q", action="store_true", help="no progress bars, warnings only")


def add_skip_bad(parser) -> None:
    """Options about images that cannot be used: ``--skip-bad`` and ``--max-pixels``."""
    parser.add_argument(
        "--skip-bad", action="store_true",
        help="skip unreadable or mismatched images, list them, and go on (default: stop at the first); "
             "a class left with no train images still stops the run",
    )
    add_max_pixels(parser)


def add_augment(parser) -> None:
    """``--augment SPEC``: training-time augmentation of pixel records (:mod:`tfforensics.data.augment`)."""
    parser.add_argument(
        "--augment", default=None, metavar="SPEC",
        help="augment the train split's pixels on the fly (records of `prepare --layout pixels`): "
             "CNNDetection's blur_jpg_prob=P (Gaussian blur sigma ~ U[0,3] and JPEG quality ~ U[30,100], each "
             "with probability P; 0.1 or 0.5), or KEY=VALUE,... of blur_prob, blur_sigma=LO:HI, jpeg_prob, "
             "jpeg_quality=LO:HI, resize_prob, resize_scale=LO:HI, noise_prob, noise_sigma=LO:HI (0..255)",
    )


def augmentation_of(args):
    """The :class:`~tfforensics.data.augment.Augmentation` of ``--augment`` (None without the flag)."""
    from tfforensics.data.augment import Augmentation

    return Augmentation.parse(args.augment) if args.augment is not None else None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer. Received: {text!r}")
    return value


def add_max_pixels(parser) -> None:
    """``--max-pixels``: the image-bomb limit (``cli.main.launch`` applies it for the command)."""
    from tfforensics.io.images import DEFAULT_MAX_PIXELS

    parser.add_argument(
        "--max-pixels", type=_positive_int, default=None, metavar="N",
        help=f"refuse images with more than N pixels, a guard against image bombs "
             f"(default: {DEFAULT_MAX_PIXELS}, i.e. 8192x8192)",
    )


def setup_logging(quiet: bool = False) -> None:
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s")
