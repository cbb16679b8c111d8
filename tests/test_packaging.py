"""The Dockerfile, requirements, console script and CLI agree with each other."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tfforensics.cli.main import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[1]


def dockerfile_lines():
    return [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_docker_base_image_satisfies_requirements():
    lines = dockerfile_lines()
    image = next(line.split("=", 1)[1] for line in lines if line.startswith("ARG TF_IMAGE="))
    match = re.fullmatch(r"tensorflow/tensorflow:(\d+\.\d+\.\d+)-gpu", image)
    assert match, f"base image should be a CUDA TensorFlow image, got {image}"
    requirements = [Requirement(r) for r in (ROOT / "requirements.txt").read_text().splitlines()
                    if r.strip() and not r.startswith("#")]
    tensorflow = next(r for r in requirements if r.name == "tensorflow")
    assert tensorflow.specifier.contains(match.group(1)), (tensorflow, match.group(1))


def test_docker_installs_requirements_and_runs_the_console_script():
    text = "\n".join(dockerfile_lines())
    assert "COPY requirements.txt" in text and "-r requirements.txt" in text
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["tool"]["setuptools"]["dynamic"]["dependencies"]["file"] == ["requirements.txt"]
    scripts = project["project"]["scripts"]
    assert scripts == {"tfforensics": "tfforensics.cli.main:launch"}
    entrypoint = next(line for line in dockerfile_lines() if line.startswith("ENTRYPOINT"))
    assert entrypoint == 'ENTRYPOINT ["tfforensics"]'
    command = next(line for line in dockerfile_lines() if line.startswith("CMD"))
    args = re.findall(r'"([^"]+)"', command)
    if args != ["--help"]:  # the default command must be one the CLI accepts
        build_parser().parse_args(args)


def test_help_lists_every_command():
    result = subprocess.run([sys.executable, "-m", "tfforensics", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for module in COMMANDS:
        assert f"    {module.replace('_', '-')} " in result.stdout or f"    {module.replace('_', '-')}\n" in result.stdout


@pytest.mark.parametrize("module", COMMANDS)
def test_every_command_has_help_with_an_example(module, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([module.replace("_", "-"), "--help"])
    assert exit_info.value.code == 0
    assert "examples:" in capsys.readouterr().out


def test_readme_test_command_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = next(line for line in ci.splitlines() if line.startswith("python3 -m venv"))
    assert command in readme and "-m slow" in ci  # CI runs the README's command, then the slow tests that fit


def _documented_examples() -> list[str]:
    """Commands in fenced code blocks and in table rows of README.md and docs/*.md."""
    texts = [(ROOT / "README.md").read_text()] + [p.read_text() for p in sorted((ROOT / "docs").glob("*.md"))]
    commands = set()
    for text in texts:
        in_code = False
        for line in text.splitlines():
            stripped = line.strip()
            if stripped.startswith("```"):
                in_code = not in_code
            elif in_code and stripped.startswith("tfforensics ") and "──" not in stripped:
                commands.add(stripped)
            elif stripped.startswith("|"):
                commands.update(re.findall(r"`(tfforensics [^`]+)`", stripped))
    return sorted(c for c in commands if not c.endswith("--help"))


def test_every_documented_example_parses():
    import shlex

    commands = _documented_examples()
    assert len(commands) >= 12
    parser = build_parser()
    for command in commands:
        args = shlex.split(command.split(" && ")[0], comments=True)[1:]
        try:
            parser.parse_args(args)
        except SystemExit as error:
            raise AssertionError(f"README/docs example does not parse: {command}") from error


def test_command_line_starts_without_tensorflow():
    """Building the parser must not import TensorFlow: prepare's pool can then fork cheaply."""
    code = ("import sys; from tfforensics.cli.main import build_parser; build_parser(); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["False", "False"], result.stdout + result.stderr
