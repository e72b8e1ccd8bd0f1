"""BM25 sparse vectors with no model download: fastembed's ``Qdrant/bm25`` scheme, computed by Qdrant Edge.

A document becomes a sparse vector whose indices are ``abs(mmh3_32(stem))`` of its stemmed, non-stopword
tokens and whose values are BM25's term-frequency part, ``tf * (k + 1) / (tf + k * (1 - b + b * len / avg_len))``;
a query gets weight 1 for each distinct token. The IDF factor is left to the collection: a sparse vector
configured with Qdrant's ``Modifier.IDF`` (Edge or server) multiplies each term by its IDF at search time,
so that a dot product of the two is the BM25 score. These are the vectors fastembed's ``Bm25("Qdrant/bm25")``
makes, so a collection filled by one can be searched with the other.

The work is done by :class:`qdrant_edge.Bm25` (stopwords, Snowball stemming, hashing, weights). Only the
splitting into tokens is done here, as fastembed does it (its own two regular expressions, then its length
limit), because Edge's defaults differ in three places, each measured against fastembed 0.9.1: its ``Word``
tokenizer splits ``snake_case`` at the underscore, which fastembed keeps as one token; it lowercases after
splitting, where fastembed lowercases first (``"İ"`` becomes ``"i"`` plus a combining dot, which fastembed
then splits off); and its ``max_token_len`` applies to the stem, fastembed's 40 characters to the token
(``"running"`` with a limit of 5: fastembed drops it, Edge keeps ``"run"``). The tokens are handed to
Edge's ``Whitespace`` tokenizer with lowercasing and the length limit off.

This module uses neither Haystack nor LangChain; the components and the LangChain sparse embeddings wrap it.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from simlm_haystack.docstrings import docstring_with
from simlm_haystack.errors import SettingsError
from simlm_haystack.text_checks import check_queries, check_strings, check_texts_and_titles

if TYPE_CHECKING:
    import qdrant_edge

#: fastembed's ``remove_non_alphanumeric``: anything but word characters and whitespace becomes a space.
_NOT_WORD_OR_SPACE = re.compile(r"[^\w\s]")
#: fastembed's ``SimpleTokenizer``, after lowercasing: anything but word characters becomes a space.
_NOT_WORD = re.compile(r"[^\w]")


@dataclass(frozen=True)
class SparseVector:
    """A sparse vector: the non-zero dimensions (ascending) and their values."""

    indices: tuple[int, ...]
    values: tuple[float, ...]


#: fastembed's ``avg_len`` (and Edge's), measured on no corpus: the default, and what a record without one means.
FIXED_AVG_LEN = 256.0
#: ``avg_len="corpus"``: measured on the documents a collection is first indexed with.
CORPUS_AVG_LEN = "corpus"

#: The BM25 settings' documentation, written once for every class that takes them (``docstring_with``).
BM25_SETTINGS_DOC = """\
:param k: Term-frequency saturation: how soon repeating a term stops adding to its weight (>= 0).
:param b: Length normalisation: 0 ignores document length, 1 divides fully by ``length / avg_len``.
:param avg_len: The average document length in tokens (after stopwords are removed) that ``b`` compares
    with: a number (fastembed's and Edge's default, 256, was measured on no corpus), or ``"corpus"``: the mean
    length of the documents the collection is first indexed with, measured then in Bm25's own tokens and kept
    in the collection's encoder record (later writes and queries use that value). On SciFact's train queries
    neither the measured value (151) nor Anserini's k=0.9, b=0.4 beat the default beyond noise, for hybrid
    or BM25 alone (BENCHMARKS.md, issue 27). Re-index to measure again when the documents added since
    outnumber those it was measured on, or are of another kind.
:param avg_len_documents: How many documents ``avg_len`` was measured on (set by :meth:`BM25Settings.measured`;
    None for a number given); kept in the record, never compared.
:param language: The language whose stopwords and Snowball stemmer are used unless ``stopwords`` or
    ``stemmer`` say otherwise (e.g. ``"english"``, ``"french"``; Edge refuses one it does not know).
:param stemmer: ``True``: the Snowball stemmer of ``language``; ``False``: no stemming; a Snowball
    language name (``"german"``): that stemmer.
:param stopwords: ``True``: the stopword list of ``language``; ``False``: none; a language name: that
    language's list; a list of words: exactly those (compared lowercased).
:param max_token_len: Tokens longer than this many characters are dropped before stemming (fastembed's
    40); ``None`` keeps them all."""


@docstring_with(bm25_settings=BM25_SETTINGS_DOC)
@dataclass(frozen=True)
class BM25Settings:
    """How text becomes BM25 sparse vectors; the defaults are fastembed's ``Qdrant/bm25`` (and Edge's).

    Record them with a collection: documents and queries must be encoded with the same settings.

    {bm25_settings}
    """

    k: float = 1.2
    b: float = 0.75
    avg_len: float | str = FIXED_AVG_LEN
    language: str = "english"
    stemmer: bool | str = True
    stopwords: bool | str | tuple[str, ...] = True
    max_token_len: int | None = 40
    avg_len_documents: int | None = None

    def __post_init__(self) -> None:
        for name in ("k", "b", "avg_len"):
            value = getattr(self, name)
            if name == "avg_len" and value == CORPUS_AVG_LEN:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                alternative = " or 'corpus'" if name == "avg_len" else ""
                raise SettingsError(f"BM25 {name} must be a finite number{alternative}, not {value!r}")
            object.__setattr__(self, name, float(value))
        if self.k < 0:
            raise SettingsError(f"BM25 k must be >= 0, not {self.k}")
        if not 0.0 <= self.b <= 1.0:
            raise SettingsError(f"BM25 b must be between 0 and 1, not {self.b}")
        if not self.measures_corpus and self.avg_len <= 0:  # type: ignore[operator]  # a float here
            raise SettingsError(f"BM25 avg_len must be > 0 or 'corpus', not {self.avg_len}")
        if self.avg_len_documents is not None and (
            isinstance(self.avg_len_documents, bool)
            or not isinstance(self.avg_len_documents, int)
            or self.avg_len_documents < 1
        ):
            raise SettingsError(f"BM25 avg_len_documents must be a positive count, not {self.avg_len_documents!r}")
        if not isinstance(self.language, str) or not self.language:
            raise SettingsError(f"BM25 language must be a language name such as 'english', not {self.language!r}")
        if not isinstance(self.stemmer, bool | str) or self.stemmer == "":
            raise SettingsError(f"BM25 stemmer must be True, False or a Snowball language name, not {self.stemmer!r}")
        if not isinstance(self.stopwords, bool | str):
            # A list or set (e.g. from YAML) is kept as a sorted tuple of distinct lowercased words, so that
            # equal stopword sets compare and serialise equal.
            if isinstance(self.stopwords, bytes) or not isinstance(self.stopwords, Sequence | set | frozenset):
                raise SettingsError(
                    f"BM25 stopwords must be True, False, a language name or a list of words, not {self.stopwords!r}"
                )
            words = list(self.stopwords)
            for word in words:
                if not isinstance(word, str):
                    raise SettingsError(f"BM25 stopwords: {word!r} is not a string")
            object.__setattr__(self, "stopwords", tuple(sorted({word.lower() for word in words})))
        elif self.stopwords == "":
            raise SettingsError("BM25 stopwords must be True, False, a language name or a list of words, not ''")
        if self.max_token_len is not None and (
            isinstance(self.max_token_len, bool) or not isinstance(self.max_token_len, int) or self.max_token_len < 1
        ):
            raise SettingsError(f"BM25 max_token_len must be a positive integer or None, not {self.max_token_len!r}")
        # Edge knows which languages it has stopwords and stemmers for: ask it now, not at the first document.
        edge_bm25(self)

    @property
    def measures_corpus(self) -> bool:
        """Whether ``avg_len`` is still to be measured on the corpus (``"corpus"``)."""
        return self.avg_len == CORPUS_AVG_LEN

    def measured(self, texts: Sequence[str], titles: Sequence[str | None] | None = None) -> BM25Settings:
        """These settings with ``avg_len="corpus"`` replaced by the mean length of these documents in Bm25's own
        tokens (:meth:`BM25Encoder.document_lengths`) and ``avg_len_documents`` by their number; settings with a
        number are returned as they are.

        :raises SettingsError: There are no documents to measure.
        """
        if not self.measures_corpus:
            return self
        if not texts:
            raise SettingsError("BM25 avg_len='corpus' needs documents to measure, and none were given")
        lengths = BM25Encoder(replace(self, avg_len=FIXED_AVG_LEN)).document_lengths(texts, titles)
        return replace(self, avg_len=round(max(sum(lengths) / len(lengths), 1.0), 4), avg_len_documents=len(lengths))

    def agrees_with(self, recorded: BM25Settings) -> list[str]:
        """What differs between these settings and a collection's ``recorded`` ones (empty: they agree).
        ``avg_len="corpus"`` agrees with a value measured on the corpus (and only with one);
        ``avg_len_documents`` is never compared."""
        mine, theirs = self.to_dict(), recorded.to_dict()
        for compared in (mine, theirs):
            compared.pop("avg_len_documents", None)
        if self.measures_corpus and recorded.avg_len_documents is not None:
            mine["avg_len"] = theirs["avg_len"]
        elif recorded.measures_corpus and self.avg_len_documents is not None:
            theirs["avg_len"] = mine["avg_len"]
        return [f"{name}={theirs[name]!r} vs {mine[name]!r}" for name in mine if mine[name] != theirs[name]]

    @classmethod
    def of(cls, bm25: BM25Settings | dict[str, Any] | None) -> BM25Settings:
        """The settings given as settings, as their dict, or not at all (the defaults)."""
        return bm25 if isinstance(bm25, BM25Settings) else cls.from_dict(bm25 or {})

    @classmethod
    def of_arguments(cls, arguments: Mapping[str, Any]) -> BM25Settings:
        """The settings among a caller's arguments (e.g. its ``locals()``: a component's flat signature)."""
        return cls(**{field.name: arguments[field.name] for field in fields(cls) if field.name in arguments})

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-able values (stopwords as a list); :meth:`from_dict` reads them back."""
        data = asdict(self)
        if self.avg_len_documents is None:  # a fixed avg_len keeps the form records had before it was measured
            del data["avg_len_documents"]
        if isinstance(self.stopwords, tuple):
            data["stopwords"] = list(self.stopwords)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BM25Settings:
        """Settings from :meth:`to_dict`'s output; missing keys take their defaults, unknown keys are refused."""
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SettingsError(f"Unknown BM25 settings {unknown}; known: {sorted(known)}")
        return cls(**data)

    def edge_config(self) -> qdrant_edge.Bm25Config:
        """The :class:`qdrant_edge.Bm25Config` for these settings, reading the tokens :func:`tokenize` made
        (split, lowercased and cut to ``max_token_len`` already)."""
        import qdrant_edge

        # "corpus" is measured before any document is encoded (BM25Encoder refuses to encode one before);
        # until then a query (whose vector does not depend on avg_len) and the checks of the language see 256.
        avg_len = FIXED_AVG_LEN if self.measures_corpus else self.avg_len
        stemmer: Any
        if self.stemmer is True:
            stemmer = None  # the language's own
        elif self.stemmer is False:
            stemmer = qdrant_edge.DisabledStemmer()
        else:
            stemmer = qdrant_edge.SnowballParams(_edge_enum(qdrant_edge.SnowballLanguage, self.stemmer, "stemmer"))
        stopwords: Any
        if self.stopwords is True:
            stopwords = None  # the language's own
        elif self.stopwords is False:
            stopwords = qdrant_edge.StopwordsSet(custom=set())
        elif isinstance(self.stopwords, str):
            stopwords = _edge_enum(qdrant_edge.Language, self.stopwords, "stopwords")
        else:
            stopwords = qdrant_edge.StopwordsSet(custom=set(self.stopwords))
        return qdrant_edge.Bm25Config(
            k=self.k,
            b=self.b,
            avg_len=avg_len,
            tokenizer=qdrant_edge.TokenizerType.Whitespace,
            language=self.language,
            lowercase=False,  # tokenize() lowercased already, in fastembed's order
            stopwords=stopwords,
            stemmer=stemmer,
            max_token_len=None,  # tokenize() applied it to the token; Edge would apply it to the stem
        )


def _edge_enum(enum: Any, name: str, setting: str) -> Any:
    """``enum.English`` for ``"english"``; a SettingsError naming the setting for a name Edge lacks."""
    member = getattr(enum, name.capitalize(), None)
    if member is None or not isinstance(member, enum):
        raise SettingsError(f"BM25 {setting}={name!r}: Qdrant Edge has no {enum.__name__} of that name")
    return member


def edge_bm25(settings: BM25Settings) -> qdrant_edge.Bm25:
    """A :class:`qdrant_edge.Bm25` for ``settings`` (cheap: no files are read); Edge's refusals as SettingsError."""
    import qdrant_edge

    config = settings.edge_config()
    try:
        return qdrant_edge.Bm25(config)
    except ValueError as error:
        raise SettingsError(f"Qdrant Edge refuses these BM25 settings ({settings}): {error}") from error


def tokenize(text: str, max_token_len: int | None = 40) -> list[str]:
    """``text`` split into lowercase tokens exactly as fastembed's ``Bm25`` splits it.

    fastembed: ``remove_non_alphanumeric``, then ``SimpleTokenizer.tokenize`` (lowercase, non-word
    characters to spaces, split), then ``_stem`` drops a token that is a punctuation character (only
    ``"_"`` can be: it is the one word character that is punctuation) or longer than ``token_max_length``.
    Stopwords and stemming are left to Edge.
    """
    words = _NOT_WORD.sub(" ", _NOT_WORD_OR_SPACE.sub(" ", text).lower()).split()
    return [
        word
        for word in words
        if not (len(word) == 1 and unicodedata.category(word).startswith("P"))
        and (max_token_len is None or len(word) <= max_token_len)
    ]


def document_text(text: str, title: str | None = None) -> str:
    """The text BM25 reads for a document: ``title + " " + text``, as the ``concat`` recipes (MiniLM, TAS-B)
    read it; BM25 has no pair reading, so SimLM's collections get the same text. An empty title is none."""
    return f"{title} {text}" if title else text


class BM25Encoder:
    """Documents and queries to BM25 sparse vectors, in fastembed's ``Qdrant/bm25`` scheme.

    ```python
    from simlm_haystack.sparse import BM25Encoder

    encoder = BM25Encoder()
    [vector] = encoder.encode_documents(["Paris is the capital of France."], titles=["Paris"])
    query = encoder.encode_query("capital of France")  # weight 1 per distinct term
    ```

    Search the document vectors in a sparse vector configured with ``Modifier.IDF``: without it, every
    term counts alike however common it is.

    :param settings: The BM25 settings (fastembed's ``Qdrant/bm25`` defaults when omitted).
    """

    def __init__(self, settings: BM25Settings | None = None) -> None:
        self.settings = settings if settings is not None else BM25Settings()
        self._bm25 = edge_bm25(self.settings)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.settings!r})"

    def _tokens(self, text: str) -> str:
        """The text as Edge's ``Whitespace`` tokenizer should read it: fastembed's tokens, space-separated."""
        return " ".join(tokenize(text, self.settings.max_token_len))

    def encode_documents(self, texts: Sequence[str], titles: Sequence[str | None] | None = None) -> list[SparseVector]:
        """BM25 term weights of each document, its title (``None``: none) read before its text.

        :raises TypeError: ``texts`` is not a list of strings, or ``titles`` not a list of strings or ``None``.
        :raises ValueError: ``titles`` and ``texts`` differ in length.
        """
        if self.settings.measures_corpus:
            raise SettingsError(
                "BM25 avg_len='corpus' is measured on the documents before any is encoded: index through "
                "index_documents, the indexing pipeline or the CLI (which measure it and keep it with the "
                "collection), or pass BM25Settings(avg_len='corpus').measured(texts, titles)"
            )
        texts, titles = check_texts_and_titles(texts, titles)
        return [
            _sparse_vector(self._bm25.embed_document(self._tokens(document_text(text, title))))
            for text, title in zip(texts, titles if titles is not None else [None] * len(texts), strict=True)
        ]

    def document_lengths(self, texts: Sequence[str], titles: Sequence[str | None] | None = None) -> list[int]:
        """Each document's length as BM25 counts it for ``avg_len``: its tokens after stopwords (repeats counted),
        title read before text.

        Counted by Edge's own ``Bm25`` with ``b=0`` and ``k=1``, whose weight of a term is ``2 tf / (tf + 1)``,
        so each term frequency is read back exactly as ``w / (2 - w)``: the tokens are the ones
        :meth:`encode_documents` weighs, never a second tokenizer's.
        """
        texts, titles = check_texts_and_titles(texts, titles)
        counter = edge_bm25(replace(self.settings, k=1.0, b=0.0, avg_len=1.0))
        return [
            sum(
                round(weight / (2.0 - weight))
                for weight in counter.embed_document(self._tokens(document_text(t, h))).values
            )
            for t, h in zip(texts, titles if titles is not None else [None] * len(texts), strict=True)
        ]

    def encode_queries(self, texts: Sequence[str]) -> list[SparseVector]:
        """Weight 1 for each distinct term of each query (IDF comes from the collection).

        :raises TypeError: ``texts`` is not a list of strings.
        :raises EmptyQueryError: A query is empty or only whitespace. (A query of stopwords alone is
            not an error: it gets an empty vector, which matches nothing.)
        """
        texts = check_strings("texts", texts)
        check_queries(texts)
        return [_sparse_vector(self._bm25.embed_query(self._tokens(text))) for text in texts]

    def encode_query(self, text: str) -> SparseVector:
        """:meth:`encode_queries` for one query."""
        if not isinstance(text, str):
            raise TypeError(f"A query must be a string, not {type(text).__name__}")
        return self.encode_queries([text])[0]


def _sparse_vector(edge_vector: qdrant_edge.SparseVector) -> SparseVector:
    return SparseVector(indices=tuple(edge_vector.indices), values=tuple(edge_vector.values))
