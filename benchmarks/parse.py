"""Parse throughput: kundo_gdpr's parser against the stdlib baseline, same run.

Baseline: `email.message_from_bytes(raw, policy=policy.default)` plus
`get_body().get_content()`. Goal from issue 3: ours >= 0.5x the baseline.
Run: .venv/bin/python benchmarks/parse.py [--mails 2000] [--runs 5]
"""

from __future__ import annotations

import argparse
import email
import random
import statistics
import time
from collections.abc import Callable
from email import policy
from email.message import EmailMessage

from kundo_gdpr.intake.parse import parse

SUPPORT = ("support@kundo.se",)
BODIES = (
    "Hej!\n\nRadera alla mejl och chattar från {who}.\n"
    "Vi har bekräftat personens identitet.\n\nMed vänliga hälsningar\nEva\ndpo@cykelbolaget.se\n",
    "Hello,\n\nPlease export the forum posts of {who}.\n"
    "We have confirmed the person's identity.\n\nKind regards,\nJon\n\n"
    "On Mon, 23 Nov 2026 at 08:31, Kundo Support <support@kundo.se> wrote:\n"
    "> We cannot act on your request.\n" * 3,
)

OUTLOOK_HTML = (
    "<html><head><style>p.MsoNormal {{margin:0cm}}</style><!--[if gte mso 9]><xml>"
    "<o:shapedefaults v:ext='edit' spidmax='1026' /></xml><![endif]--></head>"
    "<body lang=SV><div class=WordSection1><p class=MsoNormal>{body}</p>"
    "<table class=MsoNormalTable><tr><td><p class=MsoNormal>Anna Berg</p></td>"
    "<td><p class=MsoNormal>anna@example.com</p></td></tr></table>"
    "<div id=divRplyFwdMsg><p><b>Från:</b> Kundo Support</p></div></div></body></html>"
)


def backlog(count: int, seed: int = 3) -> list[bytes]:
    """`count` realistic request mails; every tenth has an attachment, one has 20 MB;
    every fourth is HTML only (Outlook's markup: styles, conditional comments, a table)."""
    rng = random.Random(seed)
    mails: list[bytes] = []
    for n in range(count):
        msg = EmailMessage()
        msg["From"] = "Eva Ek <eva@cykelbolaget.se>"
        msg["To"] = "support@kundo.se"
        msg["Subject"] = rng.choice(["Radera kunddata", "Data export", "VB: Radera mitt konto"])
        msg["Message-ID"] = f"<bench-{n}@test.example>"
        body = rng.choice(BODIES).format(who=f"customer{n}@example.com")
        if n % 4 == 1:
            # HTML only, as Outlook and phones often send it: read by the HTML parser.
            msg.set_content(OUTLOOK_HTML.format(body=body.replace("\n", "</p><p>")), subtype="html")
        else:
            msg.set_content(body)
        if n % 3 == 0 and n % 4 != 1:
            markup = "<p>" + body.replace("\n", "<br>") + "</p>"
            msg.add_alternative(markup, subtype="html")
        if n % 10 == 0:
            size = 20_000_000 if n == 0 else rng.randint(10_000, 200_000)
            msg.add_attachment(
                rng.randbytes(size),
                maintype="application",
                subtype="pdf",
                filename=f"underlag-{n}.pdf",
            )
        mails.append(msg.as_bytes())
    return mails


def baseline(raw: bytes) -> None:
    msg = email.message_from_bytes(raw, policy=policy.default)
    body = msg.get_body(preferencelist=("plain", "html"))  # type: ignore[attr-defined]
    if body is not None:
        body.get_content()


def ours(raw: bytes) -> None:
    parse(raw, SUPPORT)


def throughput(fn: Callable[[bytes], None], mails: list[bytes], runs: int) -> float:
    """Median mails per second over `runs` passes."""
    rates: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        for raw in mails:
            fn(raw)
        rates.append(len(mails) / (time.perf_counter() - started))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    mails = backlog(args.mails)
    megabytes = sum(map(len, mails)) / 1e6
    print(f"{len(mails)} mails, {megabytes:.1f} MB, median of {args.runs} runs")
    base = throughput(baseline, mails, args.runs)
    mine = throughput(ours, mails, args.runs)
    print(f"stdlib baseline  {base:8.0f} mails/s")
    print(f"kundo_gdpr parse {mine:8.0f} mails/s")
    print(f"ratio            {mine / base:8.2f}x (goal >= 0.5x)")


if __name__ == "__main__":
    main()
