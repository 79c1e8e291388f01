"""Retell a decision as the path a biller would follow to reach it."""

from __future__ import annotations

from .model import ClaimLine, Decision, Outcome, Policy

_OUTCOME = {
    Outcome.PAYABLE: "PAYABLE via telehealth",
    Outcome.NOT_PAYABLE: "NOT PAYABLE via telehealth",
    Outcome.NOT_TELEHEALTH: "NOT A TELEHEALTH LINE: the telehealth table does not apply",
    Outcome.UNDETERMINED: "UNDETERMINED: the public sources this data holds do not say; the official CMAP "
                          "Telehealth Table decides",
}
# How each kind of reason is tagged when a decision is retold (here and on the site's claim-line checker).
KIND_WORDS = {"deny": "denies", "undetermined": "cannot decide", "warn": "billing guidance", "info": "finds"}


def describe_line(line: ClaimLine) -> str:
    parts = [f"{line.code} on {line.date}"]
    if line.modifiers:
        parts.append("modifiers " + " ".join(line.modifiers))
    if line.pos:
        parts.append(f"place of service {line.pos}")
    parts.append(f"{line.claim_type} claim")
    if line.rcc:
        parts.append(f"revenue code {line.rcc}")
    if line.modality:
        parts.append(f"stated modality {line.modality}")
    for label, value in (("member age", line.member_age), ("provider type", line.provider_type),
                         ("units", line.units), ("established patient", line.established_patient)):
        if isinstance(value, bool):
            parts.append(f"{label}: {'yes' if value else 'no'}")
        elif value is not None:
            parts.append(f"{label} {value}")
    return ", ".join(parts)


def explain(policy: Policy, line: ClaimLine, decision: Decision) -> str:
    """A numbered, plain-English account of how ``decision`` follows from ``line`` and the policy."""
    rel = policy.release(decision.release)
    out = [f"Claim line: {describe_line(line)}",
           f"Policy: {policy.program.name} telehealth table as published in release {rel.id} "
           f"({rel.published}); policy hash {decision.policy_hash[:12]}",
           ""]
    step = 1
    if decision.outcome is Outcome.NOT_TELEHEALTH:
        out.append(f"{step}. {decision.reasons[0].message}")
    else:
        if decision.modality:
            mod = policy.program.modalities[decision.modality]
            out.append(f"{step}. The line is telehealth, delivered by {mod.name}.")
            step += 1
        if decision.period is not None:
            p = decision.period
            start = f"from {p.effective}" if p.start_known else f"in force by {p.effective} (its real start not known)"
            span = start + (f" to {p.end}" if p.end else " (no end date)")
            status = "permitted" if p.permitted else "listed as NOT permitted via telehealth"
            allowed = ", ".join(p.modalities) or "none"
            silent = (f"; the sources are silent on {', '.join(p.undetermined_modalities)}"
                      if p.undetermined_modalities else "")
            out.append(f"{step}. On {line.date} the table row for {line.code} in force is {p.id} ({span}): "
                       f"{status}; modalities: {allowed}{silent}.")
            if p.guideline:
                out.append(f"   Guideline: {p.guideline}")
            step += 1
        for r in decision.reasons:
            tag = KIND_WORDS[r.kind]
            out.append(f"{step}. {r.code} ({tag}): {r.message}")
            if r.citation is not None:
                c = r.citation
                where = f", {c.section}" if c.section else ""
                second = " [secondary source: check the official table]" if c.source.secondary else ""
                out.append(f"   Source: {c.source.title}{where} ({c.source.id}){second}")
            if r.carc:
                out.append(f"   A payer would report this as claim adjustment reason code {r.carc}.")
            step += 1
    out.append("")
    out.append(f"Decision: {_OUTCOME[decision.outcome]}.")
    if decision.to_confirm:
        out.append("The line does not carry what these conditions need; confirm them before billing:")
        out.extend(f"  - {lim.guideline}" for lim in decision.to_confirm)
    if decision.attestations and decision.outcome is not Outcome.NOT_TELEHEALTH:
        out.append("The provider must also meet (not checked on the claim):")
        out.extend(f"  - {a.text}" for a in decision.attestations)
    return "\n".join(out)
