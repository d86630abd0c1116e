"""Report schemas: what a user may ask for (validated before anything is written) and reports as listed.

Units: dates are calendar dates; ``size_bytes`` bytes. Periods are those of
:data:`core.quant.periods.PERIODS`; a custom period needs ``start`` and ``end`` (start before end),
the other periods take neither. Whether the dates lie inside the data is checked by the service.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ReportType = Literal["performance", "allocation", "risk", "benchmark"]
ReportPeriod = Literal["MTD", "QTD", "YTD", "1Y", "3Y", "5Y", "max", "custom"]
ReportFormat = Literal["html", "pdf", "xlsx", "csv"]
ReportStatus = Literal["queued", "running", "done", "failed"]

REPORT_TYPES: tuple[str, ...] = ("performance", "allocation", "risk", "benchmark")
REPORT_PERIODS: tuple[str, ...] = ("MTD", "QTD", "YTD", "1Y", "3Y", "5Y", "max", "custom")
REPORT_FORMATS: tuple[str, ...] = ("html", "pdf", "xlsx", "csv")
REPORT_STATUSES: tuple[str, ...] = ("queued", "running", "done", "failed")


class ReportRequest(BaseModel):
    """One report to generate. ``config_id`` ``None`` means the active config version."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    report_type: ReportType
    period: ReportPeriod
    format: ReportFormat
    config_id: int | None = Field(default=None, ge=1)
    start: dt.date | None = None
    end: dt.date | None = None

    @model_validator(mode="after")
    def _check_range(self) -> ReportRequest:
        if self.period == "custom":
            if self.start is None:
                raise ValueError("start: is required for a custom period")
            if self.end is None:
                raise ValueError("end: is required for a custom period")
            if self.start >= self.end:
                raise ValueError(f"start: must be before the end date ({self.start} is not before {self.end})")
        elif self.start is not None or self.end is not None:
            raise ValueError(f"start: dates are only taken with the custom period, not {self.period}")
        return self


class ReportFilters(BaseModel):
    """History filters; ``owner`` only narrows an admin's view (analysts always see their own)."""

    model_config = ConfigDict(extra="forbid")

    report_type: ReportType | None = None
    format: ReportFormat | None = None
    status: ReportStatus | None = None
    owner: str | None = None
    since: dt.datetime | None = None
    limit: int = Field(default=200, ge=1, le=2000)


class ReportOut(BaseModel):
    """A report as listed (never the file's bytes)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    report_type: str
    period: str
    start: dt.date | None
    end: dt.date | None
    format: str
    status: str
    owner: str
    config_id: int | None
    task_run_id: int | None
    created_at: dt.datetime
    finished_at: dt.datetime | None
    filename: str | None
    size_bytes: int | None
    error: str | None

    @property
    def is_final(self) -> bool:
        return self.status in ("done", "failed")
