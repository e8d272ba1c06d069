"""Artifact URIs become relative to the artifact root (``churn/<sha256>.rtm``).

Until now a version's ``artifact_uri`` was the absolute location the artifact store was
opened with (``/srv/ml/artifacts/churn/<sha256>.rtm``), so a copied workspace read and, on
retention, deleted the original's files. The artifact store has only ever written
``<root>/<model>/<sha256>.rtm``, so the relative part of a URI follows from the row itself:
every URI that ends in ``/<model>/<sha256>.rtm`` of its own row keeps just that part, wherever
the root was. The migration does not need to know the root (Alembic runs without the spec),
and a workspace copied before it ran reads its own files afterwards. A URI of any other shape
is left as it is; the artifact store refuses it unless it lies under its root.

The downgrade cannot know the root either, so it leaves the relative URIs; a retrainer from
before this revision cannot read them (restore a backup made before the upgrade instead).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"

_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}/[0-9a-f]{64}\.rtm")


def relative(uri: str, model: str, sha256: str) -> str | None:
    """The row's ``<model>/<sha256>.rtm`` when ``uri`` ends in it, else None.

    >>> sha = "c" * 64
    >>> relative(f"file:///w/artifacts/m/{sha}.rtm", "m", sha) == f"m/{sha}.rtm"
    True
    >>> relative(f"/w/artifacts/other/{sha}.rtm", "m", sha) is None
    True
    """
    key = f"{model}/{sha256}.rtm"
    if _KEY.fullmatch(key) and (uri == key or uri.endswith("/" + key)):
        return key
    return None


def upgrade() -> None:
    conn = op.get_bind()
    versions = sa.table(
        "versions",
        sa.column("id", sa.Integer),
        sa.column("model", sa.String),
        sa.column("sha256", sa.String),
        sa.column("artifact_uri", sa.Text),
    )
    rows = conn.execute(
        sa.select(versions.c.id, versions.c.model, versions.c.sha256, versions.c.artifact_uri)
    ).all()
    for r in rows:
        key = relative(r.artifact_uri, r.model, r.sha256)
        if key is not None and key != r.artifact_uri:
            conn.execute(versions.update().where(versions.c.id == r.id).values(artifact_uri=key))


def downgrade() -> None:
    pass
