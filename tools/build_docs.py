"""Assemble the docs site's sources in build/docs: the hand-written pages of site/ plus every notebook of nbs/.

Why not mkdocs-jupyter? Its `execute: true` runs cells nbdev would skip and caches stale output, and it
does not understand nbdev's `#|` directives. This script renders the notebooks' *saved* outputs (the real
outputs of the last run, checked by `nbdev_test`) with nbconvert, and:
  - drops cells marked `#| hide` (and `#| include: false`), the source of `#| echo: false` cells and
    the outputs of `#| output: false` cells;
  - removes the `#|` directive lines from every cell that is shown;
  - renders each `*.dot` file under site/ to SVG with graphviz's `dot`, so the site works offline.
It then writes build/mkdocs.yml: mkdocs.yml with the chapters filled into the nav.
"""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import yaml
from nbconvert import MarkdownExporter
from nbconvert.preprocessors import Preprocessor

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
DOCS = BUILD / "docs"
DIRECTIVE = re.compile(r"^\s*#\|\s*(.*?)\s*$")


def directives(source: str) -> set[str]:
    return {m.group(1).replace(" ", "") for line in source.splitlines() if (m := DIRECTIVE.match(line))}


class NbdevDirectives(Preprocessor):
    """Apply nbdev's display directives, the way nbdev's own docs renderer does."""

    def preprocess(self, nb, resources):
        kept = []
        for cell in nb.cells:
            d = directives(cell.source)
            if {"hide", "include:false"} & d:
                continue
            if cell.cell_type == "code":
                if any(x.startswith("default_exp") for x in d):
                    continue
                cell.source = "\n".join(l for l in cell.source.splitlines() if not DIRECTIVE.match(l)).strip()
                if {"echo:false", "hide_input"} & d:
                    cell.source = ""
                    cell.metadata["transient"] = {"remove_source": True}   # the templates then emit no code fence
                if {"output:false", "hide_output"} & d:
                    cell.outputs = []
                for out in cell.get("outputs", []):  # tracebacks and ANSI colours do not belong on a page
                    if out.get("output_type") == "stream":
                        out["text"] = re.sub(r"\x1b\[[0-9;]*m", "", out["text"])
                if not cell.source and not cell.get("outputs"):  # nothing left to show
                    continue
            kept.append(cell)
        nb.cells = kept
        return nb, resources


def render_notebook(nb_path: Path, dest_dir: Path) -> tuple[str, str]:
    nb = nbformat.read(nb_path, as_version=4)
    nb.metadata["language_info"] = {"name": "python"}   # nbdev_clean drops it; it names the code fences
    exporter = MarkdownExporter()
    exporter.register_preprocessor(NbdevDirectives, enabled=True)
    body, resources = exporter.from_notebook_node(
        nb, resources={"unique_key": nb_path.stem, "output_files_dir": f"{nb_path.stem}_files"})
    for name, data in resources.get("outputs", {}).items():
        out = dest_dir / name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data if isinstance(data, bytes) else data.encode())
    md_name = "index.md" if nb_path.stem.startswith("00_") else f"{nb_path.stem}.md"
    (dest_dir / md_name).write_text(body, encoding="utf-8")
    title = next((l[2:].strip() for l in body.splitlines() if l.startswith("# ")), nb_path.stem)
    return md_name, title


def render_dot_files(folder: Path) -> None:
    for dot in folder.rglob("*.dot"):
        subprocess.run(["dot", "-Tsvg", str(dot), "-o", str(dot.with_suffix(".svg"))], check=True)


# The chapters follow QuorumPeerMain's start-up; the nav groups them by its steps (the chapter number's two digits).
PARTS = {
    "01": "initializeAndRun: the entry point",
    "02": "Reading zoo.cfg",
    "03": "Purging old files",
    "04": "The standalone server",
    "05": "runFromConfig and metrics",
    "06": "Connections and the wire protocol",
    "07": "QuorumPeer: the data tree and storage",
    "08": "initialize()",
    "09": "start(): admin server, election port, election",
    "10": "join(): leading and following (Zab)",
    "11": "Serving requests: sessions and the pipeline",
    "12": "The mini cluster",
}


def chapter_parts(chapters: list[tuple[str, str, str]]) -> list[dict]:
    "The nav's chapters, one section per start-up step, in reading order."
    parts: dict[str, list] = {}
    for stem, md, title in chapters:
        if stem.startswith("00_"):
            continue
        number = stem.split("_")[0]
        part = PARTS.get(number[:2], "More")
        parts.setdefault(f"{number[:2]} · {part}" if part != "More" else part, []).append({f"{number} · {title}": md})
    return [{name: entries} for name, entries in parts.items()]


def main() -> int:
    shutil.rmtree(DOCS, ignore_errors=True)
    shutil.copytree(ROOT / "site", DOCS)
    render_dot_files(DOCS)
    chapters = []
    for nb_path in sorted((ROOT / "nbs").glob("*.ipynb")):
        md_name, title = render_notebook(nb_path, DOCS)
        chapters.append((nb_path.stem, md_name, title))
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    index = [md for stem, md, _ in chapters if stem.startswith("00_")]
    nav = [{"Home": index[0]}] if index else []
    for entry in config.get("nav", []):
        if entry == "CHAPTERS":
            nav.append({"Chapters": chapter_parts(chapters)})
        else:
            nav.append(entry)
    config["nav"] = nav
    config["docs_dir"] = str(DOCS)
    config["site_dir"] = str(BUILD / "site")
    (BUILD / "mkdocs.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    print(f"build_docs: {len(chapters)} chapters + site/ -> {DOCS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
