"""``tfforensics baselines``: grid-search, train and test PRNU, eigenfaces and kNN."""

from __future__ import annotations

import logging

from tfforensics.errors import UserError
from tfforensics.cli._common import (
    add_command, add_legacy, add_out, add_output_args, add_quiet, positive_int, setup_logging,
)

logger = logging.getLogger(__name__)

ACTIONS = ("grid-search", "train", "test")
METHODS = ("prnu", "eigenfaces", "knn")
#: CLI option -> (method, scikit-learn parameter of that method's estimator).
PARAMS = {
    "k": ("knn", "n_neighbors"),
    "pca_variance": ("eigenfaces", "pca__n_components"),
    "C": ("eigenfaces", "svm__C"),
    "levels": ("prnu", "levels"),
    "sigma": ("prnu", "sigma"),
}


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, "baselines",
        help="PRNU, eigenfaces and kNN baselines: grid-search, train, test",
        description=(
            "Baselines of Frank et al. on datasets written by `tfforensics prepare`. grid-search fits every "
            "grid point on the train split and scores it on the val split (the original grids by default; "
            "method options replace a parameter's values), writes OUT/grid_search_METHOD.json after every "
            "point (a re-run continues an interrupted search), then trains the best point and tests it. "
            "train fits one setting (the options, else the best grid point in OUT, else the defaults), saves "
            "OUT/METHOD_DATASET.npz and tests it; test scores a saved model on the test split. PRNU needs "
            "pixel datasets (prepare --raw); eigenfaces and kNN take any encoding."
        ),
        examples="""
            tfforensics baselines grid-search knn --dataset datasets/lsun_raw --dataset datasets/lsun_dct --n-jobs 8 --out results/baselines
            tfforensics baselines grid-search prnu --dataset datasets/lsun_raw --levels 1 2 --out results/baselines
            tfforensics baselines grid-search eigenfaces --dataset datasets/lsun_dct --backend dask --scheduler tcp://10.0.0.5:8786 --out results/baselines
            tfforensics baselines train eigenfaces --dataset datasets/lsun_dct --pca-variance 0.95 --C 0.01 --out results/baselines
            tfforensics baselines test prnu --dataset datasets/celeba_raw --out results/baselines
        """,
    )
    parser.add_argument("action", choices=ACTIONS, help="what to do")
    parser.add_argument("method", choices=METHODS, help="which baseline")
    parser.add_argument("--dataset", "-d", action="append", required=True, metavar="DIR",
                        help="prepared dataset directory; repeat for several (one search / model each)")
    add_out(parser, required=True, detail="folder of results JSON and models")
    parser.add_argument("--n-jobs", "-j", dest="n_jobs", type=int, default=1,
                        help="parallel grid points (joblib; -1: all cores) and kNN query workers (default: 1)")
    add_legacy(parser, "--workers", "n_jobs", means="--n-jobs (joblib's count, -1 for all cores)", type=int)
    parser.add_argument("--backend", choices=["local", "dask"], default="local",
                        help="grid-search: where the points run: local joblib processes (default) or Dask "
                             "(extra tfforensics[dask]; same results and resume)")
    parser.add_argument("--scheduler", metavar="ADDRESS", default=None,
                        help="grid-search --backend dask: scheduler address, e.g. tcp://10.0.0.5:8786 "
                             "(default: a local cluster in this process)")
    params = parser.add_argument_group("method parameters (grid-search: values to search; train: one value)")
    params.add_argument("--k", type=positive_int, nargs="+", help="knn: neighbours (grid: 1, 3, 5, 9, ..., 1025 up to the train size)")
    params.add_argument("--pca-variance", type=float, nargs="+",
                        help="eigenfaces: explained variance kept by the PCA (grid: 0.25 0.5 0.75 0.95)")
    params.add_argument("--C", type=float, nargs="+", help="eigenfaces: LinearSVC C (grid: 1e-4 1e-3 1e-2 1e-1)")
    params.add_argument("--levels", type=positive_int, nargs="+", help="prnu: wavelet levels (grid: 1 2 3 4)")
    params.add_argument("--sigma", type=float, nargs="+", help="prnu: noise std in pixel units (grid: 0.05 ... 0.95)")
    other = parser.add_argument_group("other")
    other.add_argument("--model", metavar="FILE", help="test: model file (default: OUT/METHOD_DATASET.npz)")
    other.add_argument("--no-refit", action="store_true", help="grid-search: do not train and test the best point")
    add_quiet(other)
    add_output_args(parser)
    parser.set_defaults(run=run)


def _method_params(args) -> dict:
    """``{sklearn param: [values]}`` from the options; rejects options of another method."""
    chosen = {}
    for option, (method, name) in PARAMS.items():
        values = getattr(args, option)
        if values is None:
            continue
        flag = "--" + option.replace("_", "-")
        if method != args.method:
            raise UserError(f"{flag} is a {method} parameter; it does not apply to {args.method}.")
        if args.action == "test":
            raise UserError(f"{flag}: `test` uses the parameters stored in the model; drop the option.")
        if args.action == "train" and len(values) != 1:
            raise UserError(f"{flag}: `train` takes one value (got {len(values)}); use grid-search to try several.")
        chosen[name] = values
    return chosen


def _npz_is_ours(path) -> bool:
    """True for a baselines model file: a zip whose entries include the tfforensics header."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return "__header__.npy" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def _check_outputs(args, search) -> None:
    """Before any work: OUT must be a folder we may write in, and a model file is replaced only
    with --overwrite (train) and only when tfforensics wrote it."""
    from pathlib import Path

    from tfforensics.io.outputs import check_writable, claim_file

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is a file; --out takes a folder (results JSON and models).")
    check_writable(out)
    if args.action == "test" or (args.action == "grid-search" and args.no_refit):
        return
    for dataset in args.dataset:
        # a re-run of grid-search refits into its own model file; train replaces one only with --overwrite
        claim_file(search.model_path(out, args.method, dataset), overwrite=args.overwrite or args.action == "grid-search",
                   ours=_npz_is_ours, what="baselines model")


def run(args) -> int:
    from pathlib import Path

    from tfforensics.baselines import search

    setup_logging(args.quiet)
    params = _method_params(args)
    names = [search.dataset_name(d) for d in args.dataset]
    if len(set(names)) != len(names):
        raise UserError(f"datasets {args.dataset} share a directory name; models are named after it, so rename one.")
    if (args.backend != "local" or args.scheduler) and args.action != "grid-search":
        raise UserError("--backend and --scheduler apply to grid-search; drop them for train and test.")
    if args.model and (args.action != "test" or len(args.dataset) != 1):
        raise UserError("--model applies to `test` with one --dataset.")
    for dataset in args.dataset:
        if not Path(dataset).exists():
            raise UserError(f"{dataset}: dataset directory not found; create it with `tfforensics prepare`.")
    _check_outputs(args, search)
    rows = []
    for dataset in args.dataset:
        if args.action == "grid-search":
            rows.append(search.grid_search(args.method, dataset, args.out, grid=params, n_jobs=args.n_jobs,
                                           refit=not args.no_refit, progress=not args.quiet, backend=args.backend,
                                           scheduler=args.scheduler))
        elif args.action == "train":
            single = {name: values[0] for name, values in params.items()}
            rows.append(search.train(args.method, dataset, args.out, params=single or None, n_jobs=args.n_jobs))
        else:
            rows.append(search.test(args.method, dataset, args.out, model=args.model))
    print(search.format_table(rows))
    return 0
