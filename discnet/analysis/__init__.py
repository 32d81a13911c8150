"""Analysis of sweeps: runs as a table, model versions, scores, statistics, compact letters, reports
and figures."""
