"""Service-need scenarios: clients, service and costs per municipality, segment and service line, to a target year.

Population-level answers beside the individual risk scores: base-year rates per
age band, sex, need-based segment and service line, the segment mix rolled
forward as a Markov chain over a population projection, and declared scenarios
(demographic, healthy ageing, proximity to death, intervention) with intervals.
See docs/scenarios.md.
"""
