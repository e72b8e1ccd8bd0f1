"""The same exact encoders in LangChain: ``Embeddings``, BM25 ``SparseEmbeddings``, a Qdrant vector store (extra).

```python
from simlm_haystack.langchain import BM25SparseEmbeddings, DualEncoderEmbeddings, DualEncoderQdrantVectorStore
```
"""

try:
    import langchain_core  # noqa: F401
    import langchain_qdrant  # noqa: F401
except ImportError as error:
    raise ImportError(
        f"simlm_haystack.langchain needs LangChain ({error.name} is not installed): "
        'pip install "simlm-haystack[langchain]"'
    ) from error

from simlm_haystack.langchain.embeddings import DualEncoderEmbeddings
from simlm_haystack.langchain.layout import HAYSTACK_HYBRID_LAYOUT, HAYSTACK_LAYOUT
from simlm_haystack.langchain.sparse import BM25SparseEmbeddings
from simlm_haystack.langchain.vectorstore import DualEncoderQdrantVectorStore

__all__ = [
    "HAYSTACK_HYBRID_LAYOUT",
    "HAYSTACK_LAYOUT",
    "BM25SparseEmbeddings",
    "DualEncoderEmbeddings",
    "DualEncoderQdrantVectorStore",
]
