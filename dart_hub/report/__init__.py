"""The HTML report of a run (`dart-hub report`): self-contained pages that open from disk.

dataset.py  what the report of an adapted dataset folder shows, as plain data (tested against
            the run's summary)
runs.py     the same for training / evaluation runs
svg.py      the inline SVG charts
render.py   the pages (jinja2 templates with autoescaping, inline CSS and JS) and the output folder
paper.py    the DART paper's figures the report marks (Table 6)
build.py    which report for which folders (dataset or runs), and its size (`dart_hub.api.report`)
"""
