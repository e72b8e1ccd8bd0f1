"""The encoder settings: one frozen object that every embedder (Haystack's and LangChain's) holds.

``model, recipe, device, token, precision, backend, local_files_only, trust_remote_code, revision,
model_kwargs, tokenizer_kwargs, batch_size`` are validated here once, serialised here once (the token as an
environment-variable reference only, the device, ``torch.dtype`` values in ``model_kwargs``), documented
here once (:data:`SETTINGS_DOC`, put into each class's docstring by :func:`document_settings`), and
loaded here (:meth:`EncoderSettings.load`: the model is loaded once per process and settings, so that
embedders of the same settings share it).

Nothing here knows Haystack components or LangChain: the components keep their flat keyword-only
signatures (Haystack serialises init parameters) and build one of these; the LangChain embeddings hold one.
``Secret`` and ``ComponentDevice`` are Haystack's utility types, used for what they do well: a token that
is never written out as a value, and a device that resolves to Haystack's default.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from haystack.utils import ComponentDevice, Secret
from haystack.utils.hf import deserialize_hf_model_kwargs, serialize_hf_model_kwargs

from simlm_haystack.backends import Backend, check_backend
from simlm_haystack.docstrings import docstring_with
from simlm_haystack.encoding import DualEncoder, Precision, load_encoder
from simlm_haystack.errors import SettingsError
from simlm_haystack.recipe_resolution import resolve_recipe
from simlm_haystack.recipes import Recipe, serialize_recipe

#: The default Hugging Face token: read from the environment at use, never serialised as a value.
HF_TOKEN = Secret.from_env_var(["HF_API_TOKEN", "HF_TOKEN"], strict=False)

#: Each setting's documentation, written once; :func:`document_settings` puts it where a docstring says
#: ``{encoder_settings}``.
SETTINGS_DOC = """\
:param model: A hub id or a local checkpoint directory.
:param recipe: A recipe name, a :class:`~simlm_haystack.Recipe` or its dict; found from the model when
    omitted: a recipe file beside the checkpoint, the model cards this package knows, then the checkpoint's
    own sentence-transformers configuration (see :mod:`simlm_haystack.recipe_resolution`).
:param device: The device to run on (``"cpu"``, ``"cuda:0"`` or a Haystack ``ComponentDevice``);
    Haystack's default device when omitted.
:param token: The Hugging Face token for private models (a Haystack ``Secret``); read from
    ``HF_API_TOKEN`` / ``HF_TOKEN`` by default, never serialised as a value.
:param precision: ``"exact"`` (default): the fp32 reference forward, what training computes.
    ``"fast"``: the same maths with less work ([CLS] recipes compute the last layer for [CLS] only,
    ~1e-6 from exact) and bf16 autocast only where bf16 is native (AVX-512 BF16 / AMX CPUs, GPUs).
    ``"bf16"``: bf16 autocast everywhere (several times slower than fp32 on CPUs without native bf16).
    ``"int8"`` (``backend="onnx"`` only): int8 weights, float vectors. See BENCHMARKS.md.
:param backend: ``"torch"`` (default) runs the model; ``"onnx"`` runs it exported once with PyTorch's
    dynamo exporter in ONNX Runtime (cached by the weights' fingerprint, checked against torch when
    loaded); ``"openvino"`` runs the same graph in OpenVINO. Tokenising and pooling are the same code
    on every backend.
:param local_files_only: Never ask the Hugging Face Hub.
:param trust_remote_code: Allow a checkpoint's own code (off: only verified architectures).
:param revision: A branch, tag or commit of the hub model.
:param model_kwargs: Passed to ``AutoModel.from_pretrained`` (``torch.dtype`` values may be written
    as ``"torch.float16"``).
:param tokenizer_kwargs: Passed to ``AutoTokenizer.from_pretrained``; a ``model_max_length`` must be
    the recipe's length for the side being encoded.
:param batch_size: Texts per forward pass where many are encoded at once."""

#: The names of the settings, in signature order.
SETTINGS_FIELDS: tuple[str, ...] = (
    "model",
    "recipe",
    "device",
    "token",
    "precision",
    "backend",
    "local_files_only",
    "trust_remote_code",
    "revision",
    "model_kwargs",
    "tokenizer_kwargs",
    "batch_size",
)


def settings_arguments(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The settings among a caller's arguments (e.g. its ``locals()``), to pass on as keywords."""
    return {name: arguments[name] for name in SETTINGS_FIELDS}


#: :func:`docstring_with` for the settings alone.
document_settings = docstring_with(encoder_settings=SETTINGS_DOC)


def check_batch_size(batch_size: object) -> int:
    """``batch_size`` if it is a positive integer, else a :class:`SettingsError` (a ``ValueError``)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise SettingsError(f"batch_size must be a positive integer, not {batch_size!r}")
    return batch_size


def _as_device(device: str | ComponentDevice | None) -> ComponentDevice:
    return ComponentDevice.resolve_device(ComponentDevice.from_str(device) if isinstance(device, str) else device)


def _as_secret(token: str | Secret | None) -> Secret | None:
    # A plain string (LangChain users pass one) is kept as a token Secret: never shown, never serialised.
    return Secret.from_token(token) if isinstance(token, str) else token


def hub_options(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """How to reach a model's files, from the settings among ``arguments`` (``revision``, ``token`` as a string,
    a ``Secret`` or None, ``local_files_only``): the keywords of
    :func:`~simlm_haystack.recipe_resolution.resolve_recipe` and of a checkpoint's files."""
    token = _as_secret(arguments["token"])
    return {
        "revision": arguments["revision"],
        "token": token.resolve_value() if token else None,
        "local_files_only": bool(arguments["local_files_only"]),
    }


def _model_kwargs(model_kwargs: dict[str, Any] | None) -> dict[str, Any] | None:
    """A copy with ``"torch.float16"``-style strings read as ``torch.dtype`` (the caller's dict stays as it is)."""
    if model_kwargs is None:
        return None
    kwargs = copy.deepcopy(model_kwargs)
    deserialize_hf_model_kwargs(kwargs)
    return kwargs


@dataclass(frozen=True)
class EncoderSettings:
    """What decides how an encoder is loaded and read; build it with :meth:`create` (which validates).

    Fields are those of :data:`SETTINGS_DOC`, resolved: ``recipe`` is a :class:`Recipe`, ``device`` a
    ``ComponentDevice``, ``token`` a ``Secret`` (or None). ``recipe_given`` records whether the recipe was
    passed (serialised then) or found from the model (found again when loading).
    """

    model: str
    recipe: Recipe
    device: ComponentDevice
    token: Secret | None
    precision: Precision
    backend: Backend
    local_files_only: bool
    trust_remote_code: bool
    revision: str | None
    model_kwargs: dict[str, Any] | None
    tokenizer_kwargs: dict[str, Any] | None
    batch_size: int
    recipe_given: bool

    @classmethod
    def create(
        cls,
        *,
        model: str,
        recipe: str | Recipe | dict[str, Any] | None = None,
        device: str | ComponentDevice | None = None,
        token: str | Secret | None = HF_TOKEN,
        precision: Precision = "exact",
        backend: Backend = "torch",
        local_files_only: bool = False,
        trust_remote_code: bool = False,
        revision: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        batch_size: int = 32,
        recipe_given: bool | None = None,
    ) -> EncoderSettings:
        """Validate and resolve the settings: an unknown recipe, a backend that does not run ``precision``
        or a batch size below 1 is an error here, at construction, not mid-pipeline.

        ``recipe_given`` (default: whether ``recipe`` is set) says whether to serialise the recipe: a caller
        that resolved the recipe itself passes it resolved, with whether its user gave one.
        """
        check_backend(backend, precision)
        model = str(model)
        hub = hub_options({"revision": revision, "token": token, "local_files_only": local_files_only})
        return cls(
            model=model,
            recipe=resolve_recipe(model, recipe, **hub),
            device=_as_device(device),
            token=_as_secret(token),
            precision=precision,
            backend=backend,
            local_files_only=bool(local_files_only),
            trust_remote_code=bool(trust_remote_code),
            revision=revision,
            model_kwargs=_model_kwargs(model_kwargs),
            tokenizer_kwargs=dict(tokenizer_kwargs) if tokenizer_kwargs is not None else None,
            batch_size=check_batch_size(batch_size),
            recipe_given=recipe is not None if recipe_given is None else recipe_given,
        )

    @classmethod
    def of_encoder(cls, encoder: DualEncoder, **settings: Any) -> EncoderSettings:
        """The settings of an already loaded encoder (its checkpoint, recipe, precision, backend and
        device), with ``settings`` for the rest (``batch_size``, ...)."""
        return cls.create(
            model=encoder.loaded.source,
            recipe=encoder.recipe,
            device=ComponentDevice.from_str(str(encoder.loaded.model.device)),
            precision=encoder.precision,
            backend=encoder.backend,
            **settings,
        )

    def arguments(self) -> dict[str, Any]:
        """The settings as keyword arguments, resolved (to build another holder of the same settings)."""
        return settings_arguments(vars(self))

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-able init parameters: the token as its environment-variable reference (a
        token given as a value cannot be serialised: Haystack's ``Secret`` refuses), the recipe only
        when it was given, ``torch.dtype`` values as their names."""
        model_kwargs = copy.deepcopy(self.model_kwargs)
        if model_kwargs is not None:
            serialize_hf_model_kwargs(model_kwargs)
        return {
            "model": self.model,
            "recipe": serialize_recipe(self.recipe) if self.recipe_given else None,
            "device": self.device.to_dict(),
            "token": self.token.to_dict() if self.token is not None else None,
            "precision": self.precision,
            "backend": self.backend,
            "local_files_only": self.local_files_only,
            "trust_remote_code": self.trust_remote_code,
            "revision": self.revision,
            "model_kwargs": model_kwargs,
            "tokenizer_kwargs": self.tokenizer_kwargs,
            "batch_size": self.batch_size,
        }

    @staticmethod
    def init_values(data: Mapping[str, Any]) -> dict[str, Any]:
        """:meth:`to_dict`'s parameters as init arguments again: the device and the token as objects (``data`` is
        not changed)."""
        values = dict(data)
        if isinstance(values.get("device"), dict):
            values["device"] = ComponentDevice.from_dict(values["device"])
        if isinstance(values.get("token"), dict):
            values["token"] = Secret.from_dict(values["token"])
        return values

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncoderSettings:
        """Settings written by :meth:`to_dict` (``data`` is not changed)."""
        return cls.create(**cls.init_values(data))

    def load(self) -> DualEncoder:
        """The encoder these settings describe; loaded once per process and settings (the token is not part
        of that key), so that every embedder of the same settings shares one model."""
        return load_encoder(
            self.model,
            self.recipe,
            precision=self.precision,
            backend=self.backend,
            device=self.device.to_torch(),
            token=self.token.resolve_value() if self.token else None,
            local_files_only=self.local_files_only,
            revision=self.revision,
            trust_remote_code=self.trust_remote_code,
            model_kwargs=self.model_kwargs,
            tokenizer_kwargs=self.tokenizer_kwargs,
        )


class FromSettings:
    """A read-only attribute that reads the owner's ``settings`` (so that ``embedder.model``,
    ``embedder.recipe``, ... keep working while the value lives in one place)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return getattr(instance.settings, self.name)


class HoldsEncoderSettings:
    """A mixin: the settings as attributes (``model``, ``recipe``, ...), and the encoder loaded from them once.

    Subclasses set ``self.settings`` and ``self.encoder = None`` in ``__init__``.
    """

    settings: EncoderSettings
    encoder: DualEncoder | None

    model = FromSettings()
    recipe = FromSettings()
    device = FromSettings()
    token = FromSettings()
    precision = FromSettings()
    backend = FromSettings()
    local_files_only = FromSettings()
    trust_remote_code = FromSettings()
    revision = FromSettings()
    model_kwargs = FromSettings()
    tokenizer_kwargs = FromSettings()
    batch_size = FromSettings()

    def load_encoder(self) -> DualEncoder:
        """The encoder, loaded from the settings on first use (shared with every holder of equal settings)."""
        if self.encoder is None:
            self.encoder = self.settings.load()
        return self.encoder

    @property
    def embedding_dim(self) -> int:
        """The vector size (loads the model)."""
        return self.load_encoder().embedding_dim
