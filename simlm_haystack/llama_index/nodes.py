"""LlamaIndex nodes and Haystack Documents, one into the other: how a node is stored, and what a search returns.

A node is stored as the Haystack ``Document`` the package's collections hold (so that Haystack and LangChain read
it as their own): its id, its text alone (no metadata string), its metadata as the document's meta (the title
among it, under the embedding's ``title_key``) and, for a node cut from a document, that document's id under
:data:`REF_DOC_ID_KEY`. A found ``Document`` comes back as a ``NodeWithScore`` of the same id, text, metadata and
score, its source document restored as the node's ``SOURCE`` relationship.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from haystack import Document
from llama_index.core.schema import BaseNode, MetadataMode, NodeRelationship, NodeWithScore, RelatedNodeInfo, TextNode

#: The meta key that keeps the id of the document a node was cut from (LlamaIndex's ``node.ref_doc_id``).
REF_DOC_ID_KEY = "ref_doc_id"


def node_document(node: BaseNode) -> Document:
    """The Haystack ``Document`` a node is stored as (see the module docstring).

    :raises TypeError: ``node`` is not a LlamaIndex node.
    :raises ValueError: Its metadata already has :data:`REF_DOC_ID_KEY` for another document.
    """
    if not isinstance(node, BaseNode):
        raise TypeError(f"expected LlamaIndex nodes or documents, got {type(node).__name__}")
    meta: dict[str, Any] = dict(node.metadata)
    source = node.source_node
    if source is not None:
        if meta.get(REF_DOC_ID_KEY, source.node_id) != source.node_id:
            raise ValueError(
                f"node {node.node_id!r}: metadata[{REF_DOC_ID_KEY!r}] is {meta[REF_DOC_ID_KEY]!r}, but the node was "
                f"cut from {source.node_id!r}; that key keeps the source document's id"
            )
        meta[REF_DOC_ID_KEY] = source.node_id
    return Document(id=node.node_id, content=node.get_content(metadata_mode=MetadataMode.NONE), meta=meta)


def node_documents(nodes: Iterable[BaseNode]) -> Iterator[Document]:
    """:func:`node_document` of each node, lazily (a corpus never sits in memory whole)."""
    for node in nodes:
        yield node_document(node)


def document_node(document: Document) -> NodeWithScore:
    """A found ``Document`` as a ``NodeWithScore``: a ``TextNode`` of its id, text and meta (the source document,
    where one is kept, as the ``SOURCE`` relationship instead of a metadata key), with its score."""
    metadata = dict(document.meta)
    relationships = {}
    source = metadata.pop(REF_DOC_ID_KEY, None)
    if source is not None:
        relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=str(source))
    node = TextNode(id_=document.id, text=document.content or "", metadata=metadata, relationships=relationships)
    return NodeWithScore(node=node, score=document.score)
