"""The README's plugin example is the file CI runs, word for word."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_shows_the_example_test_that_ci_runs() -> None:
    example = (ROOT / "tests/plugin_example/test_my_strategy.py").read_text()
    readme = (ROOT / "README.md").read_text()
    start = example.index("async def test_my_strategy_places_with_brackets")
    end = example.index("\n\n\n", start)
    assert example[start:end] in readme
