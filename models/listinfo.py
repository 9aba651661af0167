"""What a risk list is, in plain words: its cohort, its purpose and honest probabilities (fi, sv, en).

Below both :mod:`models.scoring` (which records the description in a list's
sidecar and Parquet metadata) and :mod:`models.risklists` (which reads it back
for reports); imports neither.

- :func:`cohort_text` says whom a target's cohort holds, built from its keys.
- :func:`list_kind` and :func:`list_description`: a rising-risk list (not yet
  heavy users, for preventive work), a whole-population list (capacity
  planning) or another cohort.
- :func:`probability_text` shows a calibration boundary value as "over 90 %",
  never as the capped number.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

LANGS = ("fi", "sv", "en")

#: Texts of the lists' descriptions (cohort, purpose, flags and bounded probabilities), per language.
LIST_TEXT = {
    "fi": {"everyone": "kaikki alueen asukkaat listan päivänä", "lead": "Listalla",
           "age_range": "{lo}–{hi}-vuotiaat", "age_min": "{lo} vuotta täyttäneet", "age_max": "alle {hi1}-vuotiaat",
           "diagnoses": "todettu {groups}", "services": "{areas} asiakkaana {window}",
           "window_days": "edeltäneiden {days} päivän aikana", "window_ever": "joskus aiemmin",
           "prior_cost": "ei kuulunut niihin {top:g} %:iin asukkaista, joiden palvelukustannukset olivat "
                         "suurimmat edeltäneiden {days} päivän aikana",
           "ongoing": "ei listan päivänä {services}", "or": " tai ",
           "rising": "Nousevan riskin lista: asiakkaat, jotka eivät vielä ole paljon palveluja käyttäviä ja "
                     "joita varhainen, ennaltaehkäisevä tuki voi vielä tavoittaa.",
           "capacity": "Kapasiteetin suunnitteluun: lista sisältää myös asiakkaat, jotka jo käyttävät paljon "
                       "palveluja tai ovat tehostetuissa palveluissa (merkitty). Ennaltaehkäisevään työhön "
                       "käytä nousevan riskin listaa.",
           "over": "yli {limit}", "under": "alle {limit}",
           "observed": "kalibroinnissa toteutui {rate}",
           "intensive": "tehostetuissa palveluissa", "prior": "paljon palveluja käyttänyt",
           "flag": "Jo nyt", "and": "ja"},
    "sv": {"everyone": "alla invånare i välfärdsområdet på listans datum", "lead": "På listan",
           "age_range": "i åldern {lo}–{hi} år", "age_min": "{lo} år eller äldre", "age_max": "under {hi1} år",
           "diagnoses": "med diagnosen {groups}", "services": "med kontakt med {areas} {window}",
           "window_days": "under de senaste {days} dagarna", "window_ever": "någon gång tidigare",
           "prior_cost": "hör inte till de {top:g} % av invånarna med de högsta kostnaderna för tjänster under "
                         "de senaste {days} dagarna",
           "ongoing": "inte i {services} på listans datum", "or": " eller ",
           "rising": "Lista över stigande risk: klienter som ännu inte är storanvändare och som tidigt, "
                     "förebyggande stöd ännu kan nå.",
           "capacity": "För kapacitetsplanering: listan omfattar också klienter som redan är storanvändare "
                       "eller får intensiva tjänster (markerade). Använd listan över stigande risk för "
                       "förebyggande arbete.",
           "over": "över {limit}", "under": "under {limit}",
           "observed": "i kalibreringen {rate}",
           "intensive": "i intensiva tjänster", "prior": "storanvändare", "flag": "Redan nu", "and": "och"},
    "en": {"everyone": "every resident of the county at the list date", "lead": "On this list",
           "age_range": "aged {lo}–{hi}", "age_min": "aged {lo} or over", "age_max": "aged under {hi1}",
           "diagnoses": "with a recorded diagnosis of {groups}", "services": "with a contact with {areas} {window}",
           "window_days": "in the last {days} days", "window_ever": "at some time before",
           "prior_cost": "not among the {top:g} % of residents with the highest service costs in the last "
                         "{days} days",
           "ongoing": "not in {services} at the list date", "or": " or ",
           "rising": "Rising-risk list: clients who are not yet heavy users of services, whom early, preventive "
                     "support can still reach.",
           "capacity": "For capacity planning: this list also holds clients who are already heavy users or "
                       "receive intensive services (marked). Use the rising-risk list for preventive work.",
           "over": "over {limit}", "under": "under {limit}",
           "observed": "observed {rate} in calibration",
           "intensive": "in intensive services", "prior": "already a heavy user", "flag": "Already", "and": "and"},
}

#: Episode services in the words of "not in ... at the list date" (fi: inessive).
_EPISODE_WORDS = {
    "housing_24h": {"fi": "ympärivuorokautisessa palveluasumisessa", "sv": "serviceboende med heldygnsomsorg",
                    "en": "24-hour service housing"},
    "inpatient": {"fi": "osastohoidossa", "sv": "slutenvård", "en": "inpatient care"},
}


def _percent(value: float) -> str:
    """A probability as a percentage with the precision it deserves: 95 %, 2 %, 0.1 %."""
    percent = 100 * value
    text = f"{percent:.0f}" if percent >= 1 and abs(percent - round(percent)) < 1e-6 else f"{percent:.1f}"
    return f"{text} %"


def cohort_text(cohort, lang: str = "fi") -> str:
    """Whom a target's cohort holds, in plain words in ``lang`` (fi, sv, en).

    Built from the cohort's keys (``features.targets.spec.Cohort``): ages,
    diagnosis groups, recent services, the prior-cost bound and the intensive
    episodes excluded at the list date; the whole population when none is set.

    Examples
    --------
    The ``rising_high_use`` cohort in English: "On this list: not among the
    10 % of residents with the highest service costs in the last 365 days;
    not in 24-hour service housing or inpatient care at the list date."
    """
    from features.histories.dictionary import GROUPS, SERVICES

    if lang not in LIST_TEXT:
        raise ValueError(f"language must be one of {', '.join(LIST_TEXT)}, got {lang!r}")
    t = LIST_TEXT[lang]
    parts = []
    if cohort is not None:
        lo, hi = cohort.min_age, cohort.max_age
        if lo is not None and hi is not None:
            parts.append(t["age_range"].format(lo=lo, hi=hi))
        elif lo is not None:
            parts.append(t["age_min"].format(lo=lo))
        elif hi is not None:
            parts.append(t["age_max"].format(hi1=hi + 1))
        if cohort.diagnosis_groups:
            names = [GROUPS.get(g, {}).get(lang, g) for g in cohort.diagnosis_groups]
            parts.append(t["diagnoses"].format(groups=t["or"].join(names)))
        if cohort.services_any:
            areas = t["or"].join(SERVICES[s][lang][1] if s in SERVICES else s for s in cohort.services_any)
            window = (t["window_days"].format(days=cohort.lookback_days) if cohort.lookback_days
                      else t["window_ever"])
            parts.append(t["services"].format(areas=areas, window=window))
        if cohort.max_prior_cost_quantile is not None:
            top = round(100 * (1 - cohort.max_prior_cost_quantile), 6)
            parts.append(t["prior_cost"].format(top=top, days=cohort.prior_window_days))
        if cohort.exclude_ongoing:
            words = [_EPISODE_WORDS.get(s, {}).get(lang, s) for s in cohort.exclude_ongoing]
            parts.append(t["ongoing"].format(services=t["or"].join(words)))
    return f"{t['lead']}: {'; '.join(parts) if parts else t['everyone']}."


def list_kind(cohort) -> str:
    """``rising`` (the cohort leaves out last year's heavy users and everyone in intensive care),
    ``all`` (the whole population: persistent and new heavy use) or ``other``."""
    from features.targets.spec import Cohort, intensive_services

    if cohort is None or cohort == Cohort():
        return "all"
    if cohort.max_prior_cost_quantile is not None and set(intensive_services()) <= set(cohort.exclude_ongoing):
        return "rising"
    return "other"


def list_description(target: str, cohort) -> dict:
    """What a list is, for its sidecar, its Parquet metadata and its reports.

    Returns
    -------
    dict
        ``target``, ``list_kind`` (:func:`list_kind`), ``cohort`` (``{lang: text}``,
        :func:`cohort_text`) and ``purpose`` (``{lang: text}``: rising risk for
        preventive work, or capacity planning for a whole-population list; empty
        texts for other cohorts).
    """
    kind = list_kind(cohort)
    key = {"rising": "rising", "all": "capacity"}.get(kind)
    return {"target": target, "list_kind": kind,
            "cohort": {lang: cohort_text(cohort, lang) for lang in LANGS},
            "purpose": {lang: LIST_TEXT[lang][key] if key else "" for lang in LANGS}}


def probability_text(probability: float, bound=None, limit: float = float("nan"), observed: float = float("nan"),
                     lang: str = "fi") -> str:
    """A probability as a case manager reads it; a calibration boundary value never as the number itself.

    Parameters
    ----------
    probability
        The calibrated probability.
    bound
        ``"over"`` or ``"under"`` for a calibration boundary bin (the list's
        ``probability_bound``), else None/missing: a measured value, shown as "34.5 %".
    limit
        The bound shown ("over 90 %"): the list's ``probability_limit``.
    observed
        The outcome rate of the bin in calibration (``bin_observed_rate``),
        added in brackets when known.

    Examples
    --------
    >>> probability_text(0.999, "over", 0.9, 0.97, "en")
    'over 90 % (observed 97 % in calibration)'
    >>> probability_text(0.3456, None, lang="en")
    '34.6 %'
    """
    if lang not in LIST_TEXT:
        raise ValueError(f"language must be one of {', '.join(LIST_TEXT)}, got {lang!r}")
    t = LIST_TEXT[lang]
    if bound is None or bound is pd.NA or (isinstance(bound, float) and np.isnan(bound)) or bound == "":
        return f"{100 * probability:.1f} %"
    if bound not in ("over", "under"):
        raise ValueError(f"bound must be 'over' or 'under', got {bound!r}")
    text = t[bound].format(limit=_percent(limit))
    if observed is not None and observed is not pd.NA and np.isfinite(observed):
        text += f" ({t['observed'].format(rate=_percent(round(observed, 2)))})"
    return text
