"""scripts/mutation's work: mutation testing of the rule modules with mutmut, one module set at a time.

For each set of ``scripts/mutation.toml`` it lays a work tree in ``.mutation/<set>/`` (the package,
the tests and pyproject.toml with a ``[tool.mutmut]`` table for that set), runs ``mutmut run`` there,
and prints each module's score (killed/total) and every surviving mutant with its file, line and
change. ``--again`` re-runs only the survivors of the last run, with the tests as they are now.
It exits 1 when a mutant survived, so a script can tell.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "scripts" / "mutation.toml"
WORK = ROOT / ".mutation"
PACKAGE = "signalr_asgi_auth"

# mutmut's exit codes per mutant (mutmut/stats.py): the ones counted as killed, of which these
# mean that the mutant ran out of time (counted as killed, as mutmut does, and reported apart: on a
# loaded machine an equivalent mutant can run out of time too).
KILLED = {1, 3, 24, -24, 36, 37, 152, 255}
TIMED_OUT = {24, -24, 36, 152, 255}
SURVIVED = 0


@dataclass
class ModuleSet:
    name: str
    modules: list[str]
    tests: list[str]
    functions: list[str] = field(default_factory=list)
    """``module.py:function`` or ``module.py:Class.method`` (``*`` allowed): only these are
    mutated, unless ``--all``; empty: every function of the modules."""

    def mutant_globs(self) -> list[str]:
        """The functions as mutmut names their mutants."""
        globs = []
        for entry in self.functions:
            path, _, function = entry.partition(":")
            module = path.removesuffix(".py").replace("/", ".")
            cls, _, method = function.rpartition(".")
            mangled = f"x\u01c1{cls}\u01c1{method}" if cls else f"x_{function}"
            globs.append(f"{module}.{mangled}__mutmut_*")
        return globs


@dataclass
class Score:
    killed: int = 0
    timed_out: int = 0
    survived: list[str] = field(default_factory=list)
    other: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.killed + len(self.survived) + sum(self.other.values())


def load_sets() -> tuple[list[str], dict[str, ModuleSet]]:
    data = tomllib.loads(CONFIG.read_text("utf-8"))
    sets = {
        name: ModuleSet(
            name,
            list(table["modules"]),
            list(table["tests"]),
            [f"{PACKAGE}/{entry}" for entry in table.get("functions", [])],
        )
        for name, table in data["sets"].items()
    }
    for module_set in sets.values():
        missing = [p for p in module_set.modules + module_set.tests if not (ROOT / p).exists()]
        if missing:
            sys.exit(f"scripts/mutation.toml, set {module_set.name}: no such path: {missing}")
    return list(data["pytest_args"]), sets


def toml_list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def lay_work_tree(module_set: ModuleSet, pytest_args: list[str], *, fresh: bool) -> Path:
    """The set's work tree: the package and tests as they are now, and mutmut's configuration."""
    work = WORK / module_set.name
    if fresh and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    for folder in (PACKAGE, "tests"):
        if (work / folder).exists():
            shutil.rmtree(work / folder)
        shutil.copytree(ROOT / folder, work / folder, ignore=shutil.ignore_patterns("__pycache__"))
    pyproject = (ROOT / "pyproject.toml").read_text("utf-8")
    pyproject += (
        "\n[tool.mutmut]\n"
        f'source_paths = ["{PACKAGE}"]\n'
        f"only_mutate = {toml_list(module_set.modules)}\n"
        f"pytest_add_cli_args_test_selection = {toml_list(module_set.tests)}\n"
        f"pytest_add_cli_args = {toml_list(pytest_args)}\n"
    )
    (work / "pyproject.toml").write_text(pyproject, "utf-8")
    return work


def read_scores(work: Path, module_set: ModuleSet, *, every: bool = False) -> dict[str, Score]:
    globs = [] if every else module_set.mutant_globs()
    scores: dict[str, Score] = {}
    for module in module_set.modules:
        meta = work / "mutants" / (module + ".meta")
        score = scores[module] = Score()
        if not meta.exists():
            continue
        exit_codes: dict[str, int | None] = json.loads(meta.read_text("utf-8"))["exit_code_by_key"]
        for mutant, code in sorted(exit_codes.items(), key=lambda item: mutant_order(item[0])):
            if globs and not any(fnmatch.fnmatch(mutant, glob) for glob in globs):
                continue
            if code in KILLED:
                score.killed += 1
                score.timed_out += code in TIMED_OUT
            elif code == SURVIVED:
                score.survived.append(mutant)
            else:
                label = {None: "not run", 33: "no test reaches it", 5: "no test reaches it"}.get(
                    code, f"exit {code}"
                )
                score.other[label] = score.other.get(label, 0) + 1
    return scores


def mutant_order(mutant: str) -> tuple[str, int]:
    function, _, number = mutant.rpartition("__mutmut_")
    return function, int(number)


def where(work: Path, module: str, mutant: str) -> tuple[int, str, str]:
    """The surviving mutant's line in the module, the original line and the mutated one."""
    shown = subprocess.run(
        [str(Path(sys.executable).parent / "mutmut"), "show", mutant],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    removed = [line[1:] for line in shown if line.startswith("-") and not line.startswith("---")]
    added = [line[1:] for line in shown if line.startswith("+") and not line.startswith("+++")]
    before = removed[0].strip() if removed else "?"
    after = added[0].strip() if added else "(line removed)"
    source = (ROOT / module).read_text("utf-8")
    lines = source.splitlines()
    # The mangled name says which function: x_<function> or xǁ<Class>ǁ<method>.
    function = mutant.rpartition(".")[2].rpartition("__mutmut_")[0]
    parts = function[1:].split("ǁ")[1:] if function.startswith("xǁ") else [function[2:]]
    span = (1, len(lines))
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == parts[-1]:
            span = (node.lineno, node.end_lineno or len(lines))
            break
    for number in range(span[0], span[1] + 1):
        if removed and lines[number - 1].strip() == before:
            return number, before, after
    return span[0], before, after


def run_set(
    module_set: ModuleSet, pytest_args: list[str], *, again: bool, every: bool, children: int
) -> dict[str, Score]:
    mutmut = str(Path(sys.executable).parent / "mutmut")
    previous: list[str] = []
    if again:
        work = WORK / module_set.name
        if not (work / "mutants").exists():
            sys.exit(f"--again: no earlier run of {module_set.name} in {work}")
        for score in read_scores(work, module_set, every=every).values():
            previous += score.survived
        # The tests changed since: which test reaches which function is measured again.
        (work / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
        shutil.rmtree(work / "mutants" / "tests", ignore_errors=True)
    work = lay_work_tree(module_set, pytest_args, fresh=not again)
    if again and not previous:
        print(f"==> {module_set.name}: no survivor left from the last run")
        return read_scores(work, module_set, every=every)
    chosen = previous if again else ([] if every else module_set.mutant_globs())
    log = work / "mutmut.log"
    print(f"==> {module_set.name}: mutmut run ({children} at a time; output: {log})", flush=True)
    began = time.monotonic()
    with log.open("w") as out:
        status = subprocess.run(
            [mutmut, "run", "--max-children", str(children), *chosen],
            cwd=work,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            check=False,
        ).returncode
    if status != 0:
        print(log.read_text("utf-8", errors="replace")[-4000:])
        sys.exit(f"mutmut failed on {module_set.name} (exit {status}); see {log}")
    print(f"    {time.monotonic() - began:.0f} s")
    return read_scores(work, module_set, every=every)


def report(module_set: ModuleSet, scores: dict[str, Score]) -> int:
    survivors = 0
    for module, score in scores.items():
        others = "".join(f", {count} {label}" for label, count in score.other.items())
        timed_out = f" ({score.timed_out} by timeout)" if score.timed_out else ""
        print(f"  {module}: {score.killed}/{score.total} killed{timed_out}{others}")
    for module, score in scores.items():
        for mutant in score.survived:
            survivors += 1
            line, before, after = where(WORK / module_set.name, module, mutant)
            print(f"{module}:{line}: survived {mutant.rpartition('.')[2]}")
            print(f"    - {before}\n    + {after}")
    return survivors


def main() -> None:
    pytest_args, sets = load_sets()
    parser = argparse.ArgumentParser(prog="scripts/mutation", description=__doc__.splitlines()[0])
    parser.add_argument(
        "sets", nargs="*", metavar="SET", help=f"one of {', '.join(sets)}; default: all"
    )
    parser.add_argument("--again", action="store_true", help="re-run only the last run's survivors")
    parser.add_argument(
        "--all", action="store_true", help="every function of the modules, not only a set's list"
    )
    parser.add_argument(
        "--report", action="store_true", help="print the last run's result, run nothing"
    )
    parser.add_argument(
        "--children",
        type=int,
        default=int(os.environ.get("MUTATION_WORKERS", "2")),
        help="mutants run at once (MUTATION_WORKERS; default 2)",
    )
    args = parser.parse_args()
    unknown = [name for name in args.sets if name not in sets]
    if unknown:
        parser.error(f"unknown set {unknown}; the sets: {', '.join(sets)}")
    survivors = 0
    for name in args.sets or list(sets):
        module_set = sets[name]
        if args.report:
            scores = read_scores(WORK / name, module_set, every=args.all)
            print(f"==> {name} (last run)")
        else:
            scores = run_set(
                module_set, pytest_args, again=args.again, every=args.all, children=args.children
            )
        survivors += report(module_set, scores)
    sys.exit(1 if survivors else 0)


if __name__ == "__main__":
    main()
