"""``python -m tfforensics`` is the same as the ``tfforensics`` console script."""

from tfforensics.cli.main import launch

if __name__ == "__main__":
    raise SystemExit(launch())
