"""The catalogue of reason codes a decision can give.

Codes are stable: integrators key on them. Each reason has a kind, which decides the outcome:

* ``deny``: a source says the line is not payable this way. Any denial makes the line ``not_payable``;
  ``carc`` is the number of the X12 Claim Adjustment Reason Code a payer would send for it (numbers
  only: the code list is maintained by X12, see CARC_SOURCE; ``docs/reasons.md`` gives each choice).
* ``undetermined``: the data cannot decide, because the public sources it holds are silent. Without a
  denial, the line is ``undetermined``: the official CMAP Telehealth Table decides. No CARC: it is not
  a denial.
* ``warn``: billing guidance a source gives as "bill it this way". It tells the biller what to put on
  the claim and never changes the outcome.
* ``info``: what a decision found (the line is not telehealth; the code is on the table).

``scope`` says what a reason reads: ``line`` reasons come from the line's modifiers, place of service,
stated modality and claim type alone (and the date); ``table`` reasons from the code's rows too.
"""

from __future__ import annotations

from dataclasses import dataclass

CARC_SOURCE = "X12 Claim Adjustment Reason Codes, https://x12.org/codes/claim-adjustment-reason-codes"

KINDS = ("deny", "undetermined", "warn", "info")


@dataclass(frozen=True, slots=True)
class ReasonType:
    code: str
    kind: str  # one of KINDS
    carc: str | None
    meaning: str
    scope: str = "table"  # "line" | "table"


_ALL = (
    ReasonType("NOT_A_TELEHEALTH_LINE", "info", None,
               "Nothing on the line marks it as telehealth (no telehealth modifier, place of service or "
               "modality), so the telehealth table does not apply.", "line"),
    ReasonType("ON_TELEHEALTH_TABLE", "info", None,
               "The code is on the telehealth table for the date of service and the modality used."),
    ReasonType("NOT_ON_TELEHEALTH_TABLE", "deny", "204",
               "The procedure code is not on the CMAP telehealth table, which this data holds whole for the "
               "date of service: only listed codes are payable via telehealth."),
    ReasonType("NOT_PERMITTED_VIA_TELEHEALTH", "deny", "204",
               "The table lists the code as not permitted via telehealth on the date of service."),
    ReasonType("OUTSIDE_EFFECTIVE_DATES", "deny", "204",
               "The code is on the table, but not on the date of service: no row of it is in force then, and "
               "the data holds the whole table for that date."),
    ReasonType("CODE_NOT_IN_DATA", "undetermined", None,
               "The code is not in this data, which holds only the rows public sources name: whether it is on "
               "the CMAP telehealth table is for the official table to say."),
    ReasonType("DATE_NOT_IN_DATA", "undetermined", None,
               "The code is in this data, but no public source it holds covers the date of service (for "
               "example, a row's real start date is not known): the official table decides."),
    ReasonType("NOT_PAID_IN_ERA", "deny", "204",
               "No row decides the line, and a source says lines delivered this way were not paid on the date of "
               "service, whatever the code (for example live video before the COVID-19 emergency)."),
    ReasonType("ERA_UNDETERMINED", "undetermined", None,
               "No row decides the line, and a source names a category of services payable this way on the date "
               "of service without naming its codes: the line cannot be recognised from its code, so the official "
               "table or the bulletin decides."),
    ReasonType("CONFLICTING_MODIFIERS", "deny", "4",
               "The line's modifiers (or stated modality) signal more than one telehealth modality.", "line"),
    ReasonType("MODIFIER_NOT_IN_EFFECT", "deny", "182",
               "A modifier on the line did not exist (or no longer existed) on the date of service.", "line"),
    ReasonType("MODIFIER_NOT_FOR_CLAIM_TYPE", "deny", "4",
               "A telehealth modifier on the line is not used on this claim type.", "line"),
    ReasonType("POS_NOT_IN_EFFECT", "deny", "58",
               "The place of service code did not exist on the date of service.", "line"),
    ReasonType("POS_NOT_ACCEPTED", "deny", "58",
               "A source says lines with this telehealth place of service are not accepted on the date of "
               "service.", "line"),
    ReasonType("MODALITY_NOT_INDICATED", "undetermined", None,
               "The line is marked as telehealth but nothing on it says how it was delivered, and the code's "
               "row does not allow every way: the biller knows; the modifier tells the payer."),
    ReasonType("MODALITY_UNDETERMINED", "undetermined", None,
               "The code's row is known for other modalities, but the public sources neither allow nor rule "
               "out the one used."),
    ReasonType("MODALITY_NOT_ALLOWED", "deny", "4",
               "The code is listed, but not for the modality used (for example audio-only on a code listed "
               "for audio-video only)."),
    ReasonType("RCC_REQUIRED", "deny", "16",
               "The institutional claim line has no revenue center code, and the row lists the ones allowed."),
    ReasonType("RCC_NOT_ALLOWED", "deny", "199",
               "The revenue center code is not one the row allows for this procedure code."),
    ReasonType("AGE_OUTSIDE_LIMIT", "deny", "6",
               "The member's age is outside the range the row allows."),
    ReasonType("PROVIDER_TYPE_NOT_ALLOWED", "deny", "8",
               "The provider type is not one the row allows."),
    ReasonType("ESTABLISHED_PATIENT_REQUIRED", "deny", "272",
               "The row allows this service only for established patients."),
    ReasonType("UNITS_OVER_LIMIT", "deny", "151",
               "The units billed exceed the per-day limit of the row."),
    ReasonType("POS_GUIDANCE", "warn", None,
               "Billing guidance for this place of service: what a source says to put on the claim. It does "
               "not change the decision.", "line"),
    ReasonType("MODIFIER_EXPECTED", "warn", None,
               "Nothing on the line says how it was delivered; every way the code is listed for is payable, "
               "but the claim should carry the modifier of the way used.", "table"),
)

REASONS: dict[str, ReasonType] = {r.code: r for r in _ALL}
ORDER: dict[str, int] = {r.code: i for i, r in enumerate(_ALL)}
DENIALS: tuple[str, ...] = tuple(r.code for r in _ALL if r.kind == "deny")
UNDETERMINED: tuple[str, ...] = tuple(r.code for r in _ALL if r.kind == "undetermined")
WARNINGS: tuple[str, ...] = tuple(r.code for r in _ALL if r.kind == "warn")
