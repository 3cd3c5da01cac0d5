"""Kinds and channels are spelled out in one module (kundo_gdpr/vocabulary.py), and
their names in one strings file per language (mail_templates/<lang>/strings.toml),
which the replies, the exports and the web pages all read.

The scans fail on a list, tuple, set or dict of these words declared anywhere
else in kundo_gdpr, in Python or in a template, and on a kind's or channel's
name declared a second time in any strings file."""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2
import pytest
from jinja2 import nodes

from kundo_gdpr import i18n, vocabulary
from kundo_gdpr.replies.render import environment
from kundo_gdpr.vocabulary import CHANNELS, KINDS, ChannelKind, Kind
from kundo_gdpr.web import i18n as web_i18n

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "kundo_gdpr"
WEB_STRINGS = PACKAGE / "web" / "templates" / "strings.toml"
WORDS = {"erase", "export", "mail", "forum", "chat"}


def _is_words(values: list[Any]) -> bool:
    """Two or more of the kind and channel words and nothing else: a re-declared list."""
    return len(values) >= 2 and all(isinstance(v, str) and v in WORDS for v in values)


def _python_lists(tree: ast.AST) -> Iterator[tuple[int, list[Any]]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            items = node.elts
        elif isinstance(node, ast.Dict):
            items = [k for k in node.keys if k is not None]
        else:
            continue
        if all(isinstance(i, ast.Constant) for i in items):
            yield node.lineno, [i.value for i in items if isinstance(i, ast.Constant)]


def _template_lists(tree: nodes.Node) -> Iterator[tuple[int, list[Any]]]:
    for node in tree.find_all((nodes.Tuple, nodes.List, nodes.Dict)):
        # Dict.items are Pairs (key, value); Tuple.items and List.items the elements.
        items = [getattr(i, "key", i) for i in getattr(node, "items", [])]
        if all(isinstance(i, nodes.Const) for i in items):
            yield node.lineno, [i.value for i in items if isinstance(i, nodes.Const)]


def _templates() -> list[Path]:
    return sorted([*(PACKAGE / "web" / "templates").glob("*.html"),
                   *(ROOT / "mail_templates").glob("*/*.txt")])


def test_the_words_are_in_the_order_they_are_shown() -> None:
    assert KINDS == ("erase", "export") and CHANNELS == ("mail", "forum", "chat")
    # Stored requests hold plain strings; they must equal the members.
    assert "erase" in [Kind.ERASE] and ChannelKind.MAIL in ["mail"]
    assert repr(CHANNELS) == "('mail', 'forum', 'chat')"


def test_vocabulary_imports_nothing_of_kundo_gdpr() -> None:
    tree = ast.parse(Path(vocabulary.__file__).read_text(encoding="utf-8"))
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m.startswith("kundo_gdpr")]


def test_no_module_declares_its_own_list_of_kinds_or_channels() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == Path(vocabulary.__file__):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        found += [f"{path.relative_to(ROOT)}:{line}: {values}"
                  for line, values in _python_lists(tree) if _is_words(values)]
    assert not found, "use kundo_gdpr.vocabulary instead:\n" + "\n".join(found)


def test_no_template_declares_its_own_list_or_names_of_kinds_or_channels() -> None:
    env = jinja2.Environment()
    found = []
    for path in _templates():
        tree = env.parse(path.read_text(encoding="utf-8"))
        found += [f"{path.relative_to(ROOT)}:{line}: {values}"
                  for line, values in _template_lists(tree) if _is_words(values)]
    assert not found, "use KINDS/CHANNELS and kind_name/channel_name instead:\n" + "\n".join(found)


def test_the_scans_find_a_redeclared_list() -> None:
    """The two scans above can fail: each finds a list written the old way."""
    python = ast.parse('KINDS = ("erase", "export")\nx = {"mail": 1, "chat": 2}')
    assert [v for _, v in _python_lists(python) if _is_words(v)] == [
        ["erase", "export"], ["mail", "chat"]]
    template = jinja2.Environment().parse(
        '{% for k in ("mail", "forum", "chat") %}{{ {"erase": "x", "export": "y"}[k] }}'
        '{% endfor %}')
    assert len([v for _, v in _template_lists(template) if _is_words(v)]) == 2


def _leaves(table: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for key, value in table.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", str(value)


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_each_name_is_declared_once_per_language(language: str) -> None:
    with (ROOT / "mail_templates" / language / "strings.toml").open("rb") as handle:
        replies = tomllib.load(handle)
    with WEB_STRINGS.open("rb") as handle:
        pages = tomllib.load(handle)[language]
    assert tuple(replies["kinds"]) == KINDS
    assert tuple(replies["channels"]) == CHANNELS == tuple(replies["channels_definite"])
    names = {**replies["kinds"], **replies["channels"]}
    # No other entry in either file names a kind or channel again, in any case and
    # under any key ending in the word: export.sheets.mail = "E-post", channel_mail = …
    again = [(key, value) for key, value in [*_leaves(replies), *_leaves(pages)]
             if key.split(".")[0] not in ("kinds", "channels", "channels_definite")
             and (word := key.replace("_", ".").rpartition(".")[2]) in WORDS
             and value.casefold() == names[word].casefold()]
    assert not again, f"a name declared twice: {again}"


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_pages_and_replies_say_the_same_names(language: str) -> None:
    page = web_i18n.strings(language)
    for kind in KINDS:
        assert page[f"kind_{kind}"] == i18n.kind_name(language, kind)
    for channel in CHANNELS:
        assert page[f"channel_{channel}"] == i18n.channel_name(language, channel)
    # The replies' shared macros, as receipt, done and the other replies use them.
    common = environment().get_template(f"{language}/_common.txt").module
    assert str(common.kind_names(["erase", "export"])) == {  # type: ignore[attr-defined]
        "sv": "radering och registerutdrag", "en": "erasure and export"}[language]
    assert str(common.channel_names(["mail", "forum", "chat"])) == {  # type: ignore[attr-defined]
        "sv": "e-post, forum, chatt", "en": "email, forum, chat"}[language]
