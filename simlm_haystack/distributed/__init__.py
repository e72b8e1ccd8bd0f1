"""Beyond one machine: encode and index a corpus with Ray Data (the optional extra ``simlm-haystack[ray]``).

```python
from simlm_haystack import DualEncoderDocumentEmbedder, qdrant_document_store
from simlm_haystack.distributed import index_with_ray, ray_cluster

embedder = DualEncoderDocumentEmbedder(model="intfloat/simlm-base-msmarco-finetuned")
store = qdrant_document_store(embedder, url="http://qdrant:6333", index="msmarco", shard_number=6,
                              replication_factor=2, write_consistency_factor=1)
with ray_cluster("auto"):  # the cluster `ray start` made; None starts one on this machine
    report = index_with_ray("corpus.jsonl", embedder, store, gpus_per_worker=1)
```

- :mod:`~simlm_haystack.distributed.cluster`: joining or starting the cluster (usage statistics off).
- :mod:`~simlm_haystack.distributed.corpus`: a JSONL file cut into blocks of lines that workers read themselves.
- :mod:`~simlm_haystack.distributed.workers`: the Ray Data worker (one actor per worker, the model loaded once).
- :mod:`~simlm_haystack.distributed.targets`: how workers write: a server from every worker, an embedded
  collection through one writer actor.
- :mod:`~simlm_haystack.distributed.indexing`: :func:`index_with_ray` and :func:`encode_with_ray`.

Importing this package does not import Ray; calling into it without Ray installed is a
:class:`~simlm_haystack.errors.SettingsError` saying what to install.
"""

from simlm_haystack.distributed.cluster import RAY_EXTRA, RayCluster, RayJobError, ray_cluster
from simlm_haystack.distributed.indexing import RayIndexReport, encode_with_ray, index_with_ray
from simlm_haystack.distributed.workers import BatchReport

__all__ = [
    "RAY_EXTRA",
    "BatchReport",
    "RayCluster",
    "RayIndexReport",
    "RayJobError",
    "encode_with_ray",
    "index_with_ray",
    "ray_cluster",
]
