from pathlib import Path

from cnnzoo.docs import BEGIN, END, model_table, render_readme

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
ZOO = ROOT / "docs" / "zoo.md"


def test_zoo_page_model_table_is_current():
    text = ZOO.read_text()
    assert BEGIN in text and END in text
    assert render_readme(text) == text, "docs/zoo.md's model table is stale: run `python -m cnnzoo.docs docs/zoo.md`"


def test_model_table_lists_every_model():
    from cnnzoo import list_models

    table = model_table()
    assert all(f"| `{name}` |" in table for name in list_models())


def test_readme_gives_the_two_setup_commands():
    text = README.read_text()
    assert "make run" in text and "make test" in text
