"""``songshard report``: a static site describing an output folder, opened from disk.

    from pipeline.report import build_report
    build_report("out/sample", sample=50)   # -> "out/sample/report/index.html"

OUT/report/ holds ``index.html`` (overview over the whole index), ``table.html``
(sortable, filterable samples table reading ``data/index.js``), ``samples/KEY.html``
(one page per sampled sample, its audio and images under ``media/KEY/``) and
``assets/`` (one stylesheet, two scripts). Nothing is fetched from the network.

Modules: ``data`` (reading OUT, the table data file), ``sampling`` (stratified
pick), ``charts`` (SVG), ``overview`` and ``runs`` (index.html), ``table_page``,
``extract`` and ``media`` (shards -> audio and images), ``timeline`` and
``sample_page`` (sample pages), ``build`` (the entry points), ``synthetic`` (a
hand-made OUT for tests and benchmarks).
"""

from pipeline.report.build import build_report, report_main

__all__ = ["build_report", "report_main"]
