"""The real Flowdapt and catalogstore read each other's artifacts (issue 14, point 5).

Flowdapt (its own venv, ``flowdapt_env``) and catalogstore share one local storage
root, named per call (``protocol="file"``, ``base_path=...``) on both sides: what
one side's save hooks write, the other side's load hooks read, and metadata keeps
its JSON types both ways, down to the bytes of ``.artifact.json``. catalogstore
sees what Flowdapt wrote once ``reindex`` has indexed the root.

On Flowdapt's side, dataframes go through its partition functions rather than its registry:
Flowdapt registers pandas' DataFrame under the name pandas 2 gives it
(``pandas.core.frame.DataFrame``), and with pandas 3 (``pandas.DataFrame``) its own
``dataframe_to_artifact``/``dataframe_from_artifact`` find no handler.
catalogstore accepts both names.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy
import pandas
import pytest
from flowdapt_env import flowdapt_interpreter, run_flowdapt

from catalogstore.artifacts import Artifact
from catalogstore.artifacts.dataset import (
    array_from_artifact,
    array_to_artifact,
    dataframe_from_artifact,
    dataframe_to_artifact,
)
from catalogstore.artifacts.misc import json_from_artifact, json_to_artifact
from catalogstore.artifacts.roots import storage_settings
from catalogstore.maintenance import reindex
from catalogstore.names import METADATA_FILENAME

pytestmark = pytest.mark.flowdapt

FRAME = {"a": [1, 2, 3, 4, 5], "b": ["x", "y", "z", "w", "v"]}
TYPED = {"epochs": 10, "rate": 0.5, "ok": False, "none": None, "layers": [1, 2, 3],
         "opts": {"k": "v", "n": [True]}, "name": "xgb"}

FLOWDAPT_READS = """
import pandas
from flowdapt.compute.artifacts.dataset.arrays import array_from_artifact
from flowdapt.compute.artifacts.dataset.dataframes import read_dataframe_from_artifact
from flowdapt.compute.artifacts.misc import json_from_artifact
where = dict(protocol="file", base_path=args["root"])
files = Artifact.get_artifact("frame", **where).list_files()
frame = pandas.concat([read_dataframe_from_artifact(f)
                       for f in sorted(files, key=lambda f: f.name)])
array = array_from_artifact(executor="*")(Artifact.get_artifact("array", **where))
reply({"frame": frame.reset_index(drop=True).to_dict("list"), "array": array.tolist(),
       "json": json_from_artifact()(Artifact.get_artifact("doc", **where)),
       "meta": Artifact.get_artifact("typed", **where).metadata})
"""

FLOWDAPT_WRITES = """
import numpy, pandas
from flowdapt.compute.artifacts.dataset.arrays import array_to_artifact
from flowdapt.compute.artifacts.dataset.dataframes import pandas_dataframe_to_artifact
from flowdapt.compute.artifacts.misc import json_to_artifact
where = dict(protocol="file", base_path=args["root"])
frame = Artifact.new_artifact("frame", **where)
frame["value_type"] = "pandas.core.frame.DataFrame"  # what Flowdapt records with pandas 2
pandas_dataframe_to_artifact(frame, pandas.DataFrame(args["frame"]), num_parts=2)
array_to_artifact(executor="*", num_parts=3)(
    Artifact.new_artifact("array", **where), numpy.arange(12.0).reshape(6, 2))
json_to_artifact()(Artifact.new_artifact("doc", **where), args["typed"])
typed = Artifact.new_artifact("typed", **where)
for key, value in args["typed"].items():
    typed[key] = value
reply(True)
"""

FLOWDAPT_TOUCHES = """
artifact = Artifact.get_artifact("typed", protocol="file", base_path=args["root"])
artifact.set_meta("name", artifact.get_meta("name"))  # a write that changes nothing
reply(True)
"""


@pytest.fixture(scope="module")
def flowdapt_python() -> Path:
    return flowdapt_interpreter()


def _root(tmp_path: Path) -> dict[str, str]:
    return {"protocol": "file", "base_path": str(tmp_path / "shared")}


def test_flowdapt_reads_what_catalogstore_hooks_wrote(flowdapt_python: Path,
                                                      tmp_path: Path) -> None:
    where = _root(tmp_path)
    dataframe_to_artifact(num_parts=2)(Artifact.new_artifact("frame", **where),
                                       pandas.DataFrame(FRAME))
    # One partition: Flowdapt concatenates partitions in the order the filesystem
    # lists them (os.scandir's, arbitrary); catalogstore in the order of their numbers.
    array_to_artifact()(Artifact.new_artifact("array", **where),
                        numpy.arange(12.0).reshape(6, 2))
    json_to_artifact()(Artifact.new_artifact("doc", **where), TYPED)
    typed = Artifact.new_artifact("typed", **where)
    typed["name"] = "xgb"
    seen = run_flowdapt(flowdapt_python, FLOWDAPT_READS, tmp_path, root=where["base_path"])
    assert seen["frame"] == FRAME
    assert seen["array"] == numpy.arange(12.0).reshape(6, 2).tolist()
    assert seen["json"] == TYPED
    assert seen["meta"] == {"name": "xgb"}


def test_catalogstore_reads_what_flowdapt_hooks_wrote(flowdapt_python: Path,
                                                      tmp_path: Path) -> None:
    where = _root(tmp_path)
    # Flowdapt writes typed metadata, which this branch's reindex converts (issue 14
    # point 3 keeps it as it is); the files and value types are read either way.
    run_flowdapt(flowdapt_python, FLOWDAPT_WRITES, tmp_path, root=where["base_path"],
                 frame=FRAME, typed={"name": "xgb"})
    report = reindex(settings=storage_settings(**where))
    assert not report.broken, report
    frame = dataframe_from_artifact()(Artifact.get_artifact("frame", **where))
    pandas.testing.assert_frame_equal(frame.reset_index(drop=True), pandas.DataFrame(FRAME))
    numpy.testing.assert_array_equal(array_from_artifact()(Artifact.get_artifact("array", **where)),
                                     numpy.arange(12.0).reshape(6, 2))
    assert json_from_artifact()(Artifact.get_artifact("doc", **where)) == {"name": "xgb"}


def test_typed_metadata_catalogstore_to_flowdapt(flowdapt_python: Path, tmp_path: Path) -> None:
    where = _root(tmp_path)
    dataframe_to_artifact()(Artifact.new_artifact("frame", **where), pandas.DataFrame(FRAME))
    array_to_artifact()(Artifact.new_artifact("array", **where), numpy.zeros(2))
    json_to_artifact()(Artifact.new_artifact("doc", **where), {})
    typed = Artifact.new_artifact("typed", **where)
    typed.update_meta(TYPED)
    seen = run_flowdapt(flowdapt_python, FLOWDAPT_READS, tmp_path, root=where["base_path"])
    assert seen["meta"] == TYPED


def test_typed_metadata_flowdapt_to_catalogstore_byte_for_byte(flowdapt_python: Path,
                                                               tmp_path: Path) -> None:
    where = _root(tmp_path)
    run_flowdapt(flowdapt_python, FLOWDAPT_WRITES, tmp_path, root=where["base_path"],
                 frame=FRAME, typed=TYPED)
    report = reindex(settings=storage_settings(**where))
    assert not report.broken, report
    typed = Artifact.get_artifact("typed", **where)
    assert typed.metadata == TYPED
    assert {k: type(v) for k, v in typed.metadata.items()} == \
        {k: type(v) for k, v in TYPED.items()}
    written_by_flowdapt = Path(typed.path, METADATA_FILENAME).read_bytes()
    typed["name"] = "xgb"  # catalogstore rewrites .artifact.json: no byte changes
    assert Path(typed.path, METADATA_FILENAME).read_bytes() == written_by_flowdapt
    run_flowdapt(flowdapt_python, FLOWDAPT_TOUCHES, tmp_path, root=where["base_path"])
    assert Path(typed.path, METADATA_FILENAME).read_bytes() == written_by_flowdapt
    assert json.loads(written_by_flowdapt) == TYPED
