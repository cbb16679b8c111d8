"""Root parser of ``tfforensics``: the COMMANDS list, dispatch, and clean error lines."""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
import traceback

from tfforensics import __version__
from tfforensics.errors import UserError

#: Sub-command modules in ``tfforensics/cli/``, in the order ``--help`` lists them. A module
#: registers its own command name (``mean_var`` registers ``mean-var``).
COMMANDS = [
    "prepare", "crop", "resize", "split", "perturb", "stats", "mean_var",
    "train", "test", "classify", "evaluate", "convert", "weights", "baselines", "attribute", "img2grad", "lgrad",
    "gan", "regularize", "reproduce", "report",
]


def build_parser() -> argparse.ArgumentParser:
    from tfforensics.cli._common import Parser

    parser = Parser(
        prog="tfforensics",
        description="Detect and attribute GAN-generated images: prepare data, train detectors, run baselines.",
        epilog="Run `tfforensics COMMAND --help` for the options and examples of a command.",
    )
    parser.add_argument("--version", action="version", version=f"tfforensics {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"tfforensics.cli.{name}").add_parser(subparsers)
    return parser


def launch(argv=None) -> int:
    """Console-script entry point; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 0
    args.command_line = "tfforensics " + " ".join(shlex.quote(a) for a in argv)
    from tfforensics.io.images import set_max_pixels

    set_max_pixels(getattr(args, "max_pixels", None))  # --max-pixels, or the default again
    try:
        return int(args.run(args) or 0)
    except UserError as error:
        # Expected failures: one line naming the file and the fix, no traceback.
        print(f"tfforensics: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        # The system refused (disk full, permission denied, a path that vanished): not a bug of
        # ours, so one line, with the file the system named.
        where = f"{error.filename}: " if error.filename else ""
        print(f"tfforensics: error: {where}{error.strerror or error}; check the path, its permissions and "
              "the free disk space.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tfforensics: interrupted; run the same command again to continue.", file=sys.stderr)
        return 130
    except Exception:  # noqa: BLE001 - anything else is a bug: keep its traceback
        traceback.print_exc()
        print(
            f"tfforensics: internal error (a bug in tfforensics {__version__}); please report it "
            "with the command line and the traceback above.",
            file=sys.stderr,
        )
        return 1
