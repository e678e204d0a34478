"""Make any agent result safe to store: :class:`ObjectSanitizer` and its helpers.

>>> from agentkit.sanitizer import ObjectSanitizer
>>> clean, report = ObjectSanitizer().sanitize({"ok": 1, "api_key": "sk-123"})
>>> clean
{'ok': 1, 'api_key': '***'}
>>> report.paths
['$.api_key']
"""

from agentkit.sanitizer._compiled import native_available
from agentkit.sanitizer._config import Handler, SanitizeContext
from agentkit.sanitizer._core import ObjectSanitizer
from agentkit.sanitizer.handlers import PLACEHOLDER_KEY, is_placeholder
from agentkit.sanitizer.redact import DEFAULT_SECRET_KEYS, REDACTED

__all__ = [
    "DEFAULT_SECRET_KEYS",
    "PLACEHOLDER_KEY",
    "REDACTED",
    "Handler",
    "ObjectSanitizer",
    "SanitizeContext",
    "is_placeholder",
    "native_available",
]
