"""The same exact encoders, hybrid search and collections in LlamaIndex (extra ``simlm-haystack[llama-index]``).

```python
from simlm_haystack.llama_index import DualEncoderEmbedding, DualEncoderRetriever, index_nodes
```

:class:`DualEncoderEmbedding` is a LlamaIndex ``BaseEmbedding`` (and the swap for ``HuggingFaceEmbedding``);
:func:`index_nodes` writes LlamaIndex documents or nodes into a collection in this package's layout, through the
write path of ``index``; :class:`DualEncoderRetriever` searches it, dense, sparse or hybrid, as a LlamaIndex
``BaseRetriever``. Built on the Haystack components (one encoding path and one search under all three frameworks).
"""

try:
    import llama_index.core  # noqa: F401
except ImportError as error:
    raise ImportError(
        f"simlm_haystack.llama_index needs LlamaIndex ({error.name} is not installed): "
        'pip install "simlm-haystack[llama-index]"'
    ) from error

from simlm_haystack.llama_index.embedding import DualEncoderEmbedding
from simlm_haystack.llama_index.filters import haystack_filters
from simlm_haystack.llama_index.retriever import DualEncoderRetriever
from simlm_haystack.llama_index.writing import index_nodes

__all__ = ["DualEncoderEmbedding", "DualEncoderRetriever", "haystack_filters", "index_nodes"]
