"""Argument groups shared by sub-commands, so flags are spelled the same everywhere."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import textwrap

#: Help text of --overwrite, the same in every command.
OVERWRITE_HELP = ("replace a previous tfforensics output only (never a folder or file tfforensics did not "
                  "write, nor a source)")


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one ``tfforensics: error: ...`` line (exit status 2).

    It also merges a positional OUT (:func:`add_out`) into ``--out``, so ``args.out`` is the one
    output whichever way it was given.
    """

    def error(self, message):
        command = self.prog.split(" ", 1)[1] if " " in self.prog else ""
        where = f"{command}: " if command else ""
        self.exit(2, f"tfforensics: error: {where}{message} (see `{self.prog} --help`)\n")

    def parse_known_args(self, args=None, namespace=None):
        namespace, rest = super().parse_known_args(args, namespace)
        if hasattr(namespace, _OUT_POSITIONAL):
            positional = getattr(namespace, _OUT_POSITIONAL)
            delattr(namespace, _OUT_POSITIONAL)
            if positional is not None and namespace.out is not None and namespace.out != positional:
                self.error(f"OUT given twice ({positional} and --out {namespace.out}); give one of them")
            namespace.out = positional if positional is not None else namespace.out
            if namespace.out is None and getattr(self, "_out_required", False):
                self.error("the following arguments are required: OUT (or --out OUT)")
        for action in self._actions:  # a required shared flag may come in one of its hidden spellings
            if getattr(action, "required_shared", False) and getattr(namespace, action.dest, None) is None:
                self.error(f"the following arguments are required: {action.option_strings[0]}")
        return namespace, rest


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


class ListAction(argparse.Action):
    """A list option: values separated by spaces or commas (``a b``, ``a,b`` and ``a, b`` alike)."""

    def __init__(self, option_strings, dest, nargs="+", item_type=None, **kwargs):
        super().__init__(option_strings, dest, nargs=nargs, **kwargs)
        self.item_type = item_type  # applied after the split (argparse's `type` would see "a,b")

    def __call__(self, parser, namespace, values, option_string=None):
        items = [values] if isinstance(values, str) else values
        split = [part.strip() for item in items for part in str(item).split(",") if part.strip()]
        if self.item_type is not None:
            try:
                split = [self.item_type(part) for part in split]
            except (TypeError, ValueError, argparse.ArgumentTypeError) as error:
                parser.error(f"argument {option_string}: {error}")
        setattr(namespace, self.dest, split)


@dataclasses.dataclass(frozen=True)
class Flag:
    """One shared option: its spellings, where it lands (``dest``), what it means (``help``).

    ``hidden`` are older spellings (the originals' or earlier tfforensics') that still parse,
    with the same meaning, but are not listed in ``--help``.
    """

    names: tuple
    dest: str
    help: str
    kwargs: dict = dataclasses.field(default_factory=dict)
    hidden: tuple = ()


#: The one vocabulary: every sub-command that offers one of these options adds it through
#: :func:`add_flag`, so a flag has one spelling and one meaning everywhere (docs/cli.md).
FLAGS = {flag.dest: flag for flag in (
    Flag(("--out", "--output", "-o"), "out", "where the command writes", {"metavar": "OUT"}),
    Flag(("--overwrite",), "overwrite", OVERWRITE_HELP, {"action": "store_true"}),
    Flag(("--seed",), "seed", "random seed, for repeatable runs", {"type": int}),
    Flag(("--quiet", "-q"), "quiet", "no progress bars, warnings only", {"action": "store_true"}),
    Flag(("--workers",), "workers", "images worked on in parallel (processes, or threads where the work "
         "releases the GIL)", {"type": positive_int, "metavar": "N"}),
    Flag(("--limit",), "limit", "at most the first N images of each folder, in sorted file-name order",
         {"type": positive_int, "metavar": "N"}),
    Flag(("--size",), "size", "side of the square images, in pixels", {"type": positive_int, "metavar": "PIXELS"},
         hidden=("--image-size", "--image_size")),
    Flag(("--batch-size", "-b"), "batch_size", "images per batch", {"type": positive_int, "metavar": "N"},
         hidden=("--batch_size",)),
    Flag(("--epochs", "-e"), "epochs", "passes over the training data", {"type": positive_int}),
    Flag(("--lr",), "lr", "Adam learning rate", {"type": float}),
    Flag(("--early-stopping",), "early_stopping", "stop after PATIENCE epochs without a lower val loss; "
         "0 turns it off", {"type": nonnegative_int, "metavar": "PATIENCE"}, hidden=("--early_stopping",)),
    Flag(("--split",), "split", "fractions of each class for the train, val and test splits",
         {"type": fraction, "nargs": 3, "metavar": ("TRAIN", "VAL", "TEST")}),
    Flag(("--subset",), "subset", "which split of a dataset to score", {"choices": ["train", "val", "test"]}),
    Flag(("--filter",), "filter", "PIL resampling filter of the resize", {"metavar": "FILTER"}),
    Flag(("--color", "-c"), "color", "keep the three RGB channels", {"action": "store_true"}),
    Flag(("--class-names",), "class_names", "class names in label order (spaces or commas between them)",
         {"action": ListAction, "metavar": "NAME"}),
    Flag(("--classes",), "classes", "class folders to use (spaces or commas between them)",
         {"action": ListAction, "metavar": "NAME"}),
    Flag(("--real-class",), "real_class", "name or label of the real class (the others count as fake)", {}),
    Flag(("--augment",), "augment", "augment the training images on the fly (tfforensics.data.augment): "
         "CNNDetection's blur_jpg_prob=P (Gaussian blur sigma ~ U[0,3] and JPEG quality ~ U[30,100], each with "
         "probability P; 0.1 or 0.5), or KEY=VALUE,... of blur_prob, blur_sigma=LO:HI, jpeg_prob, "
         "jpeg_quality=LO:HI, resize_prob, resize_scale=LO:HI, noise_prob, noise_sigma=LO:HI (0..255); none is off",
         {"metavar": "SPEC"}),
    Flag(("--compat",), "compat", "behave as an original tool did, for its data (see docs/cli.md)", {}),
)}

def add_flag(parser, dest: str, *, default=None, default_text=None, detail: str = "", **overrides):
    """Add the shared option ``dest`` (a key of :data:`FLAGS`) to ``parser`` (or an argument group).

    ``detail`` adds what the option does in this command after the shared meaning;
    ``default_text`` words the default for ``--help`` (else ``default`` itself, when set).
    """
    flag = FLAGS[dest]
    shown = default_text if default_text is not None else (default if default not in (None, False) else None)
    if isinstance(shown, (list, tuple)):
        shown = " ".join(map(str, shown))
    help_text = flag.help + (f": {detail}" if detail else "") + (f" (default: {shown})" if shown is not None else "")
    kwargs = {**flag.kwargs, **overrides}
    required = bool(kwargs.pop("required", False))
    if required and not flag.hidden:
        kwargs["required"] = True
    action = parser.add_argument(*flag.names, dest=flag.dest, default=default, help=help_text, **kwargs)
    action.shared = dest
    action.required_shared = required and bool(flag.hidden)  # checked by Parser after the parse
    hidden = {key: value for key, value in kwargs.items() if key not in ("metavar", "required", "choices")}
    for spelling in flag.hidden:
        parser.add_argument(spelling, dest=flag.dest, help=argparse.SUPPRESS, **hidden).shared = dest
    return action


def add_legacy(parser, spelling: str, dest: str, *, means: str, **kwargs):
    """A hidden older spelling of this command's own option ``dest``; ``means`` says what it stands
    for (docs/cli.md lists them). Shared flags bring their hidden spellings themselves (:class:`Flag`)."""
    action = parser.add_argument(spelling, dest=dest, help=argparse.SUPPRESS, **kwargs)
    action.legacy = means
    return action


_OUT_POSITIONAL = "_out_positional"


def add_out(parser, *, positional: bool = False, required: bool = False, default=None, default_text=None,
            detail: str = ""):
    """The output: ``--out OUT`` everywhere; ``positional`` also takes it as the positional OUT
    (the originals' habit), merged into ``args.out`` by :class:`Parser`."""
    if positional:
        parser.add_argument(_OUT_POSITIONAL, metavar="OUT", nargs="?", default=None,
                            help=f"{FLAGS['out'].help}: {detail} (or --out OUT)" if detail else None)
        parser._out_required = required
        return add_flag(parser, "out", default=default, default_text=default_text,
                        detail=(detail or "") + " (the same as the positional OUT)")
    return add_flag(parser, "out", default=default, default_text=default_text, detail=detail, required=required)


def add_color_args(parser, *, default_color: bool) -> None:
    """``--color`` / ``--grayscale``: RGB or luma; the command's default named in the group title.

    ``args.color`` stays None when neither is given (see :func:`color_of`), so that a mode
    such as ``prepare --compat gandct`` can tell an explicit ``--grayscale`` from the default.
    """
    group = parser.add_argument_group(f"colour (default: {'RGB' if default_color else 'grayscale'})")
    exclusive = group.add_mutually_exclusive_group()
    add_flag(exclusive, "color", default=None)
    action = exclusive.add_argument("--grayscale", "-g", dest="color", action="store_false",
                                    help="PIL's luma (ITU-R 601-2), one channel")
    action.shared = "color"


def color_of(args, default: bool) -> bool:
    """``--color`` / ``--grayscale`` as given, else the command's default."""
    return default if args.color is None else bool(args.color)


def add_filter(parser, *, default: str, detail: str = "", choices=None) -> None:
    """``--filter``: one of the toolkit's resize filters (``io.images.RESIZE_FILTERS``, or those of them
    the command offers)."""
    from tfforensics.io.images import RESIZE_FILTERS

    add_flag(parser, "filter", default=default, detail=detail, choices=sorted(choices or RESIZE_FILTERS))


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
        add_flag(group, "overwrite", default=False)


def add_runtime_args(parser, *, workers: bool = False, seed: bool = True, quiet: bool = True,
                     workers_detail: str = "") -> None:
    group = parser.add_argument_group("runtime")
    if seed:
        add_flag(group, "seed", default=0)
    if workers:
        add_flag(group, "workers", default_text=f"all cores, here {os.cpu_count()}", detail=workers_detail)
    if quiet:
        add_quiet(group)


def add_quiet(parser, detail: str = "") -> None:
    add_flag(parser, "quiet", default=False, detail=detail)


def add_skip_bad(parser) -> None:
    """Options about images that cannot be used: ``--skip-bad`` and ``--max-pixels``."""
    parser.add_argument(
        "--skip-bad", action="store_true",
        help="skip unreadable or mismatched images, list them, and go on (default: stop at the first); "
             "a class left with no train images still stops the run",
    )
    add_max_pixels(parser)


def add_augment(parser, detail: str) -> None:
    """``--augment SPEC``: training-time augmentation (:mod:`tfforensics.data.augment`); ``detail``
    says which images the command augments."""
    add_flag(parser, "augment", detail=detail)


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
