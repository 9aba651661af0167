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
#: How per-service rows become per-client columns: "join" (one join per service; DuckDB) or "case" (a pivot).
PIVOTS = ("join", "case")


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
    def __init__(self, spec: FeatureSpec, as_of, has_moves: tuple[bool, bool], clients: str | None = None,
                 pivot: str = "case"):
        if pivot not in PIVOTS:
            raise ValueError(f"pivot must be one of {PIVOTS}, not {pivot!r}")
        self.spec = spec
        self.pivot = pivot
        self.services = sorted({c.service for c in spec.columns() if c.service}
                               | {sv for c in spec.columns() if c.kind in ("use_change", "first_use") for sv in c.services})
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
    def buckets(self) -> list[int]:
        """The look-back edges in days (ascending) that every event window and span starts or ends at.

        Bucket ``i`` (1-based) holds the days ``[T - edges[i-1], T - edges[i-2])`` (``T`` for ``i = 1``);
        bucket ``len(edges) + 1`` everything earlier. A window of ``w`` days is buckets
        ``1 … edges.index(w) + 1``; a span ``[T - a, T - b)`` the buckets between ``b`` and ``a``.
        """
        spec = self.spec
        edges = set(spec.event_windows()) | {d for span in spec.event_spans() for d in span}
        return sorted(edges - {0})

    def event_ctes(self) -> list[tuple[str, str]]:
        """Per (client, service): counts, costs and episode days per window and span, and the last day of use.

        Point events (every service but the episode services) are first summed per
        (client, service, bucket) — count, known cost, last day — so the per-window and
        per-span sums read a few rows per client instead of every event; episodes, whose
        days and costs are cut at the window edges, are summed row by row. Unit-cost rates
        are looked up only for the rows that need one (an unknown cost, or an episode).
        """
        spec, as_of_sql, day_before_sql = self.spec, self.as_of_sql, self.day_before_sql
        windows = spec.event_windows()
        edges = self.buckets()
        index = {0: 0, **{d: i + 1 for i, d in enumerate(edges)}}
        epi = _in(EPISODE_SERVICES)
        point = f"(service IS NULL OR service NOT IN {epi})"
        role = ("CASE WHEN STRPOS(ev.professional, '.') > 0 "
                "THEN SUBSTR(ev.professional, 1, STRPOS(ev.professional, '.') - 1) ELSE ev.professional END")
        ctes = [("ev", f"""SELECT client_id, service, professional, cost_eur,
         CAST(start AS DATE) AS s, CAST("end" AS DATE) AS e
  FROM events
  WHERE start < {as_of_sql} AND (cost_eur IS NULL OR NOT {point}){self.keep}"""),
                # the rate joins (a table of a few dozen rows) only for rows without a cost and for episodes
                ("rated", f"""SELECT ev.client_id, ev.service, ev.s,
         NOT {point.replace('service', 'ev.service')} AS is_epi,
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
  LEFT JOIN unit_rates rb ON rb.service = ev.service AND rb.professional = '{BASE_RATE}'""")]
        bucket = ("CASE " + " ".join(f"WHEN s >= {self.window_start_sql(d)} THEN {index[d]}" for d in edges)
                  + f" ELSE {len(edges) + 1} END")
        ctes.append(("point_buckets", f"""SELECT client_id, service, {bucket} AS b, COUNT(*) AS n,
         SUM(cost_known) AS c, MAX(s) AS last_day
  FROM (SELECT client_id, service, CAST(start AS DATE) AS s, cost_eur AS cost_known
          FROM events
          WHERE start < {as_of_sql} AND cost_eur IS NOT NULL AND {point}{self.keep}
        UNION ALL
        SELECT client_id, service, s, cost_known FROM rated WHERE NOT is_epi) AS p
  GROUP BY client_id, service, {bucket}"""))
        aggs = ["client_id", "service", "MAX(last_day) AS last_day"]
        for w in windows:
            aggs += [f"CAST(SUM(CASE WHEN b <= {index[w]} THEN n ELSE 0 END) AS BIGINT) AS n_{w}",
                     f"SUM(CASE WHEN b <= {index[w]} THEN c END) AS c_{w}", f"CAST(0 AS BIGINT) AS d_{w}"]
        for a, b in spec.event_spans():
            inside = f"b > {index[b]} AND b <= {index[a]}"
            aggs += [f"CAST(SUM(CASE WHEN {inside} THEN n ELSE 0 END) AS BIGINT) AS ns_{a}_{b}",
                     f"COALESCE(SUM(CASE WHEN {inside} THEN c END), 0) AS cs_{a}_{b}"]
        point_sql = "SELECT " + ",\n         ".join(aggs) + "\n  FROM point_buckets\n  GROUP BY client_id, service"
        cols = ["client_id", "service", "eff_end AS last_day"]
        for w in windows:
            lo = self.window_start_sql(w)
            days = f"GREATEST(DATE_DIFF('day', GREATEST(s, {lo}), eff_end) + 1, 0)"
            cols += [
                f"CASE WHEN s >= {lo} THEN 1 ELSE 0 END AS n_{w}",
                f"""CASE WHEN ongoing AND per_day THEN rate * {days}
              WHEN ongoing THEN (CASE WHEN s >= {lo} THEN rate ELSE 0 END)
              ELSE cost_known * {days} / total_days END AS c_{w}""",
                f"{days} AS d_{w}",
            ]
        for a, b in spec.event_spans():
            # the span [T - a, T - b): events started in it; episode days inside it up to its last day
            lo, last = self.window_start_sql(a), self.window_start_sql(b + 1)
            inside = f"s >= {lo} AND s <= {last}"
            days = f"GREATEST(DATE_DIFF('day', GREATEST(s, {lo}), LEAST(eff_end, {last})) + 1, 0)"
            cols += [
                f"CASE WHEN {inside} THEN 1 ELSE 0 END AS ns_{a}_{b}",
                f"""CASE WHEN ongoing AND per_day THEN rate * {days}
              WHEN ongoing THEN (CASE WHEN {inside} THEN rate ELSE 0 END)
              ELSE cost_known * {days} / total_days END AS cs_{a}_{b}""",
            ]
        ctes.append(("episode_rows", "SELECT " + ",\n         ".join(cols) + "\n  FROM rated\n  WHERE is_epi"))
        aggs = ["client_id", "service", "MAX(last_day) AS last_day"]
        for w in windows:
            aggs += [f"CAST(SUM(n_{w}) AS BIGINT) AS n_{w}", f"SUM(c_{w}) AS c_{w}",
                     f"CAST(SUM(d_{w}) AS BIGINT) AS d_{w}"]
        for a, b in spec.event_spans():
            aggs += [f"CAST(SUM(ns_{a}_{b}) AS BIGINT) AS ns_{a}_{b}", f"SUM(COALESCE(cs_{a}_{b}, 0)) AS cs_{a}_{b}"]
        ctes.append(("by_service", point_sql + "\n  UNION ALL\n  SELECT " + ",\n         ".join(aggs)
                     + "\n  FROM episode_rows\n  GROUP BY client_id, service"))
        return ctes + self.distinct_ctes()

    def distinct_ctes(self) -> list[tuple[str, str]]:
        """Distinct units and professionals per (client, service) within their windows, pivoted per client.

        Each (client, service, unit) is grouped once with the last day it was used,
        and counted in every window that day falls in: no ``COUNT(DISTINCT …)`` over all events.
        """
        spec, ctes = self.spec, []
        for agg, col, short in (("units", "unit", "u"), ("professionals", "professional", "p")):
            ws = sorted({w for a in spec.events if a.agg == agg for w in a.windows})
            if not ws:
                continue
            ctes.append((f"{short}_last", f"""SELECT client_id, service, {col}, MAX(CAST(start AS DATE)) AS s
  FROM events
  WHERE start < {self.as_of_sql} AND start >= {self.window_start_sql(max(ws))}
    AND {col} IS NOT NULL{self.keep}
  GROUP BY client_id, service, {col}"""))
            counts = ", ".join(f"CAST(SUM(CASE WHEN s >= {self.window_start_sql(w)} THEN 1 ELSE 0 END) AS BIGINT) "
                               f"AS {short}_{w}"
                               for w in ws)
            ctes.append((f"{short}_by_service", f"SELECT client_id, service, {counts}\n  FROM {short}_last\n"
                                                "  GROUP BY client_id, service"))
        return ctes

    @staticmethod
    def pick(agg: str, value: str, cond: str) -> str:
        """``agg`` of ``value`` over the rows where ``cond`` holds (NULL when none).

        A CASE inside the aggregate: DuckDB's ``FILTER (WHERE …)`` form measured three
        times slower for the pivot's ~190 aggregates.
        """
        return f"{agg}(CASE WHEN {cond} THEN {value} END)"

    def event_joins(self) -> tuple[list[tuple[str, str]], list[str], dict[str, str]]:
        """The per-client event features as one join per service instead of a ~190-aggregate pivot.

        Each (client, service) has one row in ``by_service``, so the service's rows
        (``sv_<i>``, with its distinct units and professionals) join the population one to
        one; per-service features are their columns, the span comparisons sums of them,
        and only the totals over all services are aggregated (``ev_tot``). DuckDB runs this
        about three times faster than the CASE pivot; it is the plan for engines that share
        a CTE among its readers (Spark would recompute ``by_service`` per service: it gets the pivot).

        Returns
        -------
        tuple
            The CTEs, the names to LEFT JOIN on ``client_id``, and the SQL expression of each column.
        """
        short = {"count": "n", "cost": "c", "days": "d", "units": "u", "professionals": "p"}
        needed: dict[str, dict[str, set[str]]] = {}  # service -> source (b, u, p) -> columns

        def col(service: str, src: str, name: str) -> str:
            needed.setdefault(service, {}).setdefault(src, set()).add(name)
            return f"sv_{sorted(self.services).index(service)}.{name}"

        source: dict[str, str] = {}
        totals = ["client_id"]
        for c in self.cols:
            if c.kind in short:
                x = short[c.kind]
                source[c.name] = col(c.service, x if x in "up" else "b", f"{x}_{c.window}")
            elif c.kind == "days_since_last":
                source[c.name] = f"DATE_DIFF('day', {col(c.service, 'b', 'last_day')}, {self.as_of_sql})"
            elif c.kind in ("use_change", "first_use"):
                x = "cs" if c.agg == "cost" else "ns"
                recent, earlier = ("(" + " + ".join(f"COALESCE({col(sv, 'b', f'{x}_{a}_{b}')}, 0)"
                                                     for sv in sorted(c.services)) + ")" for a, b in c.spans())
                source[c.name] = (f"{recent} - {earlier}" if c.kind == "use_change"
                                  else f"CASE WHEN {recent} > 0 AND {earlier} = 0 THEN 1 ELSE 0 END")
            elif c.kind in ("total_count", "total_cost", "service_lines", "social_and_health"):
                totals.append(f"{self.total(c)} AS {c.name}")
                source[c.name] = f"ev_tot.{c.name}"
        ctes, joins = [], []
        if len(totals) > 1:
            ctes.append(("ev_tot", "SELECT " + ",\n         ".join(totals) + "\n  FROM by_service\n  GROUP BY client_id"))
            joins.append("ev_tot")
        for service, srcs in sorted(needed.items()):
            i, where = sorted(self.services).index(service), f"service = {_q(service)}"
            exprs = [f"b.{n}" for n in sorted(srcs.get("b", ()))]
            from_ = f"(SELECT * FROM by_service WHERE {where}) AS b"
            for x in ("u", "p"):
                if x in srcs:
                    exprs += [f"{x}.{n}" for n in sorted(srcs[x])]
                    from_ += (f"\n  LEFT JOIN (SELECT * FROM {x}_by_service WHERE {where}) AS {x} "
                              f"ON {x}.client_id = b.client_id")
            ctes.append((f"sv_{i}", "SELECT b.client_id, " + ", ".join(exprs) + f"\n  FROM {from_}"))
            joins.append(f"sv_{i}")
        return ctes, joins, source

    def total(self, c: FeatureColumn) -> str:
        """The aggregate over a client's per-service rows for a total, service-lines or both-sectors column."""
        if c.kind == "total_count":
            return f"SUM(n_{c.window})"
        if c.kind == "total_cost":
            return f"SUM(c_{c.window})"
        used = f"(n_{c.window} > 0 OR d_{c.window} > 0)"
        if c.kind == "service_lines":
            return f"SUM(CASE WHEN {used} THEN 1 ELSE 0 END)"
        return (f"CASE WHEN MAX(CASE WHEN service IN {_in(SOCIAL_SERVICES)} AND {used} THEN 1 ELSE 0 END) = 1 "
                f"AND MAX(CASE WHEN service IN {_in(HEALTH_SERVICES)} AND {used} THEN 1 ELSE 0 END) = 1 "
                f"THEN 1 ELSE 0 END")

    def event_pivots(self) -> list[tuple[str, str, list[FeatureColumn]]]:
        """The per-client pivots of the per-service rows: ``(cte name, sql, columns)`` each."""
        short = {"count": "n", "cost": "c", "days": "d"}
        exprs, cols = ["client_id"], []
        distinct: dict[str, tuple[list[str], list[FeatureColumn]]] = {"u": (["client_id"], []),
                                                                      "p": (["client_id"], [])}
        for c in self.cols:
            if c.kind in short:
                # one row per (client, service): MAX picks the value
                e = self.pick("MAX", f"{short[c.kind]}_{c.window}", f"service = {_q(c.service)}")
            elif c.kind in ("units", "professionals"):
                x = c.kind[0]
                distinct[x][0].append(f"{self.pick('MAX', f'{x}_{c.window}', f'service = {_q(c.service)}')} "
                                      f"AS {c.name}")
                distinct[x][1].append(c)
                continue
            elif c.kind == "days_since_last":
                e = self.pick("MIN", f"DATE_DIFF('day', last_day, {self.as_of_sql})", f"service = {_q(c.service)}")
            elif c.kind in ("total_count", "total_cost", "service_lines", "social_and_health"):
                e = self.total(c)
            elif c.kind in ("use_change", "first_use"):
                # the same aggregate over the recent span and the earlier span it is compared with
                x = "cs" if c.agg == "cost" else "ns"
                recent, earlier = (f"COALESCE({self.pick('SUM', f'{x}_{a}_{b}', f'service IN {_in(c.services)}')}, 0)"
                                   for a, b in c.spans())
                e = (f"{recent} - {earlier}" if c.kind == "use_change"
                     else f"CASE WHEN {recent} > 0 AND {earlier} = 0 THEN 1 ELSE 0 END")
            else:
                continue
            exprs.append(f"{e} AS {c.name}")
            cols.append(c)
        pivots = [("ev_feat", "SELECT " + ",\n         ".join(exprs) + "\n  FROM by_service\n  GROUP BY client_id", cols)]
        for x, (dexprs, dcols) in distinct.items():
            if dcols:
                pivots.append((f"{x}_feat", "SELECT " + ",\n         ".join(dexprs)
                               + f"\n  FROM {x}_by_service\n  GROUP BY client_id", dcols))
        return pivots

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

    def code_flags(self, name: str, source: str, flags: list[tuple[str, str]],
                   split: str | None = None) -> list[tuple[str, str]]:
        """Per client, 0/1 flags ``flags`` (name, condition on ``system`` and dotless code ``c``) over ``source``.

        The conditions are evaluated once per distinct code (``<name>_codes``, a bit mask
        of up to 62 flags per column), joined back to the rows and OR-ed per client
        (``BIT_OR``), instead of evaluating every condition on every diagnosis row.
        With ``split`` (a condition on the row), each flag comes twice: ``r_<flag>`` for
        the rows where it holds and ``b_<flag>`` for the others. The result is ``<name>``.
        """
        chunks = [flags[i:i + 62] for i in range(0, len(flags), 62)]
        masks = [" + ".join(f"CASE WHEN {cond} THEN {2 ** i} ELSE 0 END" for i, (_, cond) in enumerate(chunk))
                 for chunk in chunks]
        codes = ("SELECT system, c, " + ", ".join(f"CAST({m} AS BIGINT) AS m{j}" for j, m in enumerate(masks))
                 + f"\n  FROM (SELECT DISTINCT system, c FROM {source}) AS t")
        if split is None:
            ors = [f"BIT_OR(k.m{j}) AS m{j}" for j in range(len(chunks))]
            bits = [f"(m{j} >> {i}) & 1 AS {flag}" for j, chunk in enumerate(chunks) for i, (flag, _) in enumerate(chunk)]
        else:
            ors = [f"BIT_OR(CASE WHEN {split} THEN k.m{j} ELSE 0 END) AS r{j}" for j in range(len(chunks))]
            ors += [f"BIT_OR(CASE WHEN {split} THEN 0 ELSE k.m{j} END) AS b{j}" for j in range(len(chunks))]
            bits = [f"(r{j} >> {i}) & 1 AS r_{flag}, (b{j} >> {i}) & 1 AS b_{flag}"
                    for j, chunk in enumerate(chunks) for i, (flag, _) in enumerate(chunk)]
        return [
            (f"{name}_codes", codes),
            (f"{name}_masks", f"SELECT s.client_id, {', '.join(ors)}\n  FROM {source} s\n"
                              f"  JOIN {name}_codes k ON k.system = s.system AND k.c = s.c\n  GROUP BY s.client_id"),
            (name, "SELECT client_id, " + ",\n         ".join(bits) + f"\n  FROM {name}_masks"),
        ]

    def diagnosis_ctes(self) -> list[tuple[str, str]]:
        spec = self.spec
        cond = [f"date < {self.as_of_sql}", "code IS NOT NULL"]
        if spec.diagnosis_lookback_days:
            cond.append(f"date >= {self.window_start_sql(spec.diagnosis_lookback_days)}")
        flags = [(f"g_{g.name}", self.group_cond(g)) for g in spec.diagnosis_groups]
        if spec.charlson is not None:
            flags += [(f"cc_{cat.name}", f"system = 'ICD-10' AND ({_charlson_cond('c', cat)})")
                      for cat in spec.charlson.categories]
        return [
            ("dx", "SELECT client_id, system, REPLACE(code, '.', '') AS c\n  FROM diagnoses\n  WHERE "
             + "\n    AND ".join(cond) + self.keep),
            *self.code_flags("dx_flags", "dx", flags),
        ]

    def new_diagnosis_ctes(self) -> list[tuple[str, str]]:
        """Per group: recorded in [T - days, T) (``r_``) and in the ``none_before_days`` before (``b_``)."""
        n = self.spec.new_diagnoses
        lo = self.window_start_sql(n.days)
        flags = [(g.name, self.group_cond(g)) for g in n.groups]
        return [
            ("dx_recent", f"""SELECT client_id, system, REPLACE(code, '.', '') AS c, CAST(date AS DATE) AS d
  FROM diagnoses
  WHERE date < {self.as_of_sql}
    AND date >= {self.window_start_sql(n.days + n.none_before_days)} AND code IS NOT NULL{self.keep}"""),
            *self.code_flags("dx_new", "dx_recent", flags, split=f"s.d >= {lo}"),
        ]

    # -- measurements -------------------------------------------------------
    def measurement_ctes(self) -> list[tuple[str, str]]:
        ms = self.spec.measurements
        within = " OR ".join(f"(name = {_q(m.name)} AND date >= {self.window_start_sql(m.lookback_days)})"
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
  WHERE date < {self.as_of_sql} AND value IS NOT NULL AND ({within}){self.keep}
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
  WHERE date < {self.as_of_sql} AND date >= {self.window_start_sql(a.lookback_days)}
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
  WHERE start < {self.as_of_sql} AND start >= {self.window_start_sql(c.window_days)}
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
            if self.pivot == "join":
                ev_ctes, ev_joins, ev_source = self.event_joins()
                ctes += ev_ctes
                joins += [(name, name) for name in ev_joins]
                source.update(ev_source)
            else:
                for name, pivot, pcols in self.event_pivots():
                    ctes.append((name, pivot))
                    joins.append((name, name))
                    source.update({c.name: f"{name}.{c.name}" for c in pcols})
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
            flags = {g.name: f"COALESCE(dxn.r_{g.name} * (1 - dxn.b_{g.name}), 0)"
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
        # no ORDER BY: sorting 200+ columns costs the engine more than sorting the frame (build._typed sorts)
        return f"WITH {body}\nSELECT " + ",\n       ".join(select) + f"\n{from_}"


def compile_features(spec: FeatureSpec, as_of, *, has_moves: tuple[bool, bool] = (True, True),
                     clients: str | None = None, pivot: str = "case") -> str:
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
    pivot
        ``"case"``: per-service values become columns by one aggregate per column (a CASE
        pivot; every engine, Spark's plan). ``"join"``: one join per service (faster in
        DuckDB, which shares the ``by_service`` rows among the joins). Same result.

    Returns
    -------
    str
        DuckDB-dialect SQL that sqlglot transpiles to Spark SQL.
    """
    return _Compiler(spec, as_of, has_moves, clients, pivot).compile()
