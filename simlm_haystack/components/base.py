"""What the document and the text embedder share: settings, serialisation and the loaded model."""

from __future__ import annotations

import copy
from typing import Any

from haystack import default_from_dict, default_to_dict
from haystack.utils import ComponentDevice, Secret, deserialize_secrets_inplace
from haystack.utils.hf import deserialize_hf_model_kwargs, serialize_hf_model_kwargs

from simlm_haystack.encoding import PRECISIONS, DualEncoder, Precision
from simlm_haystack.models import load_model
from simlm_haystack.recipes import Recipe, resolve_recipe, serialize_recipe

#: The default Hugging Face token: read from the environment at use, never serialised as a value.
HF_TOKEN = Secret.from_env_var(["HF_API_TOKEN", "HF_TOKEN"], strict=False)


class DualEncoderComponentBase:
    """Holds the init parameters both embedders take, and loads the shared model on ``warm_up``."""

    def __init__(
        self,
        *,
        model: str,
        recipe: str | Recipe | dict[str, Any] | None = None,
        device: ComponentDevice | None = None,
        token: Secret | None = HF_TOKEN,
        batch_size: int = 32,
        progress_bar: bool = True,
        precision: Precision = "exact",
        local_files_only: bool = False,
        trust_remote_code: bool = False,
        revision: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
        self.model = str(model)
        # Resolved now, so that a wrong or missing recipe is an error at construction, not mid-pipeline.
        self.recipe = resolve_recipe(self.model, recipe)
        self._recipe_argument = recipe
        self.device = ComponentDevice.resolve_device(device)
        self.token = token
        self.batch_size = batch_size
        self.progress_bar = progress_bar
        self.precision = precision
        self.local_files_only = local_files_only
        self.trust_remote_code = trust_remote_code
        self.revision = revision
        self.model_kwargs = model_kwargs
        self.tokenizer_kwargs = tokenizer_kwargs
        self.encoder: DualEncoder | None = None

    def _init_parameters(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "recipe": serialize_recipe(self.recipe if self._recipe_argument is not None else None),
            "device": self.device.to_dict(),
            "token": self.token.to_dict() if self.token else None,
            "batch_size": self.batch_size,
            "progress_bar": self.progress_bar,
            "precision": self.precision,
            "local_files_only": self.local_files_only,
            "trust_remote_code": self.trust_remote_code,
            "revision": self.revision,
            "model_kwargs": self.model_kwargs,
            "tokenizer_kwargs": self.tokenizer_kwargs,
        }

    def to_dict(self) -> dict[str, Any]:
        """Serialise the component; secrets are stored as environment-variable references only."""
        data = default_to_dict(self, **self._init_parameters())
        if data["init_parameters"].get("model_kwargs") is not None:
            serialize_hf_model_kwargs(data["init_parameters"]["model_kwargs"])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """Deserialise a component written by :meth:`to_dict`."""
        data = copy.deepcopy(data)  # deserialising in place would change the caller's dict
        init_parameters = data.get("init_parameters", {})
        if init_parameters.get("device") is not None:
            init_parameters["device"] = ComponentDevice.from_dict(init_parameters["device"])
        deserialize_secrets_inplace(init_parameters, keys=["token"])
        if init_parameters.get("model_kwargs") is not None:
            deserialize_hf_model_kwargs(init_parameters["model_kwargs"])
        return default_from_dict(cls, data)

    @classmethod
    def from_encoder(cls, encoder: DualEncoder, **init_parameters: Any) -> Any:
        """A component around an already loaded :class:`DualEncoder` (e.g. the model a trainer is
        training): no second copy of the weights is loaded, and ``warm_up`` keeps this encoder.

        ``init_parameters`` are the component's other settings (``batch_size``, ``progress_bar``, ...);
        ``model``, ``recipe`` and ``precision`` come from the encoder. Serialising the component
        records ``encoder.loaded.source``, the checkpoint the encoder was loaded from.
        """
        component = cls(
            model=encoder.loaded.source, recipe=encoder.recipe, precision=encoder.precision, **init_parameters
        )
        component.encoder = encoder
        return component

    def warm_up(self) -> None:
        """Load the model (once; components with the same model and settings share it)."""
        if self.encoder is not None:
            return
        loaded = load_model(
            self.model,
            device=self.device.to_torch(),
            token=self.token.resolve_value() if self.token else None,
            local_files_only=self.local_files_only,
            revision=self.revision,
            trust_remote_code=self.trust_remote_code,
            model_kwargs=self.model_kwargs,
            tokenizer_kwargs=self.tokenizer_kwargs,
        )
        self.encoder = DualEncoder(loaded, self.recipe, precision=self.precision)

    def _warm_encoder(self) -> DualEncoder:
        if self.encoder is None:
            self.warm_up()
        assert self.encoder is not None
        return self.encoder

    @property
    def embedding_dim(self) -> int:
        """The vector size (loads the model)."""
        return self._warm_encoder().embedding_dim
