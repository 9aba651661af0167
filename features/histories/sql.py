"""Compile a :class:`~features.histories.spec.FeatureSpec` to one SQL query as of an index date.

The query reads the registered tables ``clients``, ``events``, ``diagnoses``,
``measurements``, ``assessments`` and ``unit_rates`` (see
:func:`unit_rates_frame`) and returns one row per client in the population at
T. It is written in DuckDB's dialect using only constructs that sqlglot
transpiles to Spark SQL (CTEs, CASE, GROUP BY, ROW_NUMBER, DATE_DIFF,
GREATEST/LEAST, date literals): no PIVOT, QUALIFY, list or struct functions.
The index date and every window edge are emitted as date literals, so the same
text runs unchanged for any engine. Boundary rules: docs/features.md.
"""
from __future__ import annotations

import pandas as pd

from features.contract.tables import EPISODE_SERVICES, HEALTH_SERVICES, SOCIAL_SERVICES
from features.contract.costs import UnitCost
from features.histories.spec import FeatureColumn, FeatureSpec

#: Rate-table key for a service's base rate (matches no real professional).
BASE_RATE = "*"
#: The table of client ids a restricted query keeps (see ``compile_features(clients=…)``).
SELECTED = "selected_clients"


def unit_rates_frame(costs: dict[str, UnitCost]) -> pd.DataFrame:
    """The unit-cost table as rows ``service, professional, eur, per_day`` for the ``unit_rates`` table.

    The base rate of a service has professional ``"*"``; ``by_professional``
    overrides add one row each (a role such as ``doctor`` or an exact value).
    """
    rows = []
    for service, c in costs.items():
        rows.append((service, BASE_RATE, c.eur, c.per == "day"))
        rows.extend((service, who, eur, c.per == "day") for who, eur in c.by_professional.items())
    return pd.DataFrame(rows, columns=["service", "professional", "eur", "per_day"])


def _d(ts: pd.Timestamp) -> str:
    return f"DATE '{ts:%Y-%m-%d}'"


def _q(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _in(values) -> str:
    return "(" + ", ".join(_q(v) for v in sorted(values)) + ")"


def code_in_ranges_sql(col: str, ranges) -> str:
    """SQL twin of :func:`features.contract.codes.code_in_ranges`: the 3-character category of ``col`` in a range.

    Parameters
    ----------
    col
        A text column or SQL expression holding codes.
    ranges
        Inclusive category bounds such as ``("E10", "E14")``; one letter matches a whole ICPC-2 chapter.

    Returns
    -------
    str
        A SQL condition (``FALSE`` for no ranges).
    """
    parts = []
    for lo, hi in ranges:
        lower = lo if len(lo) >= 3 else lo + "00"
        upper = hi if len(hi) >= 3 else hi + "99"
        parts.append(f"(SUBSTR({col}, 1, 3) BETWEEN {_q(lower)} AND {_q(upper)})")
    return " OR ".join(parts) if parts else "FALSE"


def _charlson_cond(col: str, cat) -> str:
    parts = [f"{col} LIKE {_q(p + '%')}" for p in cat.prefixes]
    parts += [f"(SUBSTR({col}, 1, {len(lo)}) BETWEEN {_q(lo)} AND {_q(hi)})" for lo, hi in cat.ranges]
    return " OR ".join(parts)


def charlson_expression(spec: FeatureSpec, flag) -> str:
    """The weighted Charlson sum from per-category 0/1 expressions ``flag(name)``, rules applied."""
    ch = spec.charlson
    flags = {c.name: flag(c.name) for c in ch.categories}
    for needed, then in ch.implies:
        flags[then] = f"GREATEST({flags[then]}, LEAST({', '.join(flags[n] for n in needed)}))"
    final = dict(flags)
    for high, lows in ch.supersedes:
        for low in lows:
            final[low] = f"({final[low]} * (1 - {flags[high]}))"
    terms = [f"{c.weight} * {final[c.name]}" for c in ch.categories if c.weight]
    return " + ".join(terms) if terms else "0"


class _Compiler:
    def __init__(self, spec: FeatureSpec, as_of, has_moves: tuple[bool, bool], clients: str | None = None):
        self.spec = spec
        # with a table of client ids, every table read keeps only their rows (a semi-join)
        self.keep = f" AND client_id IN (SELECT client_id FROM {clients})" if clients else ""
        self.as_of = pd.Timestamp(as_of).normalize()             # the index date T
        self.as_of_sql = _d(self.as_of)                            # T as a SQL DATE literal
        self.day_before_sql = _d(self.as_of - pd.Timedelta(days=1))  # T - 1 day: where running episodes are cut
        self.has_moves = has_moves
        self.cols = spec.columns()

    def window_start_sql(self, days: int) -> str:
        """T - ``days`` as a SQL DATE literal: the first day of a look-back window."""
        return _d(self.as_of - pd.Timedelta(days=days))

    # -- population -------------------------------------------------------
    def population(self) -> str:
        cond = [f"CAST(birth_date AS DATE) < {self.as_of_sql}",
                f"(death_date IS NULL OR CAST(death_date AS DATE) >= {self.as_of_sql})"]
        if self.has_moves[0]:
            cond.append(f"(moved_in IS NULL OR CAST(moved_in AS DATE) <= {self.as_of_sql})")
        if self.has_moves[1]:
            cond.append(f"(moved_out IS NULL OR CAST(moved_out AS DATE) > {self.as_of_sql})")
        moved_in = "CAST(moved_in AS DATE)" if self.has_moves[0] else "CAST(NULL AS DATE)"
        return (f"SELECT client_id, sex, language, municipality, unit, CAST(birth_date AS DATE) AS b, {moved_in} AS mi\n"
                "  FROM clients\n  WHERE " + "\n    AND ".join(cond) + self.keep)

    def no_history(self, days: int) -> str:
        """True when the client was born or moved in after T - ``days``: their use before is not on record."""
        start = self.window_start_sql(days)
        return f"(pop.b > {start} OR (pop.mi IS NOT NULL AND pop.mi > {start}))"

    def age(self) -> str:
        m, d = self.as_of.month, self.as_of.day
        return (f"({self.as_of.year} - YEAR(pop.b) - CASE WHEN MONTH(pop.b) > {m} "
                f"OR (MONTH(pop.b) = {m} AND DAY(pop.b) > {d}) THEN 1 ELSE 0 END)")

    # -- events -----------------------------------------------------------
    def event_ctes(self) -> list[tuple[str, str]]:
        spec, as_of_sql, day_before_sql = self.spec, self.as_of_sql, self.day_before_sql
        windows = spec.event_windows()
        unit_ws = sorted({w for a in spec.events if a.agg == "units" for w in a.windows})
        prof_ws = sorted({w for a in spec.events if a.agg == "professionals" for w in a.windows})
        epi = _in(EPISODE_SERVICES)
        ctes = [("ev", f"""SELECT client_id, service, unit, professional, cost_eur,
         CAST(start AS DATE) AS s, CAST("end" AS DATE) AS e
  FROM events
  WHERE CAST(start AS DATE) < {as_of_sql}{self.keep}""")]
        role = ("CASE WHEN STRPOS(ev.professional, '.') > 0 "
                "THEN SUBSTR(ev.professional, 1, STRPOS(ev.professional, '.') - 1) ELSE ev.professional END")
        # one pass over the events: the rate joins hit a table of a few dozen rows
        ctes.append(("rated", f"""SELECT ev.client_id, ev.service, ev.unit, ev.professional, ev.s,
         ev.service IN {epi} AS is_epi,
         (ev.e IS NULL OR ev.e >= {as_of_sql}) AS ongoing,
         CASE WHEN ev.e IS NULL OR ev.e >= {as_of_sql} THEN {day_before_sql} ELSE ev.e END AS eff_end,
         DATE_DIFF('day', ev.s, ev.e) + 1 AS total_days,
         COALESCE(rx.eur, rr.eur, rb.eur) AS rate,
         rb.per_day AS per_day,
         COALESCE(ev.cost_eur, COALESCE(rx.eur, rr.eur, rb.eur) * CASE
             WHEN rb.per_day AND ev.e IS NOT NULL AND ev.e < {as_of_sql} AND ev.e >= ev.s
             THEN DATE_DIFF('day', ev.s, ev.e) + 1 ELSE 1 END) AS cost_known
  FROM ev
  LEFT JOIN unit_rates rx ON rx.service = ev.service AND rx.professional = ev.professional
  LEFT JOIN unit_rates rr ON rr.service = ev.service AND rr.professional = {role}
  LEFT JOIN unit_rates rb ON rb.service = ev.service AND rb.professional = '{BASE_RATE}'"""))
        cols = ["client_id", "service", "unit", "professional", "s",
                "CASE WHEN is_epi THEN eff_end ELSE s END AS last_day"]
        for w in windows:
            lo = self.window_start_sql(w)
            days = f"GREATEST(DATE_DIFF('day', GREATEST(s, {lo}), eff_end) + 1, 0)"
            cols += [
                f"CASE WHEN s >= {lo} THEN 1 ELSE 0 END AS n_{w}",
                f"""CASE WHEN NOT is_epi THEN (CASE WHEN s >= {lo} THEN cost_known END)
              WHEN ongoing AND per_day THEN rate * {days}
              WHEN ongoing THEN (CASE WHEN s >= {lo} THEN rate ELSE 0 END)
              ELSE cost_known * {days} / total_days END AS c_{w}""",
                f"CASE WHEN is_epi THEN {days} ELSE 0 END AS d_{w}",
            ]
        for a, b in spec.event_spans():
            # the span [T - a, T - b): events started in it; episode days inside it up to its last day
            lo, last = self.window_start_sql(a), self.window_start_sql(b + 1)
            inside = f"s >= {lo} AND s <= {last}"
            days = f"GREATEST(DATE_DIFF('day', GREATEST(s, {lo}), LEAST(eff_end, {last})) + 1, 0)"
            cols += [
                f"CASE WHEN {inside} THEN 1 ELSE 0 END AS ns_{a}_{b}",
                f"""CASE WHEN NOT is_epi THEN (CASE WHEN {inside} THEN cost_known ELSE 0 END)
              WHEN ongoing AND per_day THEN rate * {days}
              WHEN ongoing THEN (CASE WHEN {inside} THEN rate ELSE 0 END)
              ELSE cost_known * {days} / total_days END AS cs_{a}_{b}""",
            ]
        ctes.append(("event_rows", "SELECT " + ",\n         ".join(cols) + "\n  FROM rated"))
        aggs = ["client_id", "service", "MAX(last_day) AS last_day"]
        for w in windows:
            aggs += [f"SUM(n_{w}) AS n_{w}", f"SUM(c_{w}) AS c_{w}", f"SUM(d_{w}) AS d_{w}"]
        for a, b in spec.event_spans():
            aggs += [f"SUM(ns_{a}_{b}) AS ns_{a}_{b}", f"SUM(COALESCE(cs_{a}_{b}, 0)) AS cs_{a}_{b}"]
        for w in unit_ws:
            aggs.append(f"COUNT(DISTINCT CASE WHEN s >= {self.window_start_sql(w)} THEN unit END) AS u_{w}")
        for w in prof_ws:
            aggs.append(f"COUNT(DISTINCT CASE WHEN s >= {self.window_start_sql(w)} THEN professional END) AS p_{w}")
        ctes.append(("by_service", "SELECT " + ",\n         ".join(aggs)
                     + "\n  FROM event_rows\n  GROUP BY client_id, service"))
        return ctes

    def event_pivot(self) -> tuple[str, list[FeatureColumn]]:
        short = {"count": "n", "cost": "c", "days": "d", "units": "u", "professionals": "p"}
        exprs, cols = ["client_id"], []
        for c in self.cols:
            if c.kind in short:
                e = f"SUM(CASE WHEN service = {_q(c.service)} THEN {short[c.kind]}_{c.window} END)"
            elif c.kind == "days_since_last":
                e = f"MIN(CASE WHEN service = {_q(c.service)} THEN DATE_DIFF('day', last_day, {self.as_of_sql}) END)"
            elif c.kind == "total_count":
                e = f"SUM(n_{c.window})"
            elif c.kind == "total_cost":
                e = f"SUM(c_{c.window})"
            elif c.kind == "service_lines":
                e = f"SUM(CASE WHEN n_{c.window} > 0 OR d_{c.window} > 0 THEN 1 ELSE 0 END)"
            elif c.kind == "social_and_health":
                used = f"(n_{c.window} > 0 OR d_{c.window} > 0)"
                e = (f"CASE WHEN MAX(CASE WHEN service IN {_in(SOCIAL_SERVICES)} AND {used} THEN 1 ELSE 0 END) = 1 "
                     f"AND MAX(CASE WHEN service IN {_in(HEALTH_SERVICES)} AND {used} THEN 1 ELSE 0 END) = 1 "
                     f"THEN 1 ELSE 0 END")
            elif c.kind in ("use_change", "first_use"):
                # the same aggregate over the recent span and the earlier span it is compared with
                x = "cs" if c.agg == "cost" else "ns"
                recent, earlier = (f"SUM(CASE WHEN service IN {_in(c.services)} THEN {x}_{a}_{b} ELSE 0 END)"
                                   for a, b in c.spans())
                e = (f"{recent} - {earlier}" if c.kind == "use_change"
                     else f"CASE WHEN {recent} > 0 AND {earlier} = 0 THEN 1 ELSE 0 END")
            else:
                continue
            exprs.append(f"{e} AS {c.name}")
            cols.append(c)
        return "SELECT " + ",\n         ".join(exprs) + "\n  FROM by_service\n  GROUP BY client_id", cols

    # -- diagnoses ----------------------------------------------------------
    @staticmethod
    def group_cond(g) -> str:
        """A diagnosis (``system``, dotless code ``c``) in group ``g``."""
        parts = []
        if g.icd10:
            parts.append(f"(system = 'ICD-10' AND ({code_in_ranges_sql('c', g.icd10)}))")
        if g.icpc2:
            parts.append(f"(system = 'ICPC-2' AND ({code_in_ranges_sql('c', g.icpc2)}))")
        return " OR ".join(parts) or "FALSE"

    def diagnosis_ctes(self) -> list[tuple[str, str]]:
        spec = self.spec
        cond = [f"CAST(date AS DATE) < {self.as_of_sql}", "code IS NOT NULL"]
        if spec.diagnosis_lookback_days:
            cond.append(f"CAST(date AS DATE) >= {self.window_start_sql(spec.diagnosis_lookback_days)}")
        exprs = ["client_id"]
        for g in spec.diagnosis_groups:
            exprs.append(f"MAX(CASE WHEN {self.group_cond(g)} THEN 1 ELSE 0 END) AS g_{g.name}")
        if spec.charlson is not None:
            for cat in spec.charlson.categories:
                exprs.append(f"MAX(CASE WHEN system = 'ICD-10' AND ({_charlson_cond('c', cat)}) "
                             f"THEN 1 ELSE 0 END) AS cc_{cat.name}")
        return [
            ("dx", "SELECT client_id, system, REPLACE(code, '.', '') AS c\n  FROM diagnoses\n  WHERE "
             + "\n    AND ".join(cond) + self.keep),
            ("dx_flags", "SELECT " + ",\n         ".join(exprs) + "\n  FROM dx\n  GROUP BY client_id"),
        ]

    def new_diagnosis_ctes(self) -> list[tuple[str, str]]:
        """Per group: recorded in [T - days, T) (``nr_``) and in the ``none_before_days`` before (``nb_``)."""
        n = self.spec.new_diagnoses
        lo = self.window_start_sql(n.days)
        exprs = ["client_id"]
        for g in n.groups:
            name, cond = g.name, self.group_cond(g)
            exprs += [f"MAX(CASE WHEN ({cond}) AND d >= {lo} THEN 1 ELSE 0 END) AS nr_{name}",
                      f"MAX(CASE WHEN ({cond}) AND d < {lo} THEN 1 ELSE 0 END) AS nb_{name}"]
        return [
            ("dx_recent", f"""SELECT client_id, system, REPLACE(code, '.', '') AS c, CAST(date AS DATE) AS d
  FROM diagnoses
  WHERE CAST(date AS DATE) < {self.as_of_sql}
    AND CAST(date AS DATE) >= {self.window_start_sql(n.days + n.none_before_days)} AND code IS NOT NULL{self.keep}"""),
            ("dx_new", "SELECT " + ",\n         ".join(exprs) + "\n  FROM dx_recent\n  GROUP BY client_id"),
        ]

    # -- measurements -------------------------------------------------------
    def measurement_ctes(self) -> list[tuple[str, str]]:
        ms = self.spec.measurements
        within = " OR ".join(f"(name = {_q(m.name)} AND CAST(date AS DATE) >= {self.window_start_sql(m.lookback_days)})"
                             for m in ms)
        exprs = ["client_id"]
        for m in ms:
            n = _q(m.name)
            last = f"MAX(CASE WHEN name = {n} AND rn = 1 THEN v END)"
            exprs.append(f"{last} AS {m.name}_last")
            if m.change:
                exprs.append(f"{last} - MAX(CASE WHEN name = {n} AND rn = 2 THEN v END) AS {m.name}_change")
            if m.days_since:
                exprs.append(f"MAX(CASE WHEN name = {n} AND rn = 1 THEN DATE_DIFF('day', d, {self.as_of_sql}) END) "
                             f"AS days_since_last_{m.name}")
        return [
            ("m_day", f"""SELECT client_id, name, CAST(date AS DATE) AS d, AVG(value) AS v
  FROM measurements
  WHERE CAST(date AS DATE) < {self.as_of_sql} AND value IS NOT NULL AND ({within}){self.keep}
  GROUP BY client_id, name, CAST(date AS DATE)"""),
            ("m_rank", "SELECT client_id, name, d, v,\n"
                       "         ROW_NUMBER() OVER (PARTITION BY client_id, name ORDER BY d DESC) AS rn\n"
                       "  FROM m_day"),
            ("m_feat", "SELECT " + ",\n         ".join(exprs) + "\n  FROM m_rank\n  WHERE rn <= 2\n  GROUP BY client_id"),
        ]

    # -- assessments --------------------------------------------------------
    def assessment_ctes(self) -> list[tuple[str, str]]:
        a = self.spec.assessments
        lo_change = self.window_start_sql(a.change_days)
        exprs = ["client_id"]
        for sc in a.scales:
            s = _q(sc)
            last = f"MAX(CASE WHEN scale = {s} AND rn_last = 1 THEN v END)"
            # first value inside the change window, only when it holds two or more assessment days
            first = f"MAX(CASE WHEN scale = {s} AND rn_first = 1 AND d >= {lo_change} AND n_change >= 2 THEN v END)"
            exprs += [f"{last} AS rai_{sc}_last", f"{last} - {first} AS rai_{sc}_change_{a.change_days}d"]
            if a.step:  # the latest assessment day against the previous one
                exprs.append(f"{last} - MAX(CASE WHEN scale = {s} AND rn_last = 2 THEN v END) AS rai_{sc}_step")
        return [
            ("a_day", f"""SELECT client_id, scale, CAST(date AS DATE) AS d, AVG(value) AS v
  FROM assessments
  WHERE CAST(date AS DATE) < {self.as_of_sql} AND CAST(date AS DATE) >= {self.window_start_sql(a.lookback_days)}
    AND value IS NOT NULL AND scale IN {_in(a.scales)}{self.keep}
  GROUP BY client_id, scale, CAST(date AS DATE)"""),
            ("a_rank", f"""SELECT client_id, scale, d, v,
         ROW_NUMBER() OVER (PARTITION BY client_id, scale ORDER BY d DESC) AS rn_last,
         ROW_NUMBER() OVER (PARTITION BY client_id, scale, CASE WHEN d >= {lo_change} THEN 1 ELSE 0 END
                            ORDER BY d ASC) AS rn_first,
         SUM(CASE WHEN d >= {lo_change} THEN 1 ELSE 0 END) OVER (PARTITION BY client_id, scale) AS n_change
  FROM a_day"""),
            ("a_feat", "SELECT " + ",\n         ".join(exprs) + "\n  FROM a_rank\n  GROUP BY client_id"),
        ]

    # -- continuity ---------------------------------------------------------
    def continuity_ctes(self) -> list[tuple[str, str]]:
        c = self.spec.continuity
        ctes = []
        for by in c.by:
            ctes.append((f"cont_{by}_n", f"""SELECT client_id, {by} AS k, COUNT(*) AS n
  FROM events
  WHERE CAST(start AS DATE) < {self.as_of_sql} AND CAST(start AS DATE) >= {self.window_start_sql(c.window_days)}
    AND service IN {_in(c.services)} AND {by} IS NOT NULL{self.keep}
  GROUP BY client_id, {by}"""))
            ctes.append((f"cont_{by}", f"""SELECT client_id,
         CASE WHEN SUM(n) >= {c.min_contacts} THEN CAST(MAX(n) AS DOUBLE) / SUM(n) END
           AS continuity_{by}_{c.window_days}d
  FROM cont_{by}_n
  GROUP BY client_id"""))
        return ctes

    # -- the whole query ----------------------------------------------------
    def compile(self) -> str:
        spec, kinds = self.spec, {c.kind for c in self.cols}
        ctes = [("pop", self.population())]
        joins: list[tuple[str, str]] = []  # (cte, alias)
        source: dict[str, str] = {}  # column -> qualified expression
        event_kinds = {"count", "cost", "days", "units", "professionals", "days_since_last", "total_count",
                       "total_cost", "service_lines", "social_and_health", "use_change", "first_use"}
        if kinds & event_kinds:
            ctes += self.event_ctes()
            pivot, pcols = self.event_pivot()
            ctes.append(("ev_feat", pivot))
            joins.append(("ev_feat", "ef"))
            source.update({c.name: f"ef.{c.name}" for c in pcols})
        if spec.diagnosis_groups or spec.charlson is not None:
            ctes += self.diagnosis_ctes()
            joins.append(("dx_flags", "dxf"))
            for g in spec.diagnosis_groups:
                source[f"dx_{g.name}"] = f"dxf.g_{g.name}"
            if spec.chronic_groups:
                source["chronic_conditions"] = "(" + " + ".join(
                    f"COALESCE(dxf.g_{g}, 0)" for g in spec.chronic_groups) + ")"
            if spec.charlson is not None:
                source["charlson_index"] = "(" + charlson_expression(spec, lambda n: f"COALESCE(dxf.cc_{n}, 0)") + ")"
        if spec.new_diagnoses is not None:
            ctes += self.new_diagnosis_ctes()
            joins.append(("dx_new", "dxn"))
            flags = {g.name: f"COALESCE(dxn.nr_{g.name} * (1 - dxn.nb_{g.name}), 0)"
                     for g in spec.new_diagnoses.groups}
            for g, flag in flags.items():
                source[f"new_dx_{g}_{spec.new_diagnoses.days}d"] = flag
            source[f"new_dx_count_{spec.new_diagnoses.days}d"] = "(" + " + ".join(flags.values() or ["0"]) + ")"
        if spec.measurements:
            ctes += self.measurement_ctes()
            joins.append(("m_feat", "mf"))
            for c in self.cols:
                if c.kind.startswith("measurement_"):
                    source[c.name] = f"mf.{c.name}"
        if spec.assessments is not None:
            ctes += self.assessment_ctes()
            joins.append(("a_feat", "af"))
            for c in self.cols:
                if c.kind.startswith("rai_"):
                    source[c.name] = f"af.{c.name}"
        if spec.continuity is not None:
            ctes += self.continuity_ctes()
            for by in spec.continuity.by:
                joins.append((f"cont_{by}", f"ct_{by}"))
                source[f"continuity_{by}_{spec.continuity.window_days}d"] = (
                    f"ct_{by}.continuity_{by}_{spec.continuity.window_days}d")

        select = ["pop.client_id"]
        for c in self.cols:
            if c.kind == "age":
                expr = self.age()
            elif c.kind in ("sex", "language", "municipality", "unit"):
                expr = f"pop.{c.kind}"
            elif c.kind in ("days_since_last",) or c.kind.startswith(("measurement_", "rai_", "continuity")):
                expr = f"CAST({source[c.name]} AS DOUBLE)"
            elif c.history_days is not None:  # a change feature: NaN without the history it compares with
                expr = (f"CASE WHEN {self.no_history(c.history_days)} THEN NULL "
                        f"ELSE CAST(COALESCE({source[c.name]}, 0) AS DOUBLE) END")
            elif c.dtype == "float":
                expr = f"CAST(COALESCE({source[c.name]}, 0) AS DOUBLE)"
            else:
                expr = f"CAST(COALESCE({source[c.name]}, 0) AS BIGINT)"
            select.append(f"{expr} AS {c.name}")
        body = ",\n".join(f"{name} AS (\n  {sql}\n)" for name, sql in ctes)
        from_ = "FROM pop" + "".join(f"\nLEFT JOIN {cte} {alias} ON {alias}.client_id = pop.client_id"
                                     for cte, alias in joins)
        return f"WITH {body}\nSELECT " + ",\n       ".join(select) + f"\n{from_}\nORDER BY pop.client_id"


def compile_features(spec: FeatureSpec, as_of, *, has_moves: tuple[bool, bool] = (True, True),
                     clients: str | None = None) -> str:
    """Compile ``spec`` to one SQL query computing the feature table as of ``as_of``.

    Parameters
    ----------
    spec
        A validated feature spec.
    as_of
        The index date T (anything :class:`pandas.Timestamp` reads; time of day is dropped).
    has_moves
        Whether the ``clients`` table has ``moved_in`` and ``moved_out`` columns.
    clients
        The name of a registered table with a ``client_id`` column: every table the
        query reads keeps only those clients' rows (``client_id IN (SELECT …)``, a
        semi-join), so the result is the full table's rows for those clients in the
        population at ``as_of``, and only their records are aggregated. None: all clients.

    Returns
    -------
    str
        DuckDB-dialect SQL that sqlglot transpiles to Spark SQL.
    """
    return _Compiler(spec, as_of, has_moves, clients).compile()
