"""A collection remembers what filled it: the encoder's identity, recorded with the collection and checked.

Vectors of one model and recipe mean nothing to another: MiniLM's mean-pooled documents searched with
[CLS] queries (recipe ``simlm``) have the same size and distance, so nothing else stops the search, and
it returns confident nonsense. So the first of our writers to put documents into an empty collection
records its :class:`EncoderIdentity` with it, and every later writer or query encoder is compared with
that record before it encodes anything.

- **Where.** A Qdrant collection (server, cluster or ``qdrant-client``'s local mode, which keeps it in
  its ``meta.json``) holds it in the collection's ``metadata`` under :data:`METADATA_KEY`; a Qdrant
  Edge collection in its ``collection.json`` beside the shard (written atomically), under the same key.
- **What.** The model as it was named, the fingerprint of its weights and tokenizer
  (:func:`~simlm_haystack.fingerprint.cached_model_fingerprint`: hashed once per loaded model), and the
  recipe's name with every field that changes a vector. Not the backend and not the precision: an ONNX
  or int8 query encoder of the same weights and recipe reads the collection as it was meant to be read.
- **The check** (:func:`check_encoder`): an empty collection takes the writer's identity; one whose
  record matches passes; one whose record differs is an :class:`~simlm_haystack.EncoderMismatchError`
  naming both identities and the ways out, unless ``allow_other_encoder=True`` (a warning then); one
  with documents but no record (written before records existed) is used as it is, with one warning per
  collection and process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from simlm_haystack.errors import EncoderMismatchError, StoreError
from simlm_haystack.fingerprint import cached_model_fingerprint
from simlm_haystack.recipes import Recipe

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

logger = logging.getLogger(__name__)

#: The key under which a collection's metadata (Qdrant) or ``collection.json`` (Edge) holds the record.
METADATA_KEY = "simlm_haystack_encoder"
#: The recipe fields that change a vector; a recipe's name, temperature and hub ids do not.
VECTOR_FIELDS: tuple[str, ...] = (
    "pooling",
    "normalize",
    "similarity",
    "query_max_length",
    "document_max_length",
    "title_mode",
    "default_title",
    "query_prefix",
    "document_prefix",
)
#: How many hex digits of a fingerprint messages show.
SHORT_FINGERPRINT = 12

_warned_unrecorded: set[str] = set()
_warned_lock = threading.Lock()


class EncoderOwner(Protocol):
    """What the check reads of an embedder (ours, Haystack or LangChain): its model name, its recipe, and
    its loaded encoder after ``warm_up``. Stores sit below the embedders and never import them."""

    model: str
    recipe: Recipe
    encoder: Any

    def warm_up(self) -> Any: ...


@dataclass(frozen=True)
class EncoderIdentity:
    """What decides a collection's vectors: the model's weights (by fingerprint) and the recipe.

    :param model: The model as its embedder was given it (a hub id or a path); shown, not compared.
    :param fingerprint: :func:`~simlm_haystack.fingerprint.model_fingerprint` of the weights and tokenizer.
    :param recipe: The recipe's ``name`` and its :data:`VECTOR_FIELDS`.
    """

    model: str
    fingerprint: str
    recipe: dict[str, Any]

    @classmethod
    def of(cls, owner: EncoderOwner) -> EncoderIdentity:
        """The identity of an embedder; loads its model if it is not loaded yet."""
        if owner.encoder is None:
            owner.warm_up()
        encoder = owner.encoder
        loaded = encoder.loaded
        recipe = encoder.recipe.to_dict()
        return cls(
            model=str(owner.model),
            fingerprint=cached_model_fingerprint(loaded.model, loaded.tokenizer),
            recipe={"name": recipe["name"], **{name: recipe[name] for name in VECTOR_FIELDS}},
        )

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "fingerprint": self.fingerprint, "recipe": dict(self.recipe)}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> EncoderIdentity:
        try:
            return cls(model=str(data["model"]), fingerprint=str(data["fingerprint"]), recipe=dict(data["recipe"]))
        except (KeyError, TypeError, ValueError) as error:
            raise StoreError(f"{where} has a malformed {METADATA_KEY!r} record ({error!r}): {data!r}") from None

    def differences(self, other: EncoderIdentity) -> list[str]:
        """What differs between the vectors of ``self`` and of ``other`` (empty: the same vectors)."""
        found = ["the model weights"] if self.fingerprint != other.fingerprint else []
        fields = [
            f"{name} ({self.recipe.get(name)!r} vs {other.recipe.get(name)!r})"
            for name in VECTOR_FIELDS
            if self.recipe.get(name) != other.recipe.get(name)
        ]
        if fields:
            found.append("the recipe's " + ", ".join(fields))
        return found

    def describe(self) -> str:
        return (
            f"model {self.model!r}, recipe {self.recipe.get('name')!r}, weights {self.fingerprint[:SHORT_FINGERPRINT]}"
        )


@dataclass(frozen=True)
class CollectionRecord:
    """Where one collection keeps its record: how to count its documents and read and write the record."""

    description: str
    count: Callable[[], int]
    read: Callable[[], Any]
    write: Callable[[dict[str, Any]], None]

    def identity(self) -> EncoderIdentity | None:
        data = self.read()
        return None if data is None else EncoderIdentity.from_dict(data, self.description)


def qdrant_client_record(
    client: QdrantClient, collection_name: str, description: str | None = None
) -> CollectionRecord:
    """The record of a collection on a ``QdrantClient`` (server, cluster or local mode), in its metadata."""

    def read() -> Any:
        metadata = client.get_collection(collection_name).config.metadata or {}
        return metadata.get(METADATA_KEY)

    return CollectionRecord(
        description=description or f"Qdrant collection {collection_name!r}",
        count=lambda: client.count(collection_name, exact=True).count,
        read=read,
        write=lambda record: client.update_collection(collection_name, metadata={METADATA_KEY: record}),
    )


def collection_record(store: Any) -> CollectionRecord:
    """The record of a ``QdrantDocumentStore``'s or an ``EdgeDocumentStore``'s collection (opened here)."""
    from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

    from simlm_haystack.stores.edge import EdgeDocumentStore
    from simlm_haystack.stores.edge.collection import read_record, write_record
    from simlm_haystack.stores.qdrant import check_store

    if isinstance(store, EdgeDocumentStore):
        store.open()
        directory = store.collection_path
        assert directory is not None

        def write(record: dict[str, Any]) -> None:
            write_record(directory, {**(read_record(directory) or {}), METADATA_KEY: record})

        return CollectionRecord(
            description=f"Qdrant Edge collection {store.index!r} at {directory}",
            count=store.count_documents,
            read=lambda: (read_record(directory) or {}).get(METADATA_KEY),
            write=write,
        )
    if isinstance(store, QdrantDocumentStore):
        check_store(store)  # opens (or creates) the collection; an unreachable server is one StoreError
        where = store.url or store.host or (Path(store.path).resolve() if store.path else store.location)
        # qdrant-haystack keeps its client private and offers no collection metadata; check_store opened it.
        return qdrant_client_record(store._client, store.index, f"Qdrant collection {store.index!r} at {where}")
    raise TypeError(f"No encoder record for {type(store).__name__}: use a Qdrant or Qdrant Edge store")


def read_identity(store: Any) -> EncoderIdentity | None:
    """The identity recorded with ``store``'s collection, or None (empty, or written by an older version)."""
    return collection_record(store).identity()


def record_encoder(store: Any, owner: EncoderOwner) -> EncoderIdentity:
    """Record ``owner``'s identity with ``store``'s collection, replacing any record: for a caller that
    knows this encoder filled it (the evaluation, after matching every document's fingerprint)."""
    identity = EncoderIdentity.of(owner)
    collection_record(store).write(identity.to_dict())
    return identity


def check_record(
    record: CollectionRecord,
    identity: EncoderIdentity,
    *,
    writes: bool,
    allow_other_encoder: bool = False,
) -> bool:
    """Compare ``identity`` with the collection's record (see the module docstring); ``writes``: the
    caller is about to write, so an empty collection takes its identity.

    :returns: Whether the question is settled for this collection: False only for a reader of an empty
        collection without a record (a writer may still fill it with another encoder).
    """
    count = record.count()
    if count == 0 and writes:
        record.write(identity.to_dict())
        return True
    recorded = record.identity()
    if recorded is None:
        if count == 0:
            return False
        with _warned_lock:
            first = record.description not in _warned_unrecorded
            _warned_unrecorded.add(record.description)
        if first:
            logger.warning(
                "%s has no record of the encoder that filled it (written before simlm-haystack recorded one), "
                "so it cannot be checked against %s. Re-index it to record one.",
                record.description,
                identity.describe(),
            )
        return True
    differences = recorded.differences(identity)
    if not differences:
        return True
    if allow_other_encoder:
        logger.warning(
            "%s was filled by %s; using it with %s as allow_other_encoder=True asks (they differ in %s)",
            record.description,
            recorded.describe(),
            identity.describe(),
            "; and in ".join(differences),
        )
        return True
    action = "written to" if writes else "searched"
    raise EncoderMismatchError(
        f"{record.description} was filled by another encoder and cannot be {action} with this one. "
        f"Collection: {recorded.describe()}. This encoder: {identity.describe()}. They differ in "
        f"{'; and in '.join(differences)}, so its vectors and this encoder's are not comparable; nothing was encoded. "
        "Use the encoder that filled it, or index the documents again with this one into a new collection "
        "(CLI: `simlm-haystack index ... --index NEW`) or in place of what it holds (CLI: `index --reindex`; "
        "Python: store.delete_all_documents() first); if you know the vectors are comparable, pass "
        "allow_other_encoder=True (CLI: --allow-other-encoder)."
    )


def check_encoder(
    store: Any, owner: EncoderOwner, *, writes: bool, allow_other_encoder: bool = False
) -> EncoderIdentity:
    """Check that ``owner`` (an embedder) may write to (``writes``) or search ``store``'s collection:
    see the module docstring. Loads the embedder's model; returns its identity."""
    identity = EncoderIdentity.of(owner)
    check_record(collection_record(store), identity, writes=writes, allow_other_encoder=allow_other_encoder)
    return identity


class CollectionGuard:
    """A check an embedder runs once, when it warms up, before it encodes anything: set up by the
    pipeline builders, the retriever and the indexing functions (see :func:`guard_collection`)."""

    def __init__(self, store: Any, *, writes: bool, allow_other_encoder: bool) -> None:
        self.store = store
        self.writes = writes
        self.allow_other_encoder = allow_other_encoder
        self.checked = False

    def check(self, owner: EncoderOwner) -> None:
        if not self.checked:
            self.checked = check_record(
                collection_record(self.store),
                EncoderIdentity.of(owner),
                writes=self.writes,
                allow_other_encoder=self.allow_other_encoder,
            )


#: The attribute under which an embedder keeps its guards.
GUARDS_ATTRIBUTE = "_collection_guards"


def guard_collection(owner: Any, store: Any, *, writes: bool, allow_other_encoder: bool = False) -> None:
    """Make ``owner`` (an embedder) check ``store``'s record when it next warms up (see :func:`run_guards`)."""
    guards: list[CollectionGuard] = owner.__dict__.setdefault(GUARDS_ATTRIBUTE, [])
    guards[:] = [guard for guard in guards if guard.store is not store]
    guards.append(CollectionGuard(store, writes=writes, allow_other_encoder=allow_other_encoder))


def run_guards(owner: Any) -> None:
    """Run the checks :func:`guard_collection` set up on ``owner`` that have not passed yet (cheap after that)."""
    for guard in owner.__dict__.get(GUARDS_ATTRIBUTE, ()):
        guard.check(owner)
