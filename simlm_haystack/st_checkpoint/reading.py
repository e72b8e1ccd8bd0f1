"""A recipe read from a sentence-transformers checkpoint's own configuration.

``modules.json`` lists the modules; each is read from its folder's config: the ``Transformer`` (lengths and
lowercasing in ``sentence_bert_config.json``, the tokenizer's ``model_max_length``, the model's position
embeddings), the ``Pooling`` (every mode sentence-transformers has, alone or concatenated, and
``include_prompt``), any ``Dense`` layers, and ``Normalize``; ``config_sentence_transformers.json`` gives the
prompts and the similarity. The result is a :class:`~simlm_haystack.recipes.Recipe` that the one encoding
path runs exactly as ``SentenceTransformer.encode_query`` / ``encode_document`` would.

A checkpoint with a module that path cannot run exactly (its own code, word embeddings, a CNN or LSTM, a
router, ...) is one :class:`~simlm_haystack.RecipeError` that names the module, before any weights load.
"""

from __future__ import annotations

from typing import Any

from simlm_haystack.errors import RecipeError
from simlm_haystack.recipes import POOLING_MODES, DenseLayer, Recipe
from simlm_haystack.st_checkpoint.files import CheckpointFiles

#: The name derived recipes carry (shown in messages; the identity compares the fields, not the name).
DERIVED_RECIPE_NAME = "sentence-transformers"
#: sentence-transformers' legacy pooling flags, in the order its ``Pooling`` concatenates them.
LEGACY_POOLING_FLAGS: dict[str, str] = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
#: The prompt names ``encode_document`` tries, in its order.
DOCUMENT_PROMPT_NAMES: tuple[str, ...] = ("document", "passage", "corpus")
#: Modules sentence-transformers has that this encoding path does not run, and why.
REFUSED_MODULES: dict[str, str] = {
    "WordEmbeddings": "a word-embedding model, not a transformer",
    "StaticEmbedding": "a static word-embedding model, not a transformer",
    "BoW": "a bag-of-words model, not a transformer",
    "WordWeights": "word weights for a word-embedding model",
    "CNN": "a CNN over word embeddings",
    "LSTM": "an LSTM over word embeddings",
    "WeightedLayerPooling": "it pools every layer's hidden states, not the last layer's",
    "Router": "it routes queries and documents through different modules",
    "Asym": "it routes queries and documents through different modules",
    "CLIPModel": "an image-and-text model",
    "LayerNorm": "a LayerNorm after pooling, which the encoding path does not run",
}
#: ``model_type`` values of sentence-transformers' other model kinds: not one vector per text.
OTHER_MODEL_TYPES: tuple[str, ...] = ("SparseEncoder", "CrossEncoder", "MultiVectorEncoder")
_HUGE = 10**8


def _refuse(model: str, why: str) -> RecipeError:
    return RecipeError(
        f"Model {model!r} cannot be read exactly from its sentence-transformers configuration: {why}. "
        "Nothing was loaded. Pass recipe= a recipe that says how to read it, if one can."
    )


def _module_kind(model: str, entry: dict[str, Any]) -> str:
    """The class name of a ``modules.json`` entry, or a refusal naming it."""
    type_name = str(entry.get("type", ""))
    described = f"module {entry.get('idx', '?')} ({type_name!r} in {entry.get('path') or 'the root folder'!r})"
    if not type_name.startswith("sentence_transformers."):
        raise _refuse(model, f"{described} is the checkpoint's own code (remote code), which is never run here")
    kind = type_name.rsplit(".", 1)[-1]
    if kind in REFUSED_MODULES:
        raise _refuse(model, f"{described} is {REFUSED_MODULES[kind]}")
    if kind not in ("Transformer", "Pooling", "Dense", "Normalize", "Dropout"):
        raise _refuse(model, f"{described} is not one of Transformer, Pooling, Dense, Normalize")
    return kind


def _transformer_lengths(model: str, files: CheckpointFiles, config: dict[str, Any]) -> tuple[int, int, bool]:
    """The query and document max lengths, and ``do_lower_case``, as sentence-transformers sets them."""
    task = config.get("transformer_task", "feature-extraction")
    if task != "feature-extraction":
        raise _refuse(model, f"its Transformer runs the task {task!r}, not 'feature-extraction'")
    modalities = config.get("modality_config") or {"text": {}}
    if set(modalities) != {"text"}:
        raise _refuse(model, f"its Transformer reads {sorted(map(str, modalities))}, not text alone")
    if config.get("module_output_name", "token_embeddings") != "token_embeddings":
        raise _refuse(model, f"its Transformer outputs {config['module_output_name']!r}, not token embeddings")
    max_length = config.get("max_seq_length")
    processor_kwargs = config.get("processor_kwargs") or config.get("tokenizer_args") or {}
    if max_length is None:
        max_length = processor_kwargs.get("model_max_length")
    if max_length is None:
        # As sentence-transformers does: the tokenizer's own limit, capped at the model's position embeddings.
        tokenizer_config = files.json("tokenizer_config.json", optional=True) or {}
        positions = (files.json("config.json", optional=True) or {}).get("max_position_embeddings", -1)
        max_length = min(int(tokenizer_config.get("model_max_length") or _HUGE), _HUGE)
        if positions not in (None, -1):
            max_length = min(max_length, int(positions))
        if max_length >= _HUGE:
            raise _refuse(model, "neither it nor its tokenizer nor its model config gives a maximum length")
    query = config.get("query_length") or max_length
    document = config.get("document_length") or max_length
    return int(query), int(document), bool(config.get("do_lower_case", False))


def _pooling(model: str, config: dict[str, Any]) -> tuple[tuple[str, ...], bool]:
    """The pooling modes (in concatenation order) and ``include_prompt``."""
    modes = config.get("pooling_mode")
    if modes is None:
        modes = [mode for flag, mode in LEGACY_POOLING_FLAGS.items() if config.get(flag)] or ["mean"]
    modes = (modes,) if isinstance(modes, str) else tuple(modes)
    unknown = [mode for mode in modes if mode not in POOLING_MODES]
    if unknown:
        raise _refuse(model, f"its Pooling mode {unknown} is not one of {POOLING_MODES}")
    return modes, bool(config.get("include_prompt", True))


def _dense(model: str, path: str, config: dict[str, Any]) -> DenseLayer:
    for key in ("module_input_name", "module_output_name"):
        if config.get(key, "sentence_embedding") not in (None, "sentence_embedding"):
            raise _refuse(model, f"its Dense layer in {path!r} maps {config[key]!r}, not the sentence embedding")
    try:
        return DenseLayer(
            path=path,
            in_features=int(config["in_features"]),
            out_features=int(config["out_features"]),
            bias=bool(config.get("bias", True)),
            activation=str(config.get("activation_function") or "torch.nn.modules.linear.Identity"),
            use_residual=bool(config.get("use_residual", False)),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise _refuse(model, f"its Dense layer in {path!r} has a malformed config ({error})") from None


def _prompts(config: dict[str, Any]) -> tuple[str, str]:
    """The query and document prompts as ``encode_query`` / ``encode_document`` pick them."""
    prompts = {str(name): str(text) for name, text in (config.get("prompts") or {}).items()}
    default = prompts.get(config["default_prompt_name"], "") if config.get("default_prompt_name") else ""
    query = prompts.get("query", default)
    document = next((prompts[name] for name in DOCUMENT_PROMPT_NAMES if name in prompts), default)
    return query, document


def _similarity(model: str, name: str | None, normalize: bool) -> str:
    if name in (None, "cosine"):
        return "cosine"
    if name in ("dot", "dot_product"):
        return "dot_product"
    if name == "euclidean" and normalize:
        return "cosine"  # on unit vectors, Euclidean distance orders results exactly as cosine does
    raise _refuse(model, f"its similarity {name!r} is not cosine or dot product (Qdrant would rank otherwise)")


def sentence_transformers_recipe(files: CheckpointFiles) -> Recipe | None:
    """The recipe a sentence-transformers checkpoint's configuration describes; ``None`` if it has no
    ``modules.json`` (it is not one).

    :raises RecipeError: it has a module or setting the encoding path cannot run exactly (the message names it).
    :raises HubUnreachableError: a hub id whose files are not cached, and the Hub cannot be asked.
    """
    model = files.model
    modules = files.json("modules.json")
    if modules is None:
        return None
    st_config = files.json("config_sentence_transformers.json", optional=True) or {}
    if st_config.get("model_type", "SentenceTransformer") in OTHER_MODEL_TYPES:
        raise _refuse(model, f"it is a {st_config['model_type']}, not a SentenceTransformer (one vector per text)")
    kinds = [(_module_kind(model, entry), str(entry.get("path") or "")) for entry in modules]
    kinds = [(kind, path) for kind, path in kinds if kind != "Dropout"]  # the identity in inference
    order = [kind for kind, _ in kinds]
    if not order or order[0] != "Transformer" or order.count("Transformer") != 1:
        raise _refuse(model, f"its modules are {order}; the first and only Transformer must come first")
    if kinds[0][1]:
        raise _refuse(
            model, f"its Transformer is in the subfolder {kinds[0][1]!r}; pass that folder as model= with recipe="
        )
    if order.count("Pooling") != 1 or order[1] != "Pooling":
        raise _refuse(model, f"its modules are {order}; one Pooling must follow the Transformer")
    if "Normalize" in order and order.index("Normalize") != len(order) - 1:
        raise _refuse(model, f"its modules are {order}; Normalize is supported last only")
    if any(kind not in ("Dense", "Normalize") for kind in order[2:]):
        raise _refuse(model, f"its modules are {order}")
    query_length, document_length, lowercase = _transformer_lengths(
        model, files, files.json("sentence_bert_config.json", optional=True) or {}
    )
    modes, include_prompt = _pooling(model, files.json(f"{kinds[1][1]}/config.json") or {})
    dense = tuple(
        _dense(model, path, files.json(f"{path}/config.json") or {}) for kind, path in kinds if kind == "Dense"
    )
    normalize = "Normalize" in order
    similarity = _similarity(model, st_config.get("similarity_fn_name"), normalize)
    query_prefix, document_prefix = _prompts(st_config)
    return Recipe(
        name=DERIVED_RECIPE_NAME,
        query_max_length=query_length,
        document_max_length=document_length,
        title_mode="concat",
        query_prefix=query_prefix,
        document_prefix=document_prefix,
        pooling=modes,
        normalize=normalize,
        similarity=similarity,  # type: ignore[arg-type]
        # sentence-transformers' MultipleNegativesRankingLoss scores with scale 20 (t = 0.05) by default.
        temperature=0.05 if similarity == "cosine" else 1.0,
        lowercase=lowercase,
        prompt_in_pooling=include_prompt,
        dense=dense,
    )


def describe_recipe(recipe: Recipe) -> str:
    """One line of what a recipe reads: pooling, dense layers, normalisation, similarity, prompts, lengths."""
    parts = [f"pooling {'+'.join(recipe.pooling_modes)}"]
    parts += [f"dense {layer.path} ({layer.in_features}->{layer.out_features})" for layer in recipe.dense]
    parts.append("L2-normalised" if recipe.normalize else "not normalised")
    parts.append(recipe.similarity)
    parts.append(f"query prompt {recipe.query_prefix!r}, document prompt {recipe.document_prefix!r}")
    if not recipe.prompt_in_pooling:
        parts.append("prompt tokens not pooled")
    parts.append(f"up to {recipe.query_max_length} / {recipe.document_max_length} tokens")
    if recipe.lowercase:
        parts.append("lowercased")
    return ", ".join(parts)
