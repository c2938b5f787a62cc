"""Author zkref's notebooks without hand-editing .ipynb JSON (see CONTRIBUTING.md).

    python tools/nb.py src   nbs/02_config.ipynb   # -> nbs/_src/02_config.py (jupytext percent format)
    python tools/nb.py build nbs/_src/02_config.py # -> nbs/02_config.ipynb, run, cleaned, exported
    python tools/nb.py build --no-run nbs/_src/02_config.py  # keep saved outputs of unchanged cells
    python tools/nb.py run   nbs/02_config.ipynb   # re-run in place and save the outputs

The .ipynb files in nbs/ are what is committed; nbs/_src/ is a gitignored scratch folder. Running
uses execnb, the same engine as `nbdev_test`, and skips cells flagged `#| notest` or `#| eval: false`.
"""
import re
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parent.parent
NBS, SRC = ROOT / "nbs", ROOT / "nbs" / "_src"
SKIP = re.compile(r"^#\|\s*(notest\b|eval:\s*false)", re.M)


def to_src(nb_path: Path) -> Path:
    SRC.mkdir(exist_ok=True)
    out = SRC / (nb_path.stem + ".py")
    jupytext.write(jupytext.read(nb_path), out, fmt="py:percent")
    return out


def from_src(src: Path) -> Path:
    nb = jupytext.read(src, fmt="py:percent")
    dest = NBS / (src.stem + ".ipynb")
    if dest.exists():  # keep outputs of the cells whose source did not change
        old = nbformat.read(dest, as_version=4)
        saved = {c.source: c.get("outputs", []) for c in old.cells if c.cell_type == "code"}
        ids = {(c.cell_type, c.source): c.get("id") for c in old.cells}
        for c in nb.cells:
            if c.cell_type == "code":
                c.outputs = saved.get(c.source, [])
            if ids.get((c.cell_type, c.source)):   # stable ids: the exported module's cell markers stay put
                c.id = ids[(c.cell_type, c.source)]
    nb.metadata = {"kernelspec": {"display_name": "python3", "language": "python", "name": "python3"}}
    nbformat.write(nb, dest)
    return dest


def run(nb_path: Path) -> bool:
    from execnb.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell

    nb = read_nb(nb_path)
    shell = CaptureShell(path=nb_path.parent.resolve())
    skip = lambda cell: cell.cell_type != "code" or bool(SKIP.search(cell.source))
    for cell in nb.cells:
        if skip(cell):
            continue
        cell.outputs = []
        shell.cell(cell)
        if shell.exc:
            print(f"{nb_path.name}: a cell failed:\n{shell.prettytb(fname=nb_path)}", file=sys.stderr)
            return False
    write_nb(nb, nb_path)
    return True


def clean_and_export(paths) -> None:
    from nbdev.clean import nbdev_clean
    from nbdev.doclinks import nbdev_export

    for p in paths:
        nbdev_clean(fname=str(p))
    nbdev_export()


def main(argv) -> int:
    if len(argv) < 2 or argv[0] not in {"src", "build", "run"}:
        print(__doc__)
        return 2
    cmd, args = argv[0], argv[1:]
    no_run = "--no-run" in args
    paths = [Path(a).resolve() for a in args if a != "--no-run"]
    if cmd == "src":
        for p in paths:
            print(to_src(p))
        return 0
    nbs = [from_src(p) for p in paths] if cmd == "build" else paths
    clean_and_export(nbs)  # export first: a notebook may import the module it defines
    ok = True
    if not no_run:
        for nb in nbs:
            ok = run(nb) and ok
    clean_and_export(nbs)
    for nb in nbs:
        print(("built " if ok else "FAILED ") + str(nb.relative_to(ROOT)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
