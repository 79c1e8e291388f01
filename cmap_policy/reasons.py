"""The catalogue of reason codes a decision can give.

Codes are stable: integrators key on them. ``carc`` is the number of the X12
Claim Adjustment Reason Code a payer would send for the denial (numbers only;
the code list is maintained by X12, see CARC_SOURCE).
"""

from __future__ import annotations

from dataclasses import dataclass

CARC_SOURCE = "X12 Claim Adjustment Reason Codes, x12.org/codes/claim-adjustment-reason-codes"


@dataclass(frozen=True, slots=True)
class ReasonType:
    code: str
    kind: str  # "deny" | "info"
    carc: str | None
    meaning: str


_ALL = (
    ReasonType("NOT_A_TELEHEALTH_LINE", "info", None,
               "Nothing on the line marks it as telehealth (no telehealth modifier, place of service "
               "or modality), so the telehealth table does not apply."),
    ReasonType("ON_TELEHEALTH_TABLE", "info", None,
               "The code is on the telehealth table for the date of service and the modality used."),
    ReasonType("NOT_ON_TELEHEALTH_TABLE", "deny", "96",
               "The procedure code is not on the CMAP telehealth table: only listed codes are payable via "
               "telehealth."),
    ReasonType("NOT_PERMITTED_VIA_TELEHEALTH", "deny", "96",
               "The table lists the code as not permitted via telehealth on the date of service."),
    ReasonType("OUTSIDE_EFFECTIVE_DATES", "deny", "181",
               "The code is on the table, but no period of it is in force on the date of service."),
    ReasonType("CONFLICTING_MODIFIERS", "deny", "4",
               "The line's modifiers (or stated modality) signal more than one telehealth modality."),
    ReasonType("MODALITY_NOT_INDICATED", "deny", "4",
               "The line is marked as telehealth but no modifier says whether it was audio-video or "
               "audio-only."),
    ReasonType("MODALITY_NOT_ALLOWED", "deny", "4",
               "The code is listed, but not for the modality used (for example audio-only on a code "
               "listed for audio-video only)."),
    ReasonType("MODIFIER_NOT_FOR_CLAIM_TYPE", "deny", "4",
               "A telehealth modifier on the line is not used on this claim type."),
    ReasonType("POS_NOT_ACCEPTED", "deny", "58",
               "The place of service is a telehealth place of service that CMAP does not accept; bill the "
               "place where the visit would have happened in person."),
    ReasonType("RCC_REQUIRED", "deny", "16",
               "The institutional claim line has no revenue center code, and the period lists the ones "
               "allowed."),
    ReasonType("RCC_NOT_ALLOWED", "deny", "199",
               "The revenue center code is not one the period allows for this procedure code."),
    ReasonType("AGE_OUTSIDE_LIMIT", "deny", "6",
               "The member's age is outside the range the period allows."),
    ReasonType("PROVIDER_TYPE_NOT_ALLOWED", "deny", "8",
               "The provider type is not one the period allows."),
    ReasonType("ESTABLISHED_PATIENT_REQUIRED", "deny", "96",
               "The period allows this service only for established patients."),
    ReasonType("UNITS_OVER_LIMIT", "deny", "151",
               "The units billed exceed the per-day limit of the period."),
)

REASONS: dict[str, ReasonType] = {r.code: r for r in _ALL}
ORDER: dict[str, int] = {r.code: i for i, r in enumerate(_ALL)}
DENIALS: tuple[str, ...] = tuple(r.code for r in _ALL if r.kind == "deny")
