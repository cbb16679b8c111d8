"""Hostile outputs and options (issue 13, write side): nothing a user owns is ever lost.

Every case runs the CLI in-process (``launch``) as a new user would and checks the exit status,
the one ``tfforensics: error: ...`` line (no traceback), and that no user file changed: the
whole tree under the test folder is hashed before and after.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import write_folder
from tfforensics.cli.main import launch
from tfforensics.io.outputs import MARKER, foreign_files, read_marker


# ----------------------------------------------------------------------------- helpers

def tree(root) -> dict:
    """``{relative path: content hash | link target | 'dir'}`` of everything under ``root``."""
    root = Path(root)
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            out[rel] = "-> " + os.readlink(path)
        elif path.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def cli(argv, capsys) -> tuple[int, str]:
    """Exit status and stderr of ``tfforensics argv`` run in this process."""
    capsys.readouterr()
    try:
        code = launch([str(a) for a in argv])
    except SystemExit as error:  # argparse
        code = error.code
    return code, capsys.readouterr().err


def refused(argv, capsys, root, *fragments) -> str:
    """Run ``argv``: exit 2, one error line holding every fragment, nothing under ``root`` changed."""
    before = tree(root)
    code, err = cli(argv, capsys)
    errors = [line for line in err.splitlines() if line.startswith("tfforensics: error:")]
    assert code == 2, err
    assert "Traceback" not in err and len(errors) == 1, err
    assert err.strip().splitlines()[-1] == errors[0]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert tree(root) == before, "a file changed"
    return errors[0]


def make_classes(root, count: int = 6, size: int = 16, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for name in ("a", "b"):
        write_folder(root / name, rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8))
    return root


@pytest.fixture
def src(tmp_path):
    return make_classes(tmp_path / "src")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny dataset (16 px, gray DCT) and a log2 model trained on it for one epoch."""
    from tfforensics.data import Encoding, prepare
    from tfforensics.training.fit import train

    root = tmp_path_factory.mktemp("trained")
    images = make_classes(root / "images", count=12, seed=1)
    dataset = prepare(images, root / "dataset", Encoding(log=True), progress=False).root
    result = train("log2", dataset, out=root / "run", epochs=1, early_stopping=0, verbose=0)
    return {"images": images, "dataset": dataset, "run": result.run_dir}


#: Folder commands: argv for (SRC, OUT).
FOLDER_COMMANDS = {
    "prepare": lambda s, o: ["prepare", s, o, "-q"],
    "crop": lambda s, o: ["crop", "lsun", s, o, "--size", "8", "-q"],
    "resize": lambda s, o: ["resize", s, o, "--size", "8", "-q"],
    "split": lambda s, o: ["split", s, o, "-q"],
    "perturb": lambda s, o: ["perturb", "blur", s, o, "-q"],
    "stats": lambda s, o: ["stats", s, "-o", o, "--format", "png", "-q"],
    "mean-var": lambda s, o: ["mean-var", s, "-o", o, "-q"],
}


# ----------------------------------------------------------------------------- item 1: ownership

@pytest.mark.parametrize("command", FOLDER_COMMANDS)
def test_out_is_src_is_refused(command, src, capsys):
    refused(FOLDER_COMMANDS[command](src, src) + ["--overwrite"], capsys, src.parent, str(src))


@pytest.mark.parametrize("command", FOLDER_COMMANDS)
def test_out_is_a_parent_of_src_is_refused(command, tmp_path, capsys):
    images = make_classes(tmp_path / "parent" / "images")
    line = refused(FOLDER_COMMANDS[command](images, tmp_path / "parent") + ["--overwrite"], capsys, tmp_path)
    assert "parent" in line and ("contains the source" in line or "is the source" in line)


@pytest.mark.parametrize("command", FOLDER_COMMANDS)
def test_out_inside_src_is_refused_up_front(command, src, capsys):
    refused(FOLDER_COMMANDS[command](src, src / "out"), capsys, src.parent, "inside the source")


@pytest.mark.parametrize("command", [c for c in FOLDER_COMMANDS if c != "mean-var"])
def test_user_folder_is_not_deleted_by_overwrite(command, src, tmp_path, capsys):
    user = tmp_path / "u"
    user.mkdir()
    (user / "notes.txt").write_text("my notes")
    refused(FOLDER_COMMANDS[command](src, user), capsys, tmp_path, str(user), "--overwrite")
    refused(FOLDER_COMMANDS[command](src, user) + ["--overwrite"], capsys, tmp_path, str(user),
            "not a tfforensics output")


def test_mean_var_never_replaces_a_users_files(src, tmp_path, capsys):
    user = tmp_path / "u"
    user.mkdir()
    np.save(user / "mean.npy", np.zeros(3))
    (user / "notes.txt").write_text("my notes")
    refused(["mean-var", src, "-o", user, "-q"], capsys, tmp_path, "mean.npy", "--overwrite")
    refused(["mean-var", src, "-o", user, "-q", "--overwrite"], capsys, tmp_path, "mean.npy",
            "not written by `tfforensics mean-var`")
    other = tmp_path / "mv"
    assert cli(["mean-var", src, "-o", other, "-q"], capsys)[0] == 0
    refused(["mean-var", src, "-o", other, "-q"], capsys, tmp_path, "--overwrite")
    assert cli(["mean-var", src, "-o", other, "-q", "--overwrite"], capsys)[0] == 0


@pytest.mark.parametrize("command", ["prepare", "crop", "stats"])
def test_overwrite_replaces_our_output_but_not_a_file_a_user_added(command, src, tmp_path, capsys):
    out = tmp_path / "out"
    argv = FOLDER_COMMANDS[command](src, out)
    assert cli(argv, capsys)[0] == 0
    marker = read_marker(out)
    assert marker["producer"] == "tfforensics" and marker["files"] and not foreign_files(out)
    (out / "notes.txt").write_text("added by the user")
    other = argv + ["--log"] if command == "prepare" else argv  # prepare reuses an output of the same options
    line = refused(other + ["--overwrite"], capsys, tmp_path, "notes.txt", "did not write")
    assert str(out) in line
    (out / "notes.txt").unlink()
    assert cli(other + ["--overwrite"], capsys)[0] == 0 and read_marker(out)["files"] == marker["files"]
    assert not [p for p in tmp_path.iterdir() if ".incomplete-" in p.name]


def test_out_is_a_file_or_under_a_file(src, tmp_path, capsys):
    (tmp_path / "file.txt").write_text("a file")
    for command in FOLDER_COMMANDS:
        refused(FOLDER_COMMANDS[command](src, tmp_path / "file.txt"), capsys, tmp_path, "file.txt")
        refused(FOLDER_COMMANDS[command](src, tmp_path / "file.txt" / "out"), capsys, tmp_path, "is a file")


def test_out_parent_not_writable(src, tmp_path, capsys):
    if os.geteuid() == 0:  # root may write in any folder of its own; /proc/self is not writable even for root
        assert not os.access("/proc/self", os.W_OK)
        for command in FOLDER_COMMANDS:
            refused(FOLDER_COMMANDS[command](src, "/proc/self/out"), capsys, tmp_path, "permission denied")
        return
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        for command in FOLDER_COMMANDS:
            refused(FOLDER_COMMANDS[command](src, locked / "out"), capsys, tmp_path, "permission denied")
    finally:
        locked.chmod(0o700)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder, so an unreadable one cannot be made here")
def test_unreadable_class_folder_is_named(src, tmp_path, capsys):
    (src / "b").chmod(0)
    try:
        refused(["prepare", src, tmp_path / "out", "-q"], capsys, tmp_path, "permission denied", str(src / "b"))
    finally:
        (src / "b").chmod(0o755)


# ----------------------------------------------------------------------------- item 6: options

@pytest.mark.parametrize("option", [["--shards", "-3"], ["--shards", "0"], ["--split", "nan", "0", "0"],
                                    ["--split", "0.5", "inf", "0"], ["--workers", "0"], ["--sizes", "-1", "1", "1"]])
def test_bad_prepare_options_are_one_line_and_leave_nothing(option, src, tmp_path, capsys):
    refused(["prepare", src, tmp_path / "out", "-q", *option], capsys, tmp_path, option[0])
    assert not (tmp_path / "out").exists()


def test_bad_fractions_through_the_library_are_one_line(src, tmp_path, capsys):
    from tfforensics.data import prepare
    from tfforensics.errors import UserError

    with pytest.raises(UserError, match="--split"):
        prepare(src, tmp_path / "out", fractions=(float("nan"), 0, 0), progress=False)
    with pytest.raises(UserError, match="--shards"):
        prepare(src, tmp_path / "out", shards=-3, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


@pytest.mark.parametrize("argv", [["test", "M", "D", "-b", "0"], ["test", "M", "D", "-b", "-3"],
                                  ["classify", "M", "D", "--size", "-2"], ["classify", "M", "D", "--size", "0"],
                                  ["classify", "M", "D", "-b", "0"], ["train", "log2", "D", "-e", "0"],
                                  ["gan", "train", "nearest", "OUT", "--steps", "0"],
                                  ["img2grad", "S", "O", "--weights", "W", "--batch-size", "-1"]])
def test_bad_counts_are_one_line(argv, tmp_path, capsys):
    refused(argv, capsys, tmp_path, "expected a whole number >= 1")


# ----------------------------------------------------------------------------- item 3: existing files

def test_train_out_file_is_refused(trained, tmp_path, capsys):
    target = tmp_path / "model.txt"
    target.write_text("not a folder")
    refused(["train", "log2", trained["dataset"], "--out", target, "-e", "1", "-q"], capsys, tmp_path,
            "model.txt", "is a file")


def test_train_overwrite_keeps_a_users_file(trained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained["run"], run, symlinks=True)
    refused(["train", "log2", trained["dataset"], "--out", run, "-e", "1", "-q"], capsys, tmp_path, "--overwrite")
    (run / "notes.txt").write_text("my notes")
    refused(["train", "log2", trained["dataset"], "--out", run, "-e", "1", "-q", "--overwrite"], capsys, tmp_path,
            "notes.txt")


def test_test_out_never_overwrites_silently(trained, tmp_path, capsys):
    out = tmp_path / "results"
    out.mkdir()
    (out / "metrics.json").write_text('{"mine": 1}')
    argv = ["test", trained["run"], trained["dataset"], "--out", out, "-q", "--no-plots"]
    refused(argv, capsys, tmp_path, "metrics.json", "--overwrite")
    refused(argv + ["--overwrite"], capsys, tmp_path, "metrics.json", "not written by `tfforensics test`")
    (tmp_path / "file").write_text("x")
    refused(["test", trained["run"], trained["dataset"], "--out", tmp_path / "file", "-q"], capsys, tmp_path, "is a file")
    fresh = tmp_path / "fresh"
    assert cli(["test", trained["run"], trained["dataset"], "--out", fresh, "-q", "--no-plots"], capsys)[0] == 0
    refused(["test", trained["run"], trained["dataset"], "--out", fresh, "-q", "--no-plots"], capsys, tmp_path,
            "--overwrite")
    assert cli(["test", trained["run"], trained["dataset"], "--out", fresh, "-q", "--no-plots", "--overwrite"],
               capsys)[0] == 0
    assert read_marker(fresh)["command"] == "test" and not foreign_files(fresh)


def test_classify_csv_is_checked_before_the_work(trained, tmp_path, capsys):
    images = trained["images"] / "a"
    refused(["classify", trained["run"], images, "--csv", tmp_path, "-q"], capsys, tmp_path, "is a folder")
    user = tmp_path / "scores.csv"
    user.write_text("my,own,table\n")
    refused(["classify", trained["run"], images, "--csv", user, "-q"], capsys, tmp_path, "--overwrite")
    refused(["classify", trained["run"], images, "--csv", user, "-q", "--overwrite"], capsys, tmp_path,
            "not a classify CSV that tfforensics wrote")
    ours = tmp_path / "ours.csv"
    assert cli(["classify", trained["run"], images, "--csv", ours, "-q"], capsys)[0] == 0
    refused(["classify", trained["run"], images, "--csv", ours, "-q"], capsys, tmp_path, "--overwrite")
    assert cli(["classify", trained["run"], images, "--csv", ours, "-q", "--overwrite"], capsys)[0] == 0
    refused(["classify", trained["run"], tmp_path / "missing", "-q"], capsys, tmp_path, "missing", "not found")


def test_baselines_train_does_not_replace_a_model_silently(trained, tmp_path, capsys):
    out = tmp_path / "baselines"
    argv = ["baselines", "train", "knn", "--dataset", trained["dataset"], "--out", out, "--k", "1", "-q"]
    assert cli(argv, capsys)[0] == 0
    refused(argv, capsys, tmp_path, ".npz", "--overwrite")
    assert cli(argv + ["--overwrite"], capsys)[0] == 0
    model = next(out.glob("*.npz"))
    model.write_bytes(b"my own file")
    refused(argv + ["--overwrite"], capsys, tmp_path, "not a baselines model that tfforensics wrote")


def test_baselines_results_file_edited_is_one_line(trained, tmp_path, capsys):
    out = tmp_path / "baselines"
    out.mkdir()
    (out / "grid_search_knn.json").write_text(json.dumps({"version": 1, "runs": [], "datasets": []}))
    refused(["baselines", "grid-search", "knn", "--dataset", trained["dataset"], "--out", out, "--k", "1", "-q"],
            capsys, tmp_path, "grid_search_knn.json", "'datasets'")


# ----------------------------------------------------------------------------- item 7: --skip-bad

def test_skip_bad_that_empties_a_class_stops(tmp_path, capsys, caplog):
    images = tmp_path / "images"
    write_folder(images / "a", np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8))
    (images / "b").mkdir()
    for i in range(4):
        (images / "b" / f"{i}.png").write_bytes(b"not an image")
    refused(["prepare", images, tmp_path / "out", "-q", "--skip-bad"], capsys, tmp_path, "class 'b'", "--skip-bad")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"]


# ----------------------------------------------------------------------------- item 6 / 8: resume, leftovers

def _interrupt_after(monkeypatch, shards: int):
    import importlib

    module = importlib.import_module("tfforensics.data.prepare")
    real, calls = module._write_task, []

    def interrupted(task, state, tick):
        if len(calls) == shards:
            raise KeyboardInterrupt
        calls.append(task["file"])
        return real(task, state, tick)

    monkeypatch.setattr(module, "_write_task", interrupted)


def test_npy_resume_after_an_interruption(src, tmp_path, monkeypatch, capsys):
    """The state a SIGKILL leaves (finished shards' markers on disk) is continued, not a TypeError."""
    from tfforensics.data import as_numpy, prepare

    _interrupt_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        prepare(src, tmp_path / "out", format="npy", shards=3, workers=1, progress=False)
    monkeypatch.undo()
    assert cli(["prepare", src, tmp_path / "out", "--format", "npy", "--shards", "3", "--workers", "1", "-q"],
               capsys)[0] == 0
    fresh = prepare(src, tmp_path / "fresh", format="npy", shards=3, workers=1, progress=False)
    np.testing.assert_array_equal(as_numpy(tmp_path / "out", "train")[1], as_numpy(fresh, "train")[1])


def test_killed_shard_and_stale_staging_folders_are_cleaned(src, tmp_path, monkeypatch, caplog):
    import logging

    from tfforensics.data import Encoding, prepare

    caplog.set_level(logging.INFO)
    _interrupt_after(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):  # a run with other options, interrupted
        prepare(src, tmp_path / "out", Encoding(log=True), shards=3, workers=1, progress=False)
    monkeypatch.undo()
    _interrupt_after(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):  # the run that will be finished, interrupted too
        prepare(src, tmp_path / "out", shards=3, workers=1, progress=False)
    assert "other inputs or options" in caplog.text  # the first staging folder went
    (work,) = [p for p in tmp_path.iterdir() if p.name.startswith(".out.incomplete-")]
    (work / "train" / ".incomplete-killed.tfrecord").write_bytes(b"half a shard")  # what a SIGKILL leaves
    monkeypatch.undo()
    prepare(src, tmp_path / "out", shards=3, workers=1, progress=False)
    assert not [p for p in (tmp_path / "out").rglob("*") if ".incomplete-" in p.name]
    assert not [p for p in tmp_path.iterdir() if ".incomplete-" in p.name]
    assert "left unfinished" in caplog.text


# ----------------------------------------------------------------------------- item 4: img2grad fingerprint

@pytest.fixture(scope="module")
def discriminator():
    from tfforensics.benchmark.gans import WEIGHTS_DIR

    return WEIGHTS_DIR / "stylegan_discriminator.keras"


def test_img2grad_outputs_are_tied_to_the_options(discriminator, tmp_path, capsys):
    images = make_classes(tmp_path / "images", count=2)
    out = tmp_path / "grads"
    argv = ["img2grad", images, out, "--weights", discriminator, "-q"]
    assert cli(argv, capsys)[0] == 0
    first = read_marker(out)
    assert first["command"] == "img2grad" and len(first["files"]) == 4
    stamp = tree(out)
    assert cli(argv, capsys)[0] == 0 and tree(out) == stamp  # same command: reused, nothing rewritten
    refused(argv + ["--resample", "nearest"], capsys, tmp_path, "--overwrite")
    assert cli(argv + ["--resample", "nearest", "--overwrite"], capsys)[0] == 0
    assert read_marker(out)["fingerprint"] != first["fingerprint"] and tree(out) != stamp
    assert not [p for p in tmp_path.iterdir() if ".incomplete-" in p.name]


def test_img2grad_into_a_folder_of_look_alike_files_is_refused(discriminator, tmp_path, capsys):
    images = make_classes(tmp_path / "images", count=2)
    fake = tmp_path / "grads"
    shutil.copytree(images, fake)  # files named exactly like its outputs
    for extra in ([], ["--overwrite"]):
        refused(["img2grad", images, fake, "--weights", discriminator, "-q", *extra], capsys, tmp_path, str(fake))


# ----------------------------------------------------------------------------- reproduce, gan, benchmark

def test_reproduce_refuses_a_users_folder_before_any_work(tmp_path, capsys):
    out = tmp_path / "report"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    refused(["reproduce", "--quick", "--out", out, "-q"], capsys, tmp_path, "--overwrite")
    refused(["reproduce", "--quick", "--out", out, "-q", "--overwrite"], capsys, tmp_path, "not a tfforensics output")
    (tmp_path / "file").write_text("x")
    refused(["reproduce", "--quick", "--out", tmp_path / "file", "-q"], capsys, tmp_path, "is a file")


def test_reproduce_output_with_a_users_file_is_never_emptied(tmp_path, capsys):
    from tfforensics.benchmark.build import build_benchmark
    from tfforensics.benchmark.reproduce import claim_reproduce_out
    from tfforensics.errors import UserError
    from tfforensics.io.outputs import mark_output

    out = tmp_path / "report"
    (out / "benchmark").mkdir(parents=True)
    (out / "report.md").write_text("# report")
    mark_output(out, "reproduce", files=["report.md"])
    mark_output(out / "benchmark", "benchmark", files=[])
    (out / "benchmark" / "notes.txt").write_text("my notes")
    refused(["reproduce", "--quick", "--out", out, "-q", "--overwrite"], capsys, tmp_path, "notes.txt")
    before = tree(tmp_path)
    assert claim_reproduce_out(out) == out  # a re-run continues in its own output ...
    fakes = {"b_fake": lambda count, seed: np.zeros((count, 16, 16, 3), np.uint8)}
    with pytest.raises(UserError, match="notes.txt"):  # ... and its benchmark stage stops at the user's file
        build_benchmark(out / "benchmark", fakes, per_source=10, size=16, overwrite=True, progress=False)
    assert tree(tmp_path) == before


def test_gan_commands_refuse_a_users_folder(tmp_path, capsys):
    user = tmp_path / "u"
    user.mkdir()
    (user / "000000.png").write_bytes(b"my picture")
    refused(["gan", "sample", "nearest", user, "--count", "2", "-q"], capsys, tmp_path, "--overwrite")
    refused(["gan", "sample", "nearest", user, "--count", "2", "-q", "--overwrite"], capsys, tmp_path,
            "not a tfforensics output")
    refused(["gan", "train", "nearest", user, "--steps", "1", "-q", "--overwrite"], capsys, tmp_path,
            "not a tfforensics output")
    out = tmp_path / "samples"
    assert cli(["gan", "sample", "nearest", out, "--count", "2", "-q"], capsys)[0] == 0
    assert sorted(read_marker(out)["files"]) == ["000000.png", "000001.png"]


# ----------------------------------------------------------------------------- odd names

def test_non_utf8_file_name_is_handled(src, tmp_path, capsys):
    odd = os.fsdecode(bytes(src / "a") + b"/\xff\xfe.png")
    shutil.copy(src / "a" / "0000.png", odd)
    assert cli(["prepare", src, tmp_path / "out", "-q"], capsys)[0] == 0
    assert cli(["crop", "lsun", src, tmp_path / "crops", "--size", "8", "-q"], capsys)[0] == 0
    assert Path(os.fsdecode(bytes(tmp_path / "crops" / "a") + b"/\xff\xfe.png")).is_file()


def test_lgrad_commands_refuse_a_users_files(tmp_path, capsys):
    images = make_classes(tmp_path / "grads", count=2)
    user = tmp_path / "u"
    user.mkdir()
    (user / "model.keras").write_bytes(b"my model")
    refused(["lgrad", "train", images, user, "--arch", "small", "-q"], capsys, tmp_path, "--overwrite")
    refused(["lgrad", "train", images, user, "--arch", "small", "-q", "--overwrite"], capsys, tmp_path,
            "not a tfforensics output")
    refused(["lgrad", "train", images, images / "run", "--arch", "small", "-q"], capsys, tmp_path, "inside the source")
    (tmp_path / "metrics.json").write_text('{"mine": 1}')
    refused(["lgrad", "test", user, images, "--output", tmp_path / "metrics.json", "-q"], capsys, tmp_path,
            "--overwrite")
    refused(["lgrad", "test", user, images, "--output", tmp_path / "metrics.json", "-q", "--overwrite"], capsys,
            tmp_path, "not a metrics JSON that tfforensics wrote")


def test_prepare_over_a_damaged_output_needs_overwrite_and_then_works(src, tmp_path, capsys):
    from tfforensics.data.manifest import Manifest

    out = tmp_path / "out"
    assert cli(["prepare", src, out], capsys)[0] == 0
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["class_names"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    line = refused(["prepare", src, out], capsys, tmp_path, "manifest.json", "class_names", "--overwrite")
    assert "re-run" in line or "pass --overwrite" in line
    code, err = cli(["prepare", src, out, "--overwrite"], capsys)
    assert code == 0, err
    assert Manifest.load(out).class_names == ["a", "b"]


def test_user_errors_are_one_line_and_bugs_keep_their_traceback(capsys, monkeypatch):
    """The CLI's contract: UserError -> one line, exit 2; anything else -> traceback + bug line, exit 1."""
    import tfforensics.cli.prepare as prepare_cli
    from tfforensics.errors import UserError

    def run_with(error):
        def run(args):
            raise error
        monkeypatch.setattr(prepare_cli, "run", run, raising=False)
        parser_hook = prepare_cli.add_parser

        def add_parser(subparsers):
            parser_hook(subparsers)
            subparsers.choices["prepare"].set_defaults(run=run)
        monkeypatch.setattr(prepare_cli, "add_parser", add_parser)
        return cli(["prepare", "a", "b"], capsys)

    code, err = run_with(UserError("some/file: is broken; fix it."))
    assert code == 2 and err.strip() == "tfforensics: error: some/file: is broken; fix it."
    code, err = run_with(ValueError("an internal inconsistency"))
    assert code == 1 and "Traceback" in err and "ValueError: an internal inconsistency" in err
    assert "a bug in tfforensics" in err.strip().splitlines()[-1]
    code, err = run_with(PermissionError(13, "Permission denied", "/some/out"))
    assert code == 2 and err.strip().splitlines() == [
        "tfforensics: error: /some/out: Permission denied; check the path, its permissions and the free disk space."]
