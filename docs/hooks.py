"""MkDocs hook: the charts in benchmarks/ go into the site as benchmarks/<name>.png.

BENCHMARKS.md stays at the top level of the repository and links to its charts as ``benchmarks/<name>.png``;
docs/benchmarks.md includes it, so the same relative links resolve once the charts are part of the site.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File


def on_files(files, config, **kwargs):
    root = Path(config["config_file_path"]).parent
    for chart in sorted((root / "benchmarks").glob("*.png")):
        files.append(File.generated(config, f"benchmarks/{chart.name}", abs_src_path=str(chart)))
    return files
