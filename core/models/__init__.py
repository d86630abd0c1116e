"""Every model module, imported so that Base.metadata knows all tables (Alembic env.py relies on it)."""

from core.models.alert import AlertNotification
from core.models.app_setting import AppSetting
from core.models.asset import Asset, MarketCap, Price
from core.models.audit import AuditEvent
from core.models.base import Base, utcnow
from core.models.factor import Dividend, FactorValue
from core.models.index import Allocation, IndexValue, Rebalance, RiskMetric
from core.models.report import Report
from core.models.strategy import StrategyConfigRow
from core.models.sweep import Sweep, SweepChunk, SweepVariant
from core.models.task import TaskRun, WorkerHeartbeat
from core.models.telemetry import Timing
from core.models.user import Invitation, User

__all__ = [
    "AlertNotification",
    "AppSetting",
    "Asset",
    "MarketCap",
    "Price",
    "AuditEvent",
    "Base",
    "utcnow",
    "Allocation",
    "Dividend",
    "FactorValue",
    "IndexValue",
    "Rebalance",
    "RiskMetric",
    "Report",
    "StrategyConfigRow",
    "Sweep",
    "SweepChunk",
    "SweepVariant",
    "TaskRun",
    "WorkerHeartbeat",
    "Timing",
    "Invitation",
    "User",
]
