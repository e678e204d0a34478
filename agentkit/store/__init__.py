"""Stores: the protocol, the records, and the in-tree backends."""

from agentkit.store.base import BaseStore, Store
from agentkit.store.records import ResultRecord, RunRecord, StoredRun

__all__ = ["BaseStore", "ResultRecord", "RunRecord", "Store", "StoredRun"]
