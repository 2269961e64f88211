"""Atomic output folders: a try's outputs are published whole by a manifest, or not at all.

Hostile storage: a directory or a file in the way, a disk that is full (a symlink to /dev/full), a
manifest path that is a directory, data Arrow cannot write, an object store that drops the connection
mid-try, and an output folder that holds the input. Each case checks the message, the retry class and
that the previously published outputs are untouched.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from airflow_provider_mlprod.exceptions import ConfigurationError, InputDataError
from airflow_provider_mlprod.operators.outcome import FINAL_ERRORS
from airflow_provider_mlprod.validation.output_folder import (
    OutputFolder,
    StorageUnavailableError,
    check_output_not_input,
    read_output_manifest,
)
from airflow_provider_mlprod.validation.quarantine import FileQuarantine, quarantine_frame

FRAME = pd.DataFrame({"id": [1, 2, 3, 4], "amount": [1.0, -2.0, 3.0, -4.0]})
FAILING = {"expect_column_values_to_be_between(amount)": [1, 3]}


def publish(folder, frame=FRAME, file_format="csv", inputs=()):
    return quarantine_frame(frame, FAILING, FileQuarantine(folder=folder, file_format=file_format), inputs)


def published_frames(folder) -> tuple[pd.DataFrame, pd.DataFrame]:
    locations = read_output_manifest(folder)["locations"]
    return pd.read_csv(locations["passing"]), pd.read_csv(locations["failing"])


def write_two_files(output: OutputFolder) -> None:
    with output as out:
        out.write("passing", "passing.csv", lambda handle: FRAME.to_csv(handle, index=False))
        out.write("failing", "failing.csv", lambda handle: FRAME.to_csv(handle, index=False))


def tries(folder: Path) -> list[str]:
    return sorted(child.name for child in (folder / "tries").iterdir())


def test_a_try_is_published_by_its_manifest_and_older_tries_are_removed(tmp_path):
    folder = tmp_path / "quarantine"
    first = publish(folder)
    assert (first["passing_rows"], first["failing_rows"]) == (2, 2)
    manifest = read_output_manifest(folder)
    assert manifest["try"] == first["output_try"]
    assert manifest["locations"]["failing"] == first["failing_location"]
    assert json.loads(Path(first["report_location"]).read_text())["failed_expectations"] == {
        "expect_column_values_to_be_between(amount)": 2
    }
    passing, failing = published_frames(folder)
    assert passing["id"].tolist() == [1, 3]
    assert failing["id"].tolist() == [2, 4]
    second = publish(folder, FRAME.assign(amount=1.0))
    assert read_output_manifest(folder)["try"] == second["output_try"]
    assert tries(folder) == [second["output_try"]]  # the older try is gone
    assert not any(name.endswith(".tmp") for name in os.listdir(folder))


def test_a_stale_try_finishing_late_leaves_a_newer_trys_files_in_place(tmp_path):
    folder = tmp_path / "quarantine"
    stale = OutputFolder(folder, try_id="20260101T000000000000Z-aaaaaaaa")  # started first
    newer = OutputFolder(folder, try_id="20260101T000001000000Z-bbbbbbbb")
    write_two_files(newer)
    with pytest.raises(
        InputDataError, match=r"a newer try \(20260101T000001000000Z-bbbbbbbb\) already published"
    ):
        write_two_files(stale)  # a try Airflow gave up on, finishing after the retry published
    assert tries(folder) == [newer.try_id]  # the stale try's folder is discarded
    assert Path(newer.locations["passing"]).is_file()  # what the newer try's XCom points at
    assert read_output_manifest(folder)["try"] == newer.try_id  # the manifest still points at it


class PublishingInBetween(OutputFolder):
    """A stale try during which a newer try publishes, just after the stale one checked the manifest:
    the interleaving two processes produce when a retry races a try Airflow gave up on."""

    def __init__(self, *args, newer: OutputFolder, **kwargs):
        super().__init__(*args, **kwargs)
        self.newer = newer

    def _write_manifest(self, payload):
        if self.newer is not None:
            newer, self.newer = self.newer, None
            write_two_files(newer)  # publishes, then removes older tries: this one's folder too
        super()._write_manifest(payload)


def test_a_stale_try_publishing_in_the_same_moment_as_a_newer_one_leaves_the_newer_published(tmp_path):
    folder = tmp_path / "quarantine"
    newer = OutputFolder(folder, try_id="20260101T000001000000Z-bbbbbbbb")
    stale = PublishingInBetween(folder, try_id="20260101T000000000000Z-aaaaaaaa", newer=newer)
    with pytest.raises(InputDataError, match=r"a newer try \(20260101T000001000000Z-bbbbbbbb\) published"):
        write_two_files(stale)
    manifest = read_output_manifest(folder)
    assert manifest["try"] == newer.try_id
    assert all(Path(location).is_file() for location in manifest["locations"].values())
    assert tries(folder) == [newer.try_id]


def test_a_full_disk_mid_try_is_retryable_and_leaves_the_published_outputs(tmp_path):
    folder = tmp_path / "quarantine"
    first = publish(folder)
    doomed = folder / "tries" / "doomed"
    doomed.mkdir(parents=True)
    (doomed / "failing.csv").symlink_to("/dev/full")
    with pytest.raises(
        StorageUnavailableError, match=r"failing\.csv' cannot be written now: No space left"
    ) as raised:
        write_two_files(OutputFolder(folder, try_id="doomed"))
    assert not isinstance(raised.value, FINAL_ERRORS)
    assert not doomed.exists()  # the half-written try is removed
    assert read_output_manifest(folder)["try"] == first["output_try"]
    assert published_frames(folder)[1]["id"].tolist() == [2, 4]


def test_a_directory_in_the_way_of_the_manifest_is_final_and_publishes_nothing(tmp_path):
    folder = tmp_path / "quarantine"
    (folder / "manifest.json").mkdir(parents=True)
    with pytest.raises(
        ConfigurationError, match=r"manifest\.json' cannot be written: a directory is in the way"
    ):
        publish(folder)
    assert tries(folder) == []  # the complete but unpublished try is removed too


@pytest.mark.parametrize("blocker", ["folder", "tries"])
def test_a_file_in_the_way_of_the_folder_is_final(tmp_path, blocker):
    folder = tmp_path / "quarantine"
    if blocker == "folder":
        folder.write_text("not a folder")
    else:
        folder.mkdir()
        (folder / "tries").write_text("not a folder")
    with pytest.raises(ConfigurationError, match="a file is in the way of its folder") as raised:
        publish(folder)
    assert isinstance(raised.value, FINAL_ERRORS)


def test_data_arrow_cannot_write_is_final_and_leaves_the_published_outputs(tmp_path):
    folder = tmp_path / "quarantine"
    first = publish(folder, file_format="parquet")
    mixed = FRAME.assign(amount=pd.Series([1, 2, "three", 4], dtype=object))  # passing rows: 1, "three"
    with pytest.raises(InputDataError, match=r"passing\.parquet': the data cannot be written in this format"):
        publish(folder, mixed, file_format="parquet")
    assert tries(folder) == [first["output_try"]]
    assert read_output_manifest(folder)["try"] == first["output_try"]


@pytest.mark.parametrize("where", ["same", "parent", "ancestor"])
def test_an_output_folder_holding_the_input_is_refused_before_writing(tmp_path, where):
    source = tmp_path / "landing" / "day" / "orders.csv"
    source.parent.mkdir(parents=True)
    FRAME.to_csv(source, index=False)
    folder = {"same": source, "parent": source.parent, "ancestor": tmp_path}[where]
    with pytest.raises(ConfigurationError, match="is or contains the input"):
        publish(folder, inputs=[f"file://{source}"])
    assert pd.read_csv(source).equals(FRAME)
    assert not (source.parent / "tries").exists()
    assert not (source.parent / "manifest.json").exists()
    check_output_not_input(tmp_path / "landing" / "day_quarantine", [source])  # a sibling is fine


def test_no_manifest_means_nothing_was_published(tmp_path):
    with pytest.raises(InputDataError, match=r"has no manifest\.json: nothing was published"):
        read_output_manifest(tmp_path)


# -- object storage (fsspec's memory file system behind ObjectStoragePath) ------------------------


class DroppingFileSystem(MemoryFileSystem):
    """An object store whose connection drops when a try writes its failing rows."""

    protocol = "droppingmem"

    @classmethod
    def _strip_protocol(cls, path):
        return super()._strip_protocol(path.removeprefix("droppingmem://"))

    def _open(self, path, mode="rb", **kwargs):
        if "w" in mode and path.endswith("failing.parquet"):
            raise ConnectionResetError(104, "Connection reset by peer")
        return super()._open(path, mode, **kwargs)


@pytest.fixture
def object_store():
    import fsspec
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io.store import attach

    fsspec.register_implementation("droppingmem", DroppingFileSystem, clobber=True)
    attach("memory", fs=MemoryFileSystem())
    attach("droppingmem", fs=DroppingFileSystem())
    MemoryFileSystem.store.clear()
    yield ObjectStoragePath
    MemoryFileSystem.store.clear()


@pytest.mark.filterwarnings("ignore:UPath 'droppingmem' filesystem not explicitly implemented")
def test_on_object_storage_a_dropped_connection_is_retryable_and_publishes_nothing(object_store):
    good = object_store("memory://bucket/quarantine")
    first = publish(good, file_format="parquet")
    assert first["manifest_location"] == "memory://bucket/quarantine/manifest.json"
    locations = read_output_manifest(good)["locations"]
    with object_store(locations["failing"]).open("rb") as handle:
        assert pd.read_parquet(handle)["id"].tolist() == [2, 4]
    assert publish(good, file_format="parquet")["output_try"] != first["output_try"]
    assert len(list((good / "tries").iterdir())) == 1

    flaky = object_store("droppingmem://bucket/flaky")
    published = quarantine_frame(FRAME, {}, FileQuarantine(folder=flaky, file_format="csv"))
    with pytest.raises(StorageUnavailableError, match="storage unavailable, a retry may succeed") as raised:
        publish(flaky, file_format="parquet")
    assert not isinstance(raised.value, FINAL_ERRORS)
    assert read_output_manifest(flaky)["try"] == published["output_try"]
    assert [child.name for child in (flaky / "tries").iterdir()] == [published["output_try"]]


def test_on_object_storage_a_folder_holding_the_input_is_refused(object_store):
    source = object_store("memory://bucket/landing/day/orders.csv")
    for folder in ("memory://bucket/landing/day", "memory://bucket/landing/day/", "memory://bucket"):
        with pytest.raises(ConfigurationError, match="is or contains the input"):
            check_output_not_input(object_store(folder), [source])
    check_output_not_input(object_store("memory://bucket/landing/day_quarantine"), [source])
    check_output_not_input(object_store("memory://other/landing/day"), [source])
