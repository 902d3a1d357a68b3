"""One base for the project's errors: each is an AmrPruneError (and still the ValueError/RuntimeError it was),
carries its hint, and the command line finds hint and wording by type, with nothing imported to do so."""
from __future__ import annotations

import pytest

from amrlib.errors import AmrPruneError


def _errors():
    from amrlib.models import ModelError
    from amrlib.pruning.api import PruningError
    from amrlib.train.objective import DivergedError
    from cli.pipeline import NoPrefectServer
    from datastore.dvc_store import DataStoreError
    from flows.sweep import SweepError
    from settings.sections import ConfigError
    from tasks.peers import PeerStageError
    from tracking.errors import TrackingUnavailable
    from tracking.lineage import RegistryError
    from tracking.outbox import SyncError
    from tracking.registry import TamperedArtefact
    return [ModelError, PruningError, DivergedError, NoPrefectServer, DataStoreError, SweepError, ConfigError,
            PeerStageError, TrackingUnavailable, RegistryError, SyncError, TamperedArtefact]


@pytest.mark.parametrize("cls", _errors(), ids=lambda c: c.__name__)
def test_every_project_error_has_the_one_base(cls):
    assert issubclass(cls, AmrPruneError) and issubclass(cls, (ValueError, RuntimeError))


def test_hints_and_wording_by_type():
    from cli.common import _plain, hint_for
    from settings.sections import ConfigError
    from tasks.peers import PeerStageError
    from tracking.errors import TrackingUnavailable
    assert "configs/default.yaml" in hint_for(ConfigError("x"))
    assert "peer.target_macs_reduction" in hint_for(PeerStageError("x"))        # the subclass's own hint
    assert hint_for(ConfigError("x", hint="do this")) == "do this"
    assert hint_for(TrackingUnavailable("x")) is None and not _plain(TrackingUnavailable("x"))
    assert _plain(ConfigError("x")) and _plain(FileExistsError("x"))
    assert "permissions" in hint_for(PermissionError("x"))
    from amrlib.data.dataset import DatasetError
    assert "RML2016" in hint_for(DatasetError("x")) and _plain(DatasetError("x"))


def test_a_pickled_error_keeps_its_class_hint():
    import pickle

    from settings.sections import ConfigError
    err = pickle.loads(pickle.dumps(ConfigError("bad")))   # as from a Dask worker
    assert type(err) is ConfigError and str(err) == "bad" and "CONFIGURATION.md" in err.hint
