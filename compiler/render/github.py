"""The ``github`` format: GitHub Actions workflow commands that annotate the pull request.

::

    ::error file=spec.yaml,line=3,col=14,title=mlplane [ref-undefined]::model ...%0Ahint: ...

The runner reads its stdout line by line and treats any line starting with ``::`` as a
command, so spec text inside a message could otherwise set environment variables, mask
values or stop command processing. Escaping as the runner un-escapes (``%``, CR and LF in
the data; additionally ``:`` and ``,`` in property values) keeps every annotation on one line;
anything after the data's ``::`` separator is data however it looks. Other control and
bidi characters are shown as ``\\u{XXXX}``, as in the text format, because annotations are
read by people.
"""

from __future__ import annotations

from collections.abc import Sequence

from mlplane.compiler.core.diagnostics import Diagnostic, Severity
from mlplane.compiler.render.common import RenderOptions, SourceLookup, make_safe, ordered

_COMMANDS: dict[Severity, str] = {
    Severity.ERROR: "error",
    Severity.WARNING: "warning",
    Severity.INFO: "notice",
}


def escape_data(text: str) -> str:
    """Escape a command's message the way the Actions runner un-escapes it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a property value (``file=…``, ``title=…``); ``:`` and ``,`` delimit properties."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _readable(text: str) -> str:
    # CR and LF are left to ``escape_data``: an escaped newline is a real line break in the
    # annotation, which is how the hint gets its own line.
    return make_safe(text, keep="\t\r\n")


def _message(diagnostic: Diagnostic) -> str:
    lines = [diagnostic.message]
    if diagnostic.hint:
        lines.append(f"hint: {diagnostic.hint}")
    lines += [f"note: {related.location}: {related.message}" for related in diagnostic.related]
    return "\n".join(lines)


def _properties(diagnostic: Diagnostic) -> str:
    pairs: list[tuple[str, str]] = []
    location = diagnostic.location
    if location is not None:
        pairs += [
            ("file", location.file),
            ("line", str(location.line)),
            ("col", str(location.column)),
        ]
    pairs.append(("title", f"mlplane [{diagnostic.code}]"))
    return ",".join(f"{key}={escape_property(_readable(value))}" for key, value in pairs)


def workflow_command(diagnostic: Diagnostic) -> str:
    """One diagnostic as one workflow-command line (without the line break)."""
    command = _COMMANDS[diagnostic.severity]
    data = escape_data(_readable(_message(diagnostic)))
    return f"::{command} {_properties(diagnostic)}::{data}"


def render_github(
    diagnostics: Sequence[Diagnostic], sources: SourceLookup, options: RenderOptions
) -> str:
    """One annotation per diagnostic; no summary, since the runner would show it as noise."""
    del sources, options  # annotations point at the file; GitHub shows the code itself
    return "".join(workflow_command(diagnostic) + "\n" for diagnostic in ordered(diagnostics))
