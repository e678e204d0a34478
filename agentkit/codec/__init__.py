"""The layered codec: agent results and clean values as authenticated bytes.

``Codec`` tries its layers in order (pickle → JSON → string by default) and writes an
envelope (:mod:`agentkit.envelope`) that records the layer, a LOSSY flag, the key id and a
32-byte tag: HMAC-SHA256 with a signing key, SHA-256 without. Pickle is written and read
only with a signing key, verified before any byte is decoded, and loaded through a
restricted unpickler.
"""

from agentkit.codec._codec import DEFAULT_LAYERS, LAYER_NAMES, BlobInfo, Codec
from agentkit.codec.keyring import MIN_KEY_BYTES, Keyring
from agentkit.errors import (
    CodecError,
    CorruptError,
    EncodeError,
    LayerNotAcceptedError,
    TamperedError,
    UnknownLayerError,
    UnsignedError,
)

__all__ = [
    "DEFAULT_LAYERS",
    "LAYER_NAMES",
    "MIN_KEY_BYTES",
    "BlobInfo",
    "Codec",
    "CodecError",
    "CorruptError",
    "EncodeError",
    "Keyring",
    "LayerNotAcceptedError",
    "TamperedError",
    "UnknownLayerError",
    "UnsignedError",
]
