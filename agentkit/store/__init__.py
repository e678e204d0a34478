"""Stores: the protocol, the records, and the in-tree backends."""

from agentkit.store.base import BaseStore, Store
from agentkit.store.outbox import Outbox, OutboxStore
from agentkit.store.postgres import PostgresStore
from agentkit.store.records import ResultRecord, RunRecord, StoredRun
from agentkit.store.sqlite import SQLiteStore

__all__ = [
    "BaseStore",
    "Outbox",
    "OutboxStore",
    "PostgresStore",
    "ResultRecord",
    "RunRecord",
    "SQLiteStore",
    "Store",
    "StoredRun",
]
