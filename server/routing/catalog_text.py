"""The `router://models` document as the command line prints it (`doctor`, `models`)."""

from __future__ import annotations

from typing import Any

from server.providers import NO_PROVIDER

MODELS_SHOWN_BY_DOCTOR = 5


def status_line(ok: bool, what: str, detail: str) -> str:
    return f"{'ok  ' if ok else 'FAIL'} {what}: {detail}"


def doctor_lines(catalog: dict[str, Any]) -> tuple[list[str], bool]:
    """The providers' part of `doctor`, and whether it is healthy: at least one provider configured,
    and every configured one usable. Unconfigured providers are information, not failures."""
    lines: list[str] = []
    healthy = True
    for entry in catalog["providers"]:
        name = entry["provider"]
        if not entry["configured"]:
            lines.append(f"--   {name}: not configured ({entry['problem']} to use it)")
        elif entry["usable"]:
            count = len(entry["models"])
            detail = f"answers at {entry['base_url_env']}; {count} model{'' if count == 1 else 's'}"
            lines.append(status_line(True, name, f"{detail}; default {entry['default_model']}"))
        else:
            healthy = False
            lines.append(status_line(False, name, _with_hint(entry)))
    if not any(entry["configured"] for entry in catalog["providers"]):
        healthy = False
        lines.append(status_line(False, "providers", NO_PROVIDER))
    return lines + _models_section(catalog), healthy


def _with_hint(entry: dict[str, Any]) -> str:
    """The problem, and the settings to check unless it names them already."""
    problem: str = entry["problem"]
    variables = [v for v in (entry["key_env"], entry["base_url_env"]) if v]
    if any(variable in problem for variable in variables):
        return problem
    return f"{problem} (check {' and '.join(variables)})"


def _models_section(catalog: dict[str, Any]) -> list[str]:
    configured = [entry for entry in catalog["providers"] if entry["configured"]]
    lines = ["models (all of them: memory-router models):"] if configured else []
    for entry in configured:
        names = [model.partition("/")[2] for model in entry["models"]]
        shown = ", ".join(names[:MODELS_SHOWN_BY_DOCTOR]) or "none"
        more = len(names) - MODELS_SHOWN_BY_DOCTOR
        note = f" ({entry['models_note']})" if "models_note" in entry else ""
        lines.append(f"  {entry['provider']}: {shown}{f' and {more} more' if more > 0 else ''}{note}")
    return lines


def model_lines(catalog: dict[str, Any]) -> list[str]:
    """One `provider/model` per line, configured providers only."""
    return [model for entry in catalog["providers"] for model in entry["models"]]


def model_notes(catalog: dict[str, Any]) -> list[str]:
    """What the lines leave out: unconfigured providers, and lists that could not be read."""
    notes = []
    for entry in catalog["providers"]:
        name = entry["provider"]
        if not entry["configured"]:
            notes.append(f"{name}: not configured ({entry['problem']})")
        elif "models_note" in entry:
            notes.append(f"{name}: {entry['models_note']} ({entry['problem']})")
    return notes
