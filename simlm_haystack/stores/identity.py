"""A collection remembers what filled it: the encoder's identity, kept with the collection and checked.

Vectors of one model and recipe mean nothing to another: MiniLM's mean-pooled documents searched with
[CLS] queries (recipe ``simlm``) have the same size and distance, so nothing else stops the search, and
it returns confident nonsense. So the first of our writers to put documents into an empty collection
keeps its :class:`EncoderIdentity` with it, and every later writer or query encoder is compared with
that identity before it encodes anything.

- **Where** (:class:`CollectionIdentity`, each store's ``collection_identity()``). A Qdrant collection
  (server, cluster or ``qdrant-client``'s local mode, which keeps it in its ``meta.json``) holds it in the
  collection's ``metadata`` under :data:`METADATA_KEY`; a Qdrant Edge collection in its collection file
  (``collection.json`` beside the shard, written atomically), under the same key.
- **What.** The model as it was named, the fingerprint of its weights, tokenizer and any dense layers
  (:meth:`~simlm_haystack.encoding.DualEncoder.fingerprint`: hashed once per loaded model), and the
  recipe's name with every field that changes a vector. Not the backend and not the precision: an ONNX
  or int8 query encoder of the same weights and recipe reads the collection as it was meant to be read.
- **The check** (:func:`check_identity`, run once by a :class:`CollectionCheck` that whatever holds both
  the encoder and the store runs): an empty collection takes the writer's identity; one whose identity
  matches passes; one whose identity differs is an :class:`~simlm_haystack.EncoderMismatchError` naming
  both and the ways out, unless ``allow_other_encoder=True`` (a warning then); one with documents but no
  identity (written before collections kept one) is used as it is, with one warning per collection and
  process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from simlm_haystack.errors import EncoderMismatchError, SettingsError, StoreError
from simlm_haystack.recipes import VECTOR_FIELDS, vector_fields
from simlm_haystack.sparse import BM25Settings

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from simlm_haystack.encoding import DualEncoder

logger = logging.getLogger(__name__)

#: The key under which a collection's metadata (Qdrant) or collection file (Edge) holds the identity.
METADATA_KEY = "simlm_haystack_encoder"
#: How many hex digits of a fingerprint messages show.
SHORT_FINGERPRINT = 12

_warned_unrecorded: set[str] = set()
_warned_lock = threading.Lock()


@dataclass(frozen=True)
class EncoderIdentity:
    """What decides a collection's vectors: the dense model's weights (by fingerprint) and recipe, and the
    settings of the BM25 sparse side where there is one.

    :param model: The model as its embedder was given it (a hub id or a path); shown, not compared. None for
        a reader that uses the sparse side alone.
    :param fingerprint: :func:`~simlm_haystack.fingerprint.model_fingerprint` of the weights and tokenizer.
    :param recipe: The recipe's ``name`` and its :data:`~simlm_haystack.recipes.VECTOR_FIELDS`.
    :param sparse: The sparse side's settings (:meth:`simlm_haystack.sparse.BM25Settings.to_dict`); None for a
        dense-only collection, writer or reader.
    """

    model: str | None
    fingerprint: str | None
    recipe: dict[str, Any] | None
    sparse: dict[str, Any] | None = None

    @classmethod
    def of(
        cls, model: str | None, encoder: DualEncoder | None, sparse: dict[str, Any] | None = None
    ) -> EncoderIdentity:
        """The identity of a loaded dense encoder (its model named as its embedder was given it; None for none)
        and of the sparse side's settings (None for none)."""
        if encoder is None:
            return cls(model=None, fingerprint=None, recipe=None, sparse=sparse)
        recipe = encoder.recipe.to_dict()
        return cls(
            model=str(model),
            fingerprint=encoder.fingerprint(),
            recipe={"name": recipe["name"], **{name: recipe[name] for name in VECTOR_FIELDS}},
            sparse=sparse,
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"model": self.model, "fingerprint": self.fingerprint, "recipe": self.recipe}
        if self.sparse is not None:  # dense-only identities keep the form they had before the sparse side existed
            data["sparse"] = dict(self.sparse)
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str) -> EncoderIdentity:
        try:
            sparse = data.get("sparse")
            return cls(
                model=None if data["model"] is None else str(data["model"]),
                fingerprint=None if data["fingerprint"] is None else str(data["fingerprint"]),
                recipe=None if data["recipe"] is None else dict(data["recipe"]),
                sparse=None if sparse is None else dict(sparse),
            )
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            raise StoreError(f"{where} has a malformed {METADATA_KEY!r} entry ({error!r}): {data!r}") from None

    def differences(self, other: EncoderIdentity, *, reading: bool = False) -> list[str]:
        """What differs between the vectors of ``self`` (a collection's) and of ``other`` (empty: the same).

        A writer must match on both sides. A reader (``reading``) is compared only on the sides it uses: a dense
        query needs the same dense encoder, a sparse or hybrid one the same sparse side."""
        found = []
        if not (reading and other.fingerprint is None):
            if self.fingerprint != other.fingerprint:
                found.append("the model weights" if self.fingerprint and other.fingerprint else "the dense side")
            # A field missing from a record (written before it existed) is at its default.
            mine, theirs = vector_fields(self.recipe or {}), vector_fields(other.recipe or {})
            fields = [
                f"{name} ({mine[name]!r} vs {theirs[name]!r})"
                for name in VECTOR_FIELDS
                if self.recipe and other.recipe and mine[name] != theirs[name]
            ]
            if fields:
                found.append("the recipe's " + ", ".join(fields))
        if not (reading and other.sparse is None):
            sparse = _sparse_differences(self.sparse, other.sparse)
            if sparse:
                found.append(f"the BM25 sparse side ({sparse})")
        return found

    def describe(self) -> str:
        dense = (
            f"model {self.model!r}, recipe {(self.recipe or {}).get('name')!r}, "
            f"weights {self.fingerprint[:SHORT_FINGERPRINT]}"
            if self.fingerprint
            else "no dense model"
        )
        return dense + (", and BM25 sparse vectors" if self.sparse is not None else "")


def _sparse_differences(recorded: dict[str, Any] | None, other: dict[str, Any] | None) -> str:
    """What differs between a collection's BM25 settings and another's, as :meth:`BM25Settings.agrees_with`
    compares them (a field a record lacks, written before it existed, is at its default: ``avg_len`` 256);
    empty when they agree."""
    if recorded is None or other is None:
        return "" if recorded is other else f"{_describe_sparse(recorded)} vs {_describe_sparse(other)}"
    try:
        differences = BM25Settings.from_dict(other).agrees_with(BM25Settings.from_dict(recorded))
    except SettingsError:  # settings this version cannot read: compared as they are
        return "" if recorded == other else f"{_describe_sparse(recorded)} vs {_describe_sparse(other)}"
    return ", ".join(differences)


def _describe_sparse(sparse: dict[str, Any] | None) -> str:
    if sparse is None:
        return "none"
    return ", ".join(f"{name}={value!r}" for name, value in sorted(sparse.items()))


@dataclass(frozen=True)
class CollectionIdentity:
    """Where one collection keeps its encoder identity: how to count its documents and read and write the identity.

    Each store answers with its own (``collection_identity()``: see :mod:`simlm_haystack.stores.support`).
    """

    description: str
    count: Callable[[], int]
    read: Callable[[], Any]
    write: Callable[[dict[str, Any]], None]

    def identity(self) -> EncoderIdentity | None:
        data = self.read()
        return None if data is None else EncoderIdentity.from_dict(data, self.description)


def qdrant_collection_identity(
    client: QdrantClient, collection_name: str, description: str | None = None
) -> CollectionIdentity:
    """The identity of a collection on a ``QdrantClient`` (server, cluster or local mode), in its metadata."""

    def read() -> Any:
        metadata = client.get_collection(collection_name).config.metadata or {}
        return metadata.get(METADATA_KEY)

    return CollectionIdentity(
        description=description or f"Qdrant collection {collection_name!r}",
        count=lambda: client.count(collection_name, exact=True).count,
        read=read,
        write=lambda identity: client.update_collection(collection_name, metadata={METADATA_KEY: identity}),
    )


def check_identity(
    collection: CollectionIdentity,
    identity: EncoderIdentity,
    *,
    writes: bool,
    allow_other_encoder: bool = False,
) -> bool:
    """Compare ``identity`` with the one the collection keeps (see the module docstring); ``writes``: the
    caller is about to write, so an empty collection takes its identity.

    :returns: Whether the question is settled for this collection: False only for a reader of an empty
        collection that keeps no identity (a writer may still fill it with another encoder).
    """
    count = collection.count()
    if count == 0 and writes:
        collection.write(identity.to_dict())
        return True
    recorded = collection.identity()
    if recorded is None:
        if count == 0:
            return False
        with _warned_lock:
            first = collection.description not in _warned_unrecorded
            _warned_unrecorded.add(collection.description)
        if first:
            logger.warning(
                "%s keeps no identity of the encoder that filled it (written before simlm-haystack kept one), "
                "so it cannot be checked against %s. Re-index it to keep one.",
                collection.description,
                identity.describe(),
            )
        return True
    differences = recorded.differences(identity, reading=not writes)
    if not differences:
        return True
    if allow_other_encoder:
        logger.warning(
            "%s was filled by %s; using it with %s as allow_other_encoder=True asks (they differ in %s)",
            collection.description,
            recorded.describe(),
            identity.describe(),
            "; and in ".join(differences),
        )
        return True
    action = "written to" if writes else "searched"
    raise EncoderMismatchError(
        f"{collection.description} was filled by another encoder and cannot be {action} with this one. "
        f"Collection: {recorded.describe()}. This encoder: {identity.describe()}. They differ in "
        f"{'; and in '.join(differences)}, so its vectors and this encoder's are not comparable; nothing was encoded. "
        "Use the encoder that filled it, or index the documents again with this one into a new collection "
        "(CLI: `simlm-haystack index ... --index NEW`) or in place of what it holds (CLI: `index --reindex`; "
        "Python: store.delete_all_documents() first); if you know the vectors are comparable, pass "
        "allow_other_encoder=True (CLI: --allow-other-encoder)."
    )


class CollectionCheck:
    """The check of one collection against the encoder about to write to it or search it.

    Whatever holds both the encoder and the store runs it once the encoder is loaded and before it encodes
    anything: the pipelines' and the drop-in retriever's ``warm_up``, :func:`~simlm_haystack.index_documents`,
    the evaluation, the LangChain store. Once settled (see :func:`check_identity`) it costs nothing.

    :param collection: The collection's identity keeper (the store's ``collection_identity()``), or a
        callable returning it, called when the check first runs (so that building a pipeline opens nothing).
    """

    def __init__(
        self,
        collection: CollectionIdentity | Callable[[], CollectionIdentity],
        *,
        writes: bool,
        allow_other_encoder: bool = False,
    ) -> None:
        self._collection = collection
        self.writes = writes
        self.allow_other_encoder = allow_other_encoder
        self.settled = False

    def run(self, identity: EncoderIdentity | Callable[[], EncoderIdentity]) -> None:
        """Check ``identity`` (or what the callable returns: only computed when needed) against the collection,
        unless an earlier run settled it."""
        if self.settled:
            return
        if not isinstance(identity, EncoderIdentity):
            identity = identity()
        collection = self._collection if isinstance(self._collection, CollectionIdentity) else self._collection()
        self._collection = collection
        self.settled = check_identity(
            collection, identity, writes=self.writes, allow_other_encoder=self.allow_other_encoder
        )
