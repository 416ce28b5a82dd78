"""The report of a sweep (``evaluate.py task=report``, and ``task=sweep``'s quick table).

One path from run directories to the paper's tables, each step in its own module:

- :mod:`nas.report.collect` reads the runs of a sweep (archive, result, final test result);
- :mod:`nas.report.tables` turns them into numbers (mean ± SE over seeds, ranks, counts, τ);
- :mod:`nas.report.figures` draws the best-so-far curves, one panel per dataset;
- :mod:`nas.report.markdown` writes the numbers as ``report.md``;
- :mod:`nas.report.task` is the ``evaluate.py`` task that runs them and logs the result.
"""
