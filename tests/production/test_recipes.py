"""The README's production recipes are the files the tests run, word for word."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_shows_the_gunicorn_config_the_tests_run() -> None:
    """examples/gunicorn/gunicorn.conf.py appears whole in the README's gunicorn recipe."""
    conf = (ROOT / "examples" / "gunicorn" / "gunicorn.conf.py").read_text(encoding="utf-8")
    assert f"```python\n{conf}```" in README
