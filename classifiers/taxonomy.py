"""The label set of TAXONOMY.md: twelve topics and the partner code rules."""

from __future__ import annotations

import re

TOPICS: tuple[str, ...] = (
    "agreement",
    "visit",
    "exercise",
    "training",
    "procurement",
    "industry",
    "intelligence",
    "counterterrorism",
    "cyber",
    "maritime",
    "peacekeeping",
    "border_security",
)
ORGANISATIONS: tuple[str, ...] = ("NATO", "EU", "UN", "AU")
SELF = "MA"
_STATE_CODE = re.compile(r"^[A-Z]{2}$")


def is_partner_code(code: str) -> bool:
    """An ISO 3166-1 alpha-2 code or one of the four organisations; Morocco itself never is."""
    return code != SELF and (code in ORGANISATIONS or bool(_STATE_CODE.match(code)))
