"""Plain data the engine hands to the layers above."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edefter_helper.engine.names import LedgerName


@dataclass(frozen=True, order=True, slots=True)
class MonthKey:
    vkn: str
    branch: str  # "0000" when the firm has no branch
    period: str  # "YYYY-MM"

    @property
    def package_name(self) -> str:
        """İzibiz's archive name: VKN-YYYYMM-ŞŞŞŞ.zip."""
        return f"{self.vkn}-{self.period.replace('-', '')}-{self.branch}.zip"

    def __str__(self) -> str:
        return f"{self.vkn}/{self.branch}/{self.period}"


@dataclass(frozen=True, slots=True)
class Problem:
    code: str
    message: str  # Turkish, for the user
    path: str | None = None

    def as_json(self) -> dict:
        out = {"code": self.code, "message": self.message}
        if self.path:
            out["path"] = self.path
        return out


@dataclass(slots=True)  # no __dict__ per file: an office lists ~240 000 of them
class LedgerFile:
    location: str  # the path as text; `path` makes the Path only when asked (scans list 84 000 files)
    name: LedgerName
    size: int
    branch: str
    # identical copies elsewhere (a list when there are any; the shared empty tuple when none, as for
    # almost every file: no list per file)
    also_at: list[str] | tuple = ()
    sha256: str | None = None  # of the bytes verify read (set by verify; pack refuses other bytes)

    @property
    def path(self) -> Path:
        return Path(self.location)

    @property
    def kind(self) -> str:
        return self.name.kind

    @property
    def part(self) -> int:
        return self.name.part

    def as_json(self) -> dict:
        out = {"path": self.location, "kind": self.kind, "part": self.part, "size": self.size,
               "name": self.name.filename}
        if self.also_at:
            out["also_at"] = list(self.also_at)
        return out


@dataclass(slots=True)
class MonthSet:
    key: MonthKey
    files: list[LedgerFile] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)  # worth knowing, not a reason to refuse
    stage: str = "ledger-only"
    complete: bool = False
    valid: bool | None = None  # set by verify
    company: str | None = None  # Kurum Unvanı / Adı Soyadı when known
    signers: set[str] = field(default_factory=set)  # certificate subjects that signed its files (verify)
    countersigners: set[str] = field(default_factory=set)

    def as_json(self) -> dict:
        out = {
            "vkn": self.key.vkn,
            "branch": self.key.branch,
            "period": self.key.period,
            "stage": self.stage,
            "complete": self.complete,
            "files": [f.as_json() for f in self.files],
            "problems": [p.as_json() for p in self.problems],
            "warnings": [p.as_json() for p in self.warnings],
        }
        if self.company:
            out["company"] = self.company
        if self.valid is not None:
            out["valid"] = self.valid
        return out
