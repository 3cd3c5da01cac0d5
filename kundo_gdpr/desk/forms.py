"""The ways a subject's address is written in other people's texts.

Plain in any case; with the `@` URL-encoded (`%40`), as an HTML character
reference (`&#64;`, `&#x40;`, zero-padded too), or quoted-printable (`=40`);
an IDN domain as punycode or in Unicode. Each is found and replaced alike.
"""

from __future__ import annotations

import re

from kundo_gdpr.identity import unicode_domain

# The `@` as written: plain, %40, &#64; / &#064;, &#x40; / &#X040;, =40.
AT = r"(?:@|%40|&\#0*64;|&\#[xX]0*40;|=40)"
# The literal forms looked for by the index (SQL), before the exact pattern.
AT_FORMS = ("@", "%40", "&#64;", "&#x40;", "=40")


def domains(address: str) -> list[str]:
    """The domain as stored (punycode for an IDN) and, if it differs, in Unicode."""
    found = [address.rpartition("@")[2]]
    if (unicode := unicode_domain(address)) is not None:
        found.append(unicode.rpartition("@")[2])
    return found


def needles(address: str) -> list[str]:
    """Substrings one of which every written form of the address contains."""
    local = address.rpartition("@")[0]
    return [f"{local}{at}{domain}" for domain in domains(address) for at in AT_FORMS]


def address_pattern(address: str) -> re.Pattern[str]:
    """The address in any written form and any case, not part of a longer address."""
    local, _, _domain = address.rpartition("@")
    if not local:
        return re.compile(r"(?!x)x")  # matches nothing
    domain = "|".join(re.escape(d) for d in domains(address))
    return re.compile(rf"(?<![\w.+-]){re.escape(local)}{AT}(?:{domain})(?![\w-]|\.\w)",
                      re.IGNORECASE)
