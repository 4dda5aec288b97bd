"""The seed's examples as workflow stages, run by ``catalogstore demo``.

The stage functions are the seed document's code with only the import prefix
changed (``flowdapt.compute.`` became ``catalogstore.``), so the demo shows
that they run as written.
"""

from __future__ import annotations

from collections.abc import Callable

import catalogstore
from catalogstore.artifacts import Artifact, artifact_exists, get_artifact, new_artifact

DEMO_NAMESPACE = "demo"
"""The namespace the demo writes in, so it never touches the user's own artifacts."""


def save_artifact_stage():  # type: ignore[no-untyped-def]
    # Create a new artifact
    artifact = new_artifact("my_artifact")

    # Add a new file to the artifact and write some content to it
    file = artifact.new_file("my_file", content="Hello, World!")

    # Read from the file
    content = file.read()
    print(content)  # Outputs: "Hello, World!"


def read_artifact_stage():  # type: ignore[no-untyped-def]
    # Get an artifact by name
    artifact = get_artifact("my_artifact")

    # Get a reference to a file
    file = artifact.get_file("my_file")

    # Read the file
    content = file.read()
    print(content)

    # Now that we have the info, delete the file
    file.remove()

    # We can even delete the entire artifact too
    if artifact.is_empty:
        artifact.delete()


def metadata_stage() -> Artifact:
    """The seed's metadata example (its unused reads kept as written); returns the artifact."""
    # Create a new artifact
    artifact = new_artifact("my_new_artifact")

    # Set metadata
    artifact.set_meta("created_by", "my_username")
    artifact.set_meta("creation_date", "2023-05-26")

    # Get metadata
    created_by = artifact.get_meta("created_by")
    creation_date = artifact.get_meta("creation_date")  # noqa: F841

    # Delete metadata
    artifact.del_meta("created_by")

    # Use as dictionary
    artifact["created_by"] = "my_username"
    artifact["creation_date"] = "2023-05-26"

    created_by = artifact["created_by"]  # noqa: F841
    return artifact


def run_artifact_stages(echo: Callable[[str], None] = print) -> Artifact:
    """Run the seed's Artifacts stages in the ``demo`` namespace, reporting each step.

    Artifacts left by an earlier run are removed first, so the demo can be run
    again; the metadata example's artifact is kept and returned.
    """
    with catalogstore.namespace(DEMO_NAMESPACE):
        for leftover in ("my_artifact", "my_new_artifact"):
            if artifact_exists(leftover):
                echo(f"removing {DEMO_NAMESPACE}/{leftover} left by an earlier run")
                get_artifact(leftover).delete()
        echo(f"stage save_artifact_stage: new artifact {DEMO_NAMESPACE}/my_artifact "
             "with the file my_file")
        save_artifact_stage()
        echo("stage read_artifact_stage: read my_file, remove it and the empty artifact")
        read_artifact_stage()
        echo(f"metadata example: {DEMO_NAMESPACE}/my_new_artifact with two metadata keys")
        artifact = metadata_stage()
        echo(f"kept {artifact.uri} with metadata {artifact.metadata}")
    return artifact
