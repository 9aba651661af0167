"""The case managers' worklist: a web app over imported risk lists with login, per-unit access, recorded
actions and a hash-chained access log (see docs/worklist.md)."""
