"""The feature dictionary: a plain-language, templated label for every feature in fi, sv and en.

Templates take the feature's value (``"{value:.0f} päivystyskäyntiä viimeisen
6 kuukauden aikana"``), so an explanation such as a SHAP reason reads as a
sentence: ``describe("emergency_count_180d", 3, "en")`` gives
``"3 emergency visits in the last 6 months"``. :func:`fill` is the one way a
template gets its value: it accepts every format a template uses, and a
missing or non-finite value reads ``"<label>: no record"`` instead of an
unfilled ``{value:+.1f}`` or a ``nan``.
"""
from __future__ import annotations

import math
import numbers
import re

import pandas as pd

from features.contract.tables import MEASUREMENTS
from features.contract.tables import HEALTH_SERVICES, SERVICE_LINES, SOCIAL_SERVICES
from features.histories.spec import FeatureColumn, FeatureSpec, load_spec, reason_type

LANGS = ("fi", "sv", "en")

#: Per service line: (count noun, area) in en; (count noun in partitive, area in genitive) in fi; sv like en.
SERVICES: dict[str, dict[str, tuple[str, str]]] = {
    "primary_care_visit": {"en": ("primary-care visits", "primary care"),
                           "fi": ("terveysasemakäyntiä", "perusterveydenhuollon"),
                           "sv": ("besök i primärvården", "primärvården")},
    "remote_contact": {"en": ("remote contacts (phone, chat, Omaolo)", "remote services"),
                       "fi": ("etäasiointikertaa", "etäpalvelujen"),
                       "sv": ("distanskontakter", "distanstjänsterna")},
    "emergency": {"en": ("emergency visits", "emergency care"), "fi": ("päivystyskäyntiä", "päivystyksen"),
                  "sv": ("jourbesök", "jourvården")},
    "specialist_outpatient": {"en": ("specialist outpatient visits", "specialist outpatient care"),
                              "fi": ("erikoissairaanhoidon avokäyntiä", "erikoissairaanhoidon avohoidon"),
                              "sv": ("besök i specialiserad öppenvård", "den specialiserade öppenvården")},
    "inpatient": {"en": ("inpatient stays", "inpatient care"), "fi": ("osastojaksoa", "osastohoidon"),
                  "sv": ("vårdperioder på avdelning", "slutenvården")},
    "home_care": {"en": ("home-care visits", "home care"), "fi": ("kotihoidon käyntiä", "kotihoidon"),
                  "sv": ("hemvårdsbesök", "hemvården")},
    "housing_24h": {"en": ("periods in 24-hour service housing", "24-hour service housing"),
                    "fi": ("ympärivuorokautisen palveluasumisen jaksoa", "ympärivuorokautisen palveluasumisen"),
                    "sv": ("perioder i serviceboende med heldygnsomsorg", "serviceboendet med heldygnsomsorg")},
    "mental_health_substance": {"en": ("mental-health or substance-use contacts",
                                       "mental-health and substance-use services"),
                                "fi": ("mielenterveys- tai päihdekäyntiä", "mielenterveys- ja päihdepalvelujen"),
                                "sv": ("kontakter inom mentalvård eller missbrukarvård",
                                       "mentalvården och missbrukarvården")},
    "social_work": {"en": ("social-work meetings", "social work"), "fi": ("sosiaalityön tapaamista", "sosiaalityön"),
                    "sv": ("möten inom socialt arbete", "det sociala arbetet")},
    "disability_services": {"en": ("disability-service contacts", "disability services"),
                            "fi": ("vammaispalvelujen käyntiä", "vammaispalvelujen"),
                            "sv": ("kontakter inom handikappservicen", "handikappservicen")},
    "rehabilitation": {"en": ("rehabilitation visits", "rehabilitation"), "fi": ("kuntoutuskäyntiä", "kuntoutuksen"),
                       "sv": ("rehabiliteringsbesök", "rehabiliteringen")},
    "oral_health": {"en": ("oral-health visits", "oral health care"),
                    "fi": ("suun terveydenhuollon käyntiä", "suun terveydenhuollon"),
                    "sv": ("besök inom munhälsovården", "munhälsovården")},
    "child_family": {"en": ("child and family service contacts", "child and family services"),
                     "fi": ("lapsiperhepalvelujen käyntiä", "lapsiperhepalvelujen"),
                     "sv": ("kontakter inom barn- och familjetjänsterna", "barn- och familjetjänsterna")},
}

GROUPS: dict[str, dict[str, str]] = {
    "diabetes": {"en": "diabetes", "fi": "diabetes", "sv": "diabetes"},
    "hypertension": {"en": "hypertension", "fi": "verenpainetauti", "sv": "högt blodtryck"},
    "coronary": {"en": "coronary heart disease", "fi": "sepelvaltimotauti", "sv": "kranskärlssjukdom"},
    "heart_failure": {"en": "heart failure", "fi": "sydämen vajaatoiminta", "sv": "hjärtsvikt"},
    "stroke": {"en": "stroke", "fi": "aivoinfarkti", "sv": "stroke"},
    "copd": {"en": "COPD", "fi": "keuhkoahtaumatauti", "sv": "KOL"},
    "asthma": {"en": "asthma", "fi": "astma", "sv": "astma"},
    "ckd": {"en": "chronic kidney disease", "fi": "krooninen munuaistauti", "sv": "kronisk njursjukdom"},
    "dementia": {"en": "dementia", "fi": "muistisairaus", "sv": "demens"},
    "cancer": {"en": "cancer", "fi": "syöpä", "sv": "cancer"},
    "substance_use": {"en": "substance-use disorder", "fi": "päihdehäiriö", "sv": "missbruk"},
    "mental_health": {"en": "mental-health disorder", "fi": "mielenterveyden häiriö", "sv": "psykisk störning"},
}

MEASURE_NAMES: dict[str, dict[str, str]] = {
    "hba1c": {"en": "HbA1c", "fi": "HbA1c", "sv": "HbA1c"},
    "bmi": {"en": "body-mass index", "fi": "painoindeksi", "sv": "BMI"},
    "sbp": {"en": "systolic blood pressure", "fi": "systolinen verenpaine", "sv": "systoliskt blodtryck"},
    "dbp": {"en": "diastolic blood pressure", "fi": "diastolinen verenpaine", "sv": "diastoliskt blodtryck"},
    "ldl": {"en": "LDL cholesterol", "fi": "LDL-kolesteroli", "sv": "LDL-kolesterol"},
    "egfr": {"en": "eGFR", "fi": "eGFR", "sv": "eGFR"},
}
SCALE_NAMES = {"adl_h": "ADL-H", "iadl": "IADL", "cps": "CPS", "maple": "MAPLe", "chess": "CHESS", "drs": "DRS"}

DEMOGRAPHIC = {
    "age": {"en": "age {value:.0f}", "fi": "ikä {value:.0f} vuotta", "sv": "ålder {value:.0f} år"},
    "sex": {"en": "sex {value}", "fi": "sukupuoli {value}", "sv": "kön {value}"},
    "language": {"en": "language {value}", "fi": "asiointikieli {value}", "sv": "språk {value}"},
    "municipality": {"en": "municipality {value}", "fi": "kotikunta {value}", "sv": "hemkommun {value}"},
    "unit": {"en": "care unit {value}", "fi": "vastuuyksikkö {value}", "sv": "ansvarsenhet {value}"},
}


#: What a sentence says when its feature has no value (no record, or not a finite number).
NO_RECORD = {"fi": "ei tietoa", "sv": "uppgift saknas", "en": "no record"}

#: A template's placeholder: ``{value}`` or ``{value:<format spec>}``.
PLACEHOLDER = re.compile(r"\{value(?::(?P<spec>[^{}]*))?\}")


def _no_value(value) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return not math.isfinite(float(value))
    return False


def _formatted(value, spec: str | None) -> str:
    try:
        return format(value, spec or "")
    except (ValueError, TypeError):  # e.g. a text value where the template expects a number
        return str(value)


def fill(template: str, value, lang: str) -> str:
    """The sentence of a dictionary template for one value.

    Parameters
    ----------
    template
        A ``template_<lang>`` text with ``{value}`` or ``{value:<spec>}``
        placeholders (``{value:+.1f}``, ``{value:,.0f}``, ``{value:.0%}``, …).
    value
        The feature's value. None, NA, NaN and ±inf have no number to show:
        the sentence is the template's label followed by ``": no record"``
        (``"ei tietoa"``, ``"uppgift saknas"``).
    lang
        fi, sv or en.

    Returns
    -------
    str
        The sentence; never an unfilled placeholder, ``nan`` or ``inf``.
    """
    if _no_value(value):
        label = " ".join(PLACEHOLDER.sub("", template).split()).strip(" :")
        return f"{label}: {NO_RECORD[lang]}"
    return PLACEHOLDER.sub(lambda m: _formatted(value, m.group("spec")), template)


def period(days: int, lang: str) -> str:
    """``"6 months"`` / ``"6 kuukauden"`` / ``"6 månaderna"`` for a window of ``days``."""
    months = {30: 1, 60: 2, 90: 3, 180: 6, 270: 9, 365: 12, 545: 18}
    if days in months:
        n, unit = months[days], {"en": "months", "fi": "kuukauden", "sv": "månaderna"}
    elif days % 365 == 0:
        n, unit = days // 365, {"en": "years", "fi": "vuoden", "sv": "åren"}
    else:
        n, unit = days, {"en": "days", "fi": "päivän", "sv": "dagarna"}
    if n == 1 and lang == "en":
        return unit["en"][:-1]
    return f"{n} {unit[lang]}"


def _last(lang: str, p: str) -> str:
    return {"en": f"in the last {p}", "fi": f"viimeisen {p} aikana", "sv": f"under de senaste {p}"}[lang]


def _name(table: dict, key: str, lang: str) -> str:
    return table.get(key, {}).get(lang, key.replace("_", " "))


#: Count noun and area of the service sets a use-change group may name (single lines use SERVICES).
SERVICE_SETS: dict[str, dict[str, tuple[str, str]]] = {
    "all": {"en": ("service contacts", "services"), "fi": ("palvelukontaktia", "palvelujen"),
            "sv": ("kontakter med tjänsterna", "tjänsterna")},
    "health": {"en": ("health-care contacts", "health care"), "fi": ("terveyspalvelujen kontaktia", "terveyspalvelujen"),
               "sv": ("kontakter inom hälsovården", "hälsovården")},
    "social": {"en": ("social-care contacts", "social care"), "fi": ("sosiaalipalvelujen kontaktia", "sosiaalipalvelujen"),
               "sv": ("kontakter inom socialvården", "socialvården")},
}


def _group_words(services: tuple[str, ...], lang: str) -> tuple[str, str]:
    """(count noun, area) of a group of service lines: one line's own words, a named set's, or the lines listed."""
    if len(services) == 1:
        return SERVICES[services[0]][lang]
    sets = {"all": set(SERVICE_LINES), "health": set(HEALTH_SERVICES), "social": set(SOCIAL_SERVICES)}
    for name, members in sets.items():
        if set(services) == members:
            return SERVICE_SETS[name][lang]
    areas = [SERVICES[s][lang][1] for s in services]
    joined = ", ".join(areas[:-1]) + {"en": " and ", "fi": " ja ", "sv": " och "}[lang] + areas[-1]
    noun = {"en": f"contacts with {joined}", "fi": f"{joined} kontaktia", "sv": f"kontakter inom {joined}"}[lang]
    return noun, joined


def _earlier(days: int, lang: str) -> str:
    """``"a year earlier"`` / ``"vuotta aiemmin"`` / ``"ett år tidigare"`` for a lag of ``days``."""
    if days == 365:
        return {"en": "a year earlier", "fi": "vuotta aiemmin", "sv": "ett år tidigare"}[lang]
    return {"en": f"{days} days earlier", "fi": f"{days} päivää aiemmin", "sv": f"{days} dagar tidigare"}[lang]


def _change_template(c: FeatureColumn, lang: str) -> str:
    """Templates of the change features (use against a year earlier, first uses, new diagnoses, RAI steps)."""
    k = c.kind
    p = period(c.window, lang) if c.window else ""
    last = _last(lang, p) if c.window else ""
    before = {"en": f"in the {period(c.lag, lang)} before", "fi": f"edeltävän {period(c.lag, lang)} aikana",
              "sv": f"under de föregående {period(c.lag, lang)}"}[lang] if c.lag else ""
    if k == "use_change":
        count, area = _group_words(c.services, lang)
        earlier = _earlier(c.lag, lang)
        if c.agg == "count":
            return {"en": f"{{value:+.0f}} {count} {last} against the same period {earlier}",
                    "fi": f"{{value:+.0f}} {count} {last} verrattuna samaan jaksoon {earlier}",
                    "sv": f"{{value:+.0f}} {count} {last} jämfört med samma period {earlier}"}[lang]
        return {"en": f"costs of {area} changed by {{value:+,.0f}} € {last} against the same period {earlier}",
                "fi": f"{area} kustannukset muuttuneet {{value:+,.0f}} € {last} verrattuna samaan jaksoon {earlier}",
                "sv": f"kostnaderna för {area} har ändrats med {{value:+,.0f}} € {last} jämfört med samma period "
                      f"{earlier}"}[lang]
    if k == "first_use":
        count, area = SERVICES[c.service][lang]
        return {"en": f"{{value:.0f}} first-time {count} {last} (no {area} {before})",
                "fi": f"{{value:.0f}} ensikertaista {count} {last} (ei {area} käyttöä {before})",
                "sv": f"{{value:.0f}} {count} för första gången {last} (inga kontakter med {area} {before})"}[lang]
    if k == "new_dx":
        g = _name(GROUPS, c.subject, lang)
        return {"en": f"{{value:.0f}} new diagnosis of {g} {last}, not recorded {before}",
                "fi": f"{{value:.0f}} uusi diagnoosi: {g} {last}, ei kirjattu {before}",
                "sv": f"{{value:.0f}} ny diagnos: {g} {last}, inte registrerad {before}"}[lang]
    if k == "new_dx_count":
        return {"en": f"{{value:.0f}} new diagnosis groups {last}, not recorded {before}",
                "fi": f"{{value:.0f}} uutta sairausryhmää diagnosoitu {last}, ei kirjattu {before}",
                "sv": f"{{value:.0f}} nya diagnosgrupper {last}, inte registrerade {before}"}[lang]
    s = SCALE_NAMES.get(c.subject, c.subject)  # rai_step
    return {"en": f"RAI {s} changed by {{value:+.0f}} since the previous assessment",
            "fi": f"RAI {s} muuttunut {{value:+.0f}} edellisestä arvioinnista",
            "sv": f"RAI {s} har ändrats med {{value:+.0f}} sedan föregående bedömning"}[lang]


def _template(c: FeatureColumn, spec: FeatureSpec, lang: str) -> str:
    k = c.kind
    if k in DEMOGRAPHIC:
        return DEMOGRAPHIC[k][lang]
    if k in ("use_change", "first_use", "new_dx", "new_dx_count", "rai_step"):
        return _change_template(c, lang)
    last = _last(lang, period(c.window, lang)) if c.window else ""
    if c.service is not None:
        count, area = SERVICES[c.service][lang]
        t = {
            "count": {"en": f"{{value:.0f}} {count} {last}", "fi": f"{{value:.0f}} {count} {last}",
                      "sv": f"{{value:.0f}} {count} {last}"},
            "cost": {"en": f"€{{value:,.0f}} of {area} {last}", "fi": f"{area} kustannukset {{value:,.0f}} € {last}",
                     "sv": f"{{value:,.0f}} € för {area} {last}"},
            "days": {"en": f"{{value:.0f}} days in {area} {last}", "fi": f"{{value:.0f}} {area} hoitopäivää {last}",
                     "sv": f"{{value:.0f}} vårddagar i {area} {last}"},
            "units": {"en": f"{area} from {{value:.0f}} different units {last}",
                      "fi": f"{area} palveluja {{value:.0f}} eri yksiköstä {last}",
                      "sv": f"{area} från {{value:.0f}} olika enheter {last}"},
            "professionals": {"en": f"{area} from {{value:.0f}} different professionals {last}",
                              "fi": f"{area} palveluja {{value:.0f}} eri ammattilaiselta {last}",
                              "sv": f"{area} från {{value:.0f}} olika yrkespersoner {last}"},
            "days_since_last": {"en": f"{{value:.0f}} days since the last use of {area}",
                                "fi": f"{{value:.0f}} päivää edellisestä {area} käytöstä",
                                "sv": f"{{value:.0f}} dagar sedan {area} senast användes"},
        }[k]
        return t[lang]
    if k in ("measurement_last", "measurement_change", "measurement_days_since"):
        m, unit = _name(MEASURE_NAMES, c.subject, lang), MEASUREMENTS[c.subject][0]
        return {
            "measurement_last": {"en": f"latest {m} {{value:.1f}} {unit}", "fi": f"viimeisin {m} {{value:.1f}} {unit}",
                                 "sv": f"senaste {m} {{value:.1f}} {unit}"},
            "measurement_change": {"en": f"{m} changed by {{value:+.1f}} {unit} since the previous test",
                                   "fi": f"{m} muuttunut {{value:+.1f}} {unit} edellisestä mittauksesta",
                                   "sv": f"{m} har ändrats med {{value:+.1f}} {unit} sedan föregående mätning"},
            "measurement_days_since": {"en": f"{{value:.0f}} days since the last {m} test",
                                       "fi": f"{{value:.0f}} päivää edellisestä {m}-mittauksesta",
                                       "sv": f"{{value:.0f}} dagar sedan senaste {m}-mätning"},
        }[k][lang]
    if k in ("rai_last", "rai_change"):
        s = SCALE_NAMES.get(c.subject, c.subject)
        return {
            "rai_last": {"en": f"latest RAI {s} score {{value:.0f}}", "fi": f"viimeisin RAI {s} -pistemäärä {{value:.0f}}",
                         "sv": f"senaste RAI {s}-poäng {{value:.0f}}"},
            "rai_change": {"en": f"RAI {s} changed by {{value:+.0f}} {last}", "fi": f"RAI {s} muuttunut {{value:+.0f}} {last}",
                           "sv": f"RAI {s} har ändrats med {{value:+.0f}} {last}"},
        }[k][lang]
    if k == "dx":
        g = _name(GROUPS, c.subject, lang)
        return {"en": f"diagnosis of {g} recorded", "fi": f"kirjattu diagnoosi: {g}", "sv": f"registrerad diagnos: {g}"}[lang]
    if k == "continuity":
        areas = " / ".join(SERVICES[s][lang][1] for s in spec.continuity.services)
        who = {"unit": {"en": "the same unit", "fi": "samassa yksikössä", "sv": "samma enhet"},
               "professional": {"en": "the same professional", "fi": "saman ammattilaisen luona",
                                "sv": "samma yrkesperson"}}[c.subject][lang]
        return {"en": f"{{value:.0%}} of {areas} contacts with {who} {last}",
                "fi": f"{{value:.0%}} {areas} käynneistä {who} {last}",
                "sv": f"{{value:.0%}} av kontakterna i {areas} med {who} {last}"}[lang]
    return {
        "total_count": {"en": f"{{value:.0f}} service contacts in total {last}",
                        "fi": f"yhteensä {{value:.0f}} palvelukontaktia {last}",
                        "sv": f"totalt {{value:.0f}} kontakter med tjänsterna {last}"},
        "total_cost": {"en": f"€{{value:,.0f}} of services in total {last}",
                       "fi": f"palvelujen kustannukset yhteensä {{value:,.0f}} € {last}",
                       "sv": f"kostnader för tjänster totalt {{value:,.0f}} € {last}"},
        "service_lines": {"en": f"{{value:.0f}} different service lines used {last}",
                          "fi": f"{{value:.0f}} eri palvelua käytetty {last}",
                          "sv": f"{{value:.0f}} olika tjänsteområden använda {last}"},
        "social_and_health": {"en": f"used both social and health services {last}",
                              "fi": f"käyttänyt sekä sosiaali- että terveyspalveluja {last}",
                              "sv": f"använt både social- och hälsotjänster {last}"},
        "chronic_conditions": {"en": "{value:.0f} chronic conditions", "fi": "{value:.0f} pitkäaikaissairautta",
                               "sv": "{value:.0f} kroniska sjukdomar"},
        "charlson_index": {"en": "Charlson comorbidity index {value:.0f}",
                           "fi": "Charlsonin komorbiditeetti-indeksi {value:.0f}",
                           "sv": "Charlsons komorbiditetsindex {value:.0f}"},
    }[k][lang]


def feature_dictionary(spec: FeatureSpec | None = None) -> pd.DataFrame:
    """One row per feature: name, kind, reason type, dtype, window, and a ``{value}`` template in fi, sv and en.

    Returns
    -------
    pandas.DataFrame
        Columns ``feature, kind, reason_type, dtype, window_days, template_fi, template_sv, template_en``,
        in the feature table's column order. ``reason_type`` is ``change`` (a
        trajectory: use against a year earlier, a first emergency visit, a new
        home-care start, a new diagnosis, a change in an RAI scale or a
        measurement), ``level`` (use, cost, conditions, latest values) or
        ``demographic`` (age, sex, language, municipality, unit); see
        :func:`features.histories.spec.reason_type`.
    """
    spec = spec or load_spec()
    rows = []
    for c in spec.columns():
        rows.append({"feature": c.name, "kind": c.kind, "reason_type": reason_type(c.kind), "dtype": c.dtype,
                     "window_days": c.window,
                     **{f"template_{lang}": _template(c, spec, lang) for lang in LANGS}})
    out = pd.DataFrame(rows)
    out["window_days"] = out["window_days"].astype("Int64")
    return out


def describe(feature: str, value, lang: str = "fi", spec: FeatureSpec | None = None) -> str:
    """The sentence for one feature value, e.g. ``"3 emergency visits in the last 6 months"``.

    Raises
    ------
    KeyError
        If ``feature`` is not in the spec or ``lang`` is not one of fi, sv, en.
    """
    if lang not in LANGS:
        raise KeyError(f"language {lang!r} not supported; use one of {LANGS}")
    spec = spec or load_spec()
    cols = {c.name: c for c in spec.columns()}
    if feature not in cols:
        raise KeyError(f"unknown feature {feature!r}")
    return fill(_template(cols[feature], spec, lang), value, lang)
