"""One subject, however their address is written in the desk's owner columns."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr.desk import open_desk
from kundo_gdpr.desk.keys import catch_up
from kundo_gdpr.identity import NONE, SEVERAL, key, subject_key
from kundo_gdpr.models import ForumPost
from tests.test_erase import channel_of, covered

ANNA = "anna@x.se"
SPELLINGS = (
    "Anna Svensson <anna@x.se>",
    " ANNA@x.se\t",
    "<Anna@X.SE>",
    "anna@x.se\r\n",
    '"Svensson, Anna" <anna@x.se>',
    "mailto:anna@x.se",
    "anna@x.se (Anna)",
)


@pytest.mark.parametrize("written", SPELLINGS)
def test_every_spelling_has_the_subjects_key(written: str) -> None:
    assert key(written) == ANNA


def test_an_idn_domain_has_one_form() -> None:
    assert key("Anna <anna@BÜCHER.de>") == key("anna@xn--bcher-kva.de") == "anna@xn--bcher-kva.de"


@pytest.mark.parametrize("garbage", ["", "   ", "anna", "x" * 10_000 + "@x.se",
                                     "anna@x.se\x00b@y", b"\xff\xfe\x00anna", "@", "a@"])
def test_garbage_is_nobodys_and_never_raises(garbage: str | bytes) -> None:
    assert key(garbage) in (NONE, "\ufffd\ufffd\x00anna")
    assert subject_key(garbage if isinstance(garbage, str) else "x") in (None, "x@")


def test_a_list_of_two_people_is_nobody_alone() -> None:
    assert key("anna@x.se, bo@y.se") == SEVERAL
    assert key("anna@x.se; ANNA@x.se") == ANNA
    assert subject_key("anna@x.se, bo@y.se") is None


def test_a_plus_tag_is_not_the_same_subject() -> None:
    assert key("anna+shop@x.se") != ANNA


def _raw_posts(session: Session, forum: int, values: list[str]) -> list[int]:
    """Posts written past the ORM, as a host desk would: no key."""
    ids = []
    for value in values:
        session.execute(text(
            "INSERT INTO forum_posts (channel_id, author_email, author_name, body, created_at) "
            "VALUES (:c, :e, 'Anna Svensson', 'hej', CURRENT_TIMESTAMP)"), {"c": forum, "e": value})
        ids.append(session.scalars(select(ForumPost.id).order_by(ForumPost.id.desc())).first())
    return [i for i in ids if i is not None]


def test_preview_erase_and_export_find_every_spelling_written_past_the_orm(
    world: None, factory: sessionmaker[Session]
) -> None:
    with factory.begin() as session:
        forum = channel_of(session, "forum")
        ids = _raw_posts(session, forum, list(SPELLINGS))
        others = _raw_posts(session, forum, ["anna+shop@x.se", "x" * 320, "nobody"])
    with factory.begin() as session:
        desk = open_desk("sql", session)
        channels = covered(session)
        counts = desk.count(" Anna@X.se ", channels)
        assert counts["forum"]["posts"] == len(SPELLINGS)
        (sheet,) = [s for s in desk.export("<anna@x.se>", channels) if s.kind == "forum"]
        assert sorted(r[0] for r in sheet.rows) == sorted(ids)
    with factory.begin() as session:
        desk = open_desk("sql", session)
        erased = [s.counts for s in desk.erase("ANNA@x.se", covered(session))]
        assert sum(c.get("forum", {}).get("posts", 0) for c in erased) == len(SPELLINGS)
        left = set(session.scalars(select(ForumPost.id).where(ForumPost.id.in_(ids + others))))
        assert left == set(others)


def test_a_changed_address_gets_its_key_again(world: None, factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        post = ForumPost(channel_id=channel_of(session, "forum"), author_email="bo@y.se", body="")
        session.add(post)
        session.flush()
        session.execute(text("UPDATE forum_posts SET author_email = 'Anna <anna@x.se>' "
                             "WHERE id = :id"), {"id": post.id})
        catch_up(session)
        assert session.scalar(select(ForumPost.author_key).where(ForumPost.id == post.id)) == ANNA


def test_invalid_utf8_nul_and_10_kb_in_an_owner_column_do_not_stop_the_erase(
    world: None, factory: sessionmaker[Session]
) -> None:
    with factory.begin() as session:
        forum = channel_of(session, "forum")
        garbage = ["anna@x.se", "\x01\x7f<>@\u202e"]
        if session.get_bind().dialect.name != "sqlite":
            # PostgreSQL refuses invalid UTF-8, NUL and text longer than the column at
            # the door; what it can hold is tried.
            garbage.append(" anna@x.se" + " " * 300 + "x")
        else:
            garbage += [" anna@x.se" + " " * 10_000 + "x", "\x00"]
            session.execute(text(
                "INSERT INTO forum_posts (channel_id, author_email, body, created_at) "
                "VALUES (:c, CAST(X'FFFE00616E6E61407840' AS TEXT), 'x', CURRENT_TIMESTAMP)"),
                {"c": forum})
        _raw_posts(session, forum, garbage)
    with factory.begin() as session:
        erased = list(open_desk("sql", session).erase(ANNA, covered(session)))
        assert sum(s.counts.get("forum", {}).get("posts", 0) for s in erased) == 1
