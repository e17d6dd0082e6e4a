"""Test results by pytest node id: built from the records the sealed session streams (each as
pytest's own JUnit report would have said it), written out as JUnit XML for the record, or read
from JUnit XML (`-o junit_family=xunit1`); and failure text trimmed to what a model can act on."""

from __future__ import annotations

import builtins
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Outcome = Literal["passed", "failed", "error", "skipped"]

# When one node id is reported twice (a failing call then a failing teardown), the worse wins.
_RANK: dict[Outcome, int] = {"passed": 0, "skipped": 1, "error": 2, "failed": 3}
_EXC_LINE = re.compile(r"^E\s+(.*)$")
_TRACE_LOCATION = re.compile(r"^\S[^:]*:\d+: ")
_FRAME = re.compile(r"^(\S.*?):(?:\d+|\?+): in ")
_EXC_START = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|Failed)): ?")
_WRAPPED = re.compile(r'failed on (?:setup|teardown) with "(.*)', re.S)
_XML_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Exception types Python itself defines: the only names a hidden test's failure may show, since
# code under test can raise a class of any name it likes.
BUILTIN_EXCEPTIONS = frozenset(
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
)


class JunitError(ValueError):
    """The report is not JUnit XML as pytest writes it."""


@dataclass(frozen=True)
class CaseResult:
    nodeid: str
    outcome: Outcome
    message: str = ""  # the failure element's `message` attribute (pytest's one-line summary)
    text: str = ""  # the failure element's body: the traceback as `--tb` printed it

    @property
    def is_collection(self) -> bool:
        """A whole file (or class) that could not be collected, not one test."""
        return "::" not in self.nodeid or self.message == "collection failure"


def parse_junit(xml_text: str) -> dict[str, CaseResult]:
    """Results keyed by pytest node id. Collection errors appear under the file's path."""
    if "<!DOCTYPE" in xml_text or "<!ENTITY" in xml_text:
        # pytest never writes these; refusing them keeps entity tricks from sandboxed code out.
        raise JunitError("unexpected DOCTYPE in the JUnit report")
    try:
        root = ET.fromstring(xml_text)  # noqa: S314 - no DTDs (checked above), expat limits
    except ET.ParseError as exc:
        raise JunitError(f"unreadable JUnit report: {exc}") from exc
    results: dict[str, CaseResult] = {}
    for case in root.iter("testcase"):
        result = _result(case)
        old = results.get(result.nodeid)
        if old is None or _RANK[result.outcome] > _RANK[old.outcome]:
            results[result.nodeid] = result
    return results


def results_from(records: Iterable[Mapping[str, Any]]) -> dict[str, CaseResult]:
    """Results keyed by pytest node id, from the sealed session's records (one per report). A
    test under a module or class that failed to be collected did not run, whatever is said of
    it: the collection error stands for it (`lookup` finds it)."""
    results: dict[str, CaseResult] = {}
    for record in records:
        result = case_result(record)
        old = results.get(result.nodeid) if result else None
        if result is not None and (old is None or _RANK[result.outcome] > _RANK[old.outcome]):
            results[result.nodeid] = result
    broken = {n for n, r in results.items() if r.outcome == "error" and r.is_collection}
    for nodeid in [n for n in results if "::" in n]:
        parts = nodeid.split("::")
        if any("::".join(parts[:end]) in broken for end in range(1, len(parts))):
            del results[nodeid]
    return results


def case_result(record: Mapping[str, Any]) -> CaseResult | None:
    """One report as pytest's JUnit plugin would write it (None: it writes nothing for it)."""
    nodeid, when, outcome = record.get("id"), record.get("when"), record.get("outcome")
    if not isinstance(nodeid, str) or not nodeid:
        return None
    text = str(record.get("text") or "")
    crash, xfail, skip = record.get("crash"), record.get("xfail"), record.get("skip")
    summary = text if crash is None else str(crash)
    if when == "collect":
        if outcome == "failed":
            return CaseResult(nodeid, "error", "collection failure", text)
        return CaseResult(nodeid, "skipped", "collection skipped", text)
    if outcome == "passed":
        return CaseResult(nodeid, "passed") if when == "call" else None
    if outcome == "failed" and when == "call":
        if xfail is not None:
            return CaseResult(nodeid, "skipped", "xfail-marked test passes unexpectedly")
        return CaseResult(nodeid, "failed", summary, text)
    if outcome == "failed":
        phase = "teardown" if when == "teardown" else "setup"
        return CaseResult(nodeid, "error", f'failed on {phase} with "{summary}"', text)
    if xfail is not None:
        return CaseResult(nodeid, "skipped", str(xfail).removeprefix("reason: "))
    if isinstance(skip, list) and len(skip) == 3:
        reason = str(skip[2]).removeprefix("Skipped: ")
        return CaseResult(nodeid, "skipped", reason, f"{skip[0]}:{skip[1]}: {reason}")
    return CaseResult(nodeid, "skipped", summary, text)


def junit_xml(results: Mapping[str, CaseResult]) -> str:
    """The results as JUnit XML (xunit1-like), for the record."""
    counts = {o: sum(r.outcome == o for r in results.values()) for o in _RANK}
    suite = ET.Element(
        "testsuite",
        name="pytest",
        tests=str(len(results)),
        failures=str(counts["failed"]),
        errors=str(counts["error"]),
        skipped=str(counts["skipped"]),
    )
    tags = {"failed": "failure", "error": "error", "skipped": "skipped"}
    for nodeid, result in sorted(results.items()):
        path, _, rest = nodeid.partition("::")
        parts = rest.split("::") if rest else []
        module = path.removesuffix(".py").replace("/", ".")
        case = ET.SubElement(
            suite,
            "testcase",
            classname=".".join([module, *parts[:-1]]) if parts else "",
            name=parts[-1] if parts else module,
            file=path,
        )
        if result.outcome in tags:
            element = ET.SubElement(case, tags[result.outcome], message=_xml(result.message))
            element.text = _xml(result.text)
    root = ET.Element("testsuites")
    root.append(suite)
    return ET.tostring(root, encoding="unicode")


def _xml(text: str) -> str:
    return _XML_UNSAFE.sub("?", text)


def _result(case: ET.Element) -> CaseResult:
    nodeid = node_id(case.get("classname", ""), case.get("name", ""), case.get("file", ""))
    tags: tuple[tuple[str, Outcome], ...] = (
        ("failure", "failed"),
        ("error", "error"),
        ("skipped", "skipped"),
    )
    for tag, outcome in tags:
        element = case.find(tag)
        if element is not None:
            message = element.get("message", "")
            return CaseResult(nodeid, outcome, message, element.text or "")
    return CaseResult(nodeid, "passed")


def node_id(classname: str, name: str, file: str) -> str:
    """Invert pytest's `mangle_test_address`: classname is the test file's path with `/` turned
    into `.` and `.py` dropped, then the enclosing classes; name is the function with its
    parameters. `file` (xunit1 only) is where the function is defined, which tells where the
    module path ends and the classes begin."""
    if not classname:  # a collection error: the name is the dotted path of the file
        return file or name
    module = file.removesuffix(".py").replace("/", ".")
    if file and (classname == module or classname.startswith(module + ".")):
        path, classes = file, classname[len(module) + 1 :]
    else:
        # An inherited test is defined in another file: classes are the parts from the first
        # capitalised one on (pytest's default `Test*`); a directory with a dot would fool this.
        parts = classname.split(".")
        first_class = next((i for i, p in enumerate(parts) if p[:1].isupper()), len(parts))
        path = "/".join(parts[:first_class]) + ".py"
        classes = ".".join(parts[first_class:])
    return "::".join([path, *(classes.split(".") if classes else []), name])


def trim_failure(text: str, *, max_lines: int = 25, max_chars: int = 1500) -> str:
    """The end of a traceback (where the assertion and the file:line are), without frames from
    outside the repository (pytest, importlib), keeping the `E` lines even above the cut."""
    lines = _own_frames([line.rstrip() for line in text.strip().splitlines()])
    kept = lines[-max_lines:]
    earlier_e = [line for line in lines[:-max_lines] if _EXC_LINE.match(line)]
    if earlier_e:
        kept = [*earlier_e[:10], "...", *kept]
    elif len(lines) > max_lines:
        kept = ["...", *kept]
    out = "\n".join(kept)
    return out if len(out) <= max_chars else "...\n" + out[-max_chars:]


def _own_frames(lines: list[str]) -> list[str]:
    """Drop traceback frames whose file is absolute or `<frozen ...>`: pytest shows files under
    the repository relative, so these are the interpreter's and plugins' own."""
    out: list[str] = []
    skipping = False
    for line in lines:
        frame = _FRAME.match(line)
        if frame:
            skipping = frame[1].startswith(("/", "<"))
        elif not (skipping and line.startswith((" ", "\t"))):
            skipping = False
        if not skipping:
            out.append(line)
    return out


def exception_summary(result: CaseResult) -> str:
    """`Type: first line of the message`, and nothing else: no code, no paths, no names."""
    lines = result.message.strip().splitlines()
    first = lines[0].strip() if lines else ""
    if not first or first == "collection failure":
        raised = [
            m[1].strip()
            for line in result.text.splitlines()
            if (m := _EXC_LINE.match(line)) and _EXC_START.match(m[1].strip())
        ]
        fallback = "error during collection" if result.is_collection else result.outcome
        first = raised[0] if raised else fallback
    elif not _EXC_START.match(first) and not first.startswith(("failed on", "[XPASS")):
        kind = _exception_type(result.text)
        kind = kind or ("AssertionError" if first.startswith("assert") else "")
        first = f"{kind}: {first}" if kind else first
    return first[:200]


def exception_type(result: CaseResult) -> str:
    """The type of what a failing test raised when Python itself defines it (`AssertionError`,
    `ImportError`), else "": all a hidden test's failure may say."""
    summary = exception_summary(result)
    if wrapped := _WRAPPED.match(summary):
        summary = wrapped[1]
    if summary.startswith("assert"):
        return "AssertionError"
    found = re.match(r"([A-Za-z_][\w.]*)(?::|$)", summary.strip())
    name = found[1].rsplit(".", 1)[-1] if found else ""
    return name if name in BUILTIN_EXCEPTIONS else ""


def _exception_type(text: str) -> str:
    """The type on the traceback's last `path:line: Type` line (`--tb=long/auto`), if any."""
    for line in reversed(text.strip().splitlines()):
        if _TRACE_LOCATION.match(line):
            tail = line.rsplit(": ", 1)[-1].strip()
            return tail if re.fullmatch(r"[A-Za-z_][\w.]*", tail) else ""
    return ""
