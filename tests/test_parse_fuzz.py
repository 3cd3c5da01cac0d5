"""The parser never raises anything but ParseError, and answers quickly, on any bytes."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kundo_gdpr.intake.parse import ParseError, parse
from kundo_gdpr.intake.result import ParsedMail

MAILS = Path(__file__).parent / "mails"
SHARED_CORPUS = Path(__file__).parents[1].parent / "shared" / "corpus"
SEEDS = sorted(MAILS.glob("*.eml")) + sorted(SHARED_CORPUS.rglob("*.eml"))[:30]
SEED_BYTES = [p.read_bytes()[:20_000] for p in SEEDS]
TIME_BOUND_SECONDS = 2.0
MIME_NOISE = [
    b"\n--",
    b"boundary=",
    b'Content-Type: multipart/mixed; boundary="x"\n',
    b"Content-Transfer-Encoding: base64\n",
    b"=?utf-8?B?",
    b"=?iso-8859-1?Q?=E5",
    b'charset="nonsense-42"',
    b"\r\n\r\n",
    b"<blockquote type=cite>",
    b"\x00\xff\xfe",
    b">",
    b"@",
]
FUZZ = settings(
    max_examples=200,
    deadline=timedelta(seconds=TIME_BOUND_SECONDS),
    suppress_health_check=[HealthCheck.too_slow],
)


def _parse_within_bound(raw: bytes) -> None:
    started = time.perf_counter()
    try:
        result = parse(raw, ("support@kundo.se",))
    except ParseError:
        pass
    else:
        assert isinstance(result, ParsedMail)
        result.to_json("fuzz.eml")
    assert time.perf_counter() - started < TIME_BOUND_SECONDS


@FUZZ
@given(st.binary(max_size=4_000))
def test_arbitrary_bytes_give_a_result_or_a_parse_error(raw: bytes) -> None:
    _parse_within_bound(raw)


@st.composite
def mangled_mails(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.sampled_from(SEED_BYTES)))
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(raw)))
        action = draw(st.sampled_from(["cut", "insert", "flip", "noise"]))
        if action == "cut":
            del raw[at : at + draw(st.integers(1, 400))]
        elif action == "insert":
            raw[at:at] = draw(st.binary(min_size=1, max_size=40))
        elif action == "flip" and at < len(raw):
            raw[at] = draw(st.integers(0, 255))
        else:
            raw[at:at] = draw(st.sampled_from(MIME_NOISE))
    return bytes(raw)


@FUZZ
@given(mangled_mails())
def test_mangled_real_mails_give_a_result_or_a_parse_error(raw: bytes) -> None:
    _parse_within_bound(raw)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(SEED_BYTES), st.integers(2, 100))
def test_a_mail_repeated_into_a_huge_body_is_parsed_within_the_bound(
    seed: bytes, times: int
) -> None:
    _parse_within_bound(seed + seed.split(b"\n\n", 1)[-1] * times)
