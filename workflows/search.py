"""Typed search attributes operators filter on in the Temporal UI (registered by the dev-server launcher)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

if TYPE_CHECKING:
    from domain.accounts import AccountTerms

STAGE = SearchAttributeKey.for_keyword("CollectionStage")
MODE = SearchAttributeKey.for_keyword("CollectionMode")
DPD = SearchAttributeKey.for_int("DaysPastDue")
BALANCE = SearchAttributeKey.for_int("BalanceMinor")
HOLD = SearchAttributeKey.for_keyword("CollectionHold")
NEXT_CONTACT = SearchAttributeKey.for_datetime("NextContactTime")
JURISDICTION = SearchAttributeKey.for_keyword("Jurisdiction")
# the champion/challenger variant intake put the account in (domain/strategy.py); set at start only
VARIANT = SearchAttributeKey.for_keyword("Variant")

ALL = [STAGE, MODE, DPD, BALANCE, HOLD, NEXT_CONTACT, JURISDICTION, VARIANT]

# For `temporal server start-dev --search-attribute NAME=TYPE` and `temporal operator search-attribute create`.
CLI_TYPES = {
    STAGE.name: "Keyword",
    MODE.name: "Keyword",
    DPD.name: "Int",
    BALANCE.name: "Int",
    HOLD.name: "Keyword",
    NEXT_CONTACT.name: "Datetime",
    JURISDICTION.name: "Keyword",
    VARIANT.name: "Keyword",
}


def initial(terms: AccountTerms) -> TypedSearchAttributes:
    """Search attributes set at start, so a just-started account is findable before its first task."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(JURISDICTION, terms.profile),
            SearchAttributePair(MODE, "dunning"),
            SearchAttributePair(BALANCE, terms.balance),
            SearchAttributePair(HOLD, "none"),
        ]
    )
