"""calls: telephony integrations, calls, call events, candidates, attribution history

Revision ID: 0002_calls
Revises: 0001_foundation
Create Date: 2026-11-22 13:56:21.332709
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tracking.db

revision: str = "0002_calls"
down_revision: str | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "telephony_integrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("integration_key", sa.String(length=64), nullable=False),
        sa.Column("secrets_encrypted", sa.Text(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", tracking.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_telephony_integrations_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telephony_integrations")),
        sa.UniqueConstraint("integration_key", name=op.f("uq_telephony_integrations_integration_key")),
    )
    with op.batch_alter_table("telephony_integrations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_telephony_integrations_client_id"), ["client_id"], unique=False)

    op.create_table(
        "calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=True),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("provider_call_id", sa.String(length=128), nullable=False),
        sa.Column("tracking_number_id", sa.Integer(), nullable=True),
        sa.Column("called_number", sa.String(length=32), nullable=True),
        sa.Column("caller", sa.String(length=32), nullable=True),
        sa.Column("called_at", tracking.db.UTCDateTime(), nullable=True),
        sa.Column("answered_at", tracking.db.UTCDateTime(), nullable=True),
        sa.Column("ended_at", tracking.db.UTCDateTime(), nullable=True),
        sa.Column("wait_seconds", sa.Integer(), nullable=False),
        sa.Column("talk_seconds", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "IN_PROGRESS",
                "ANSWERED",
                "MISSED",
                "BUSY",
                "FAILED",
                name="callstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("abandoned", sa.Boolean(), nullable=False),
        sa.Column("forwarded_to", sa.String(length=64), nullable=True),
        sa.Column("recording_url", sa.Text(), nullable=True),
        sa.Column("recording_ref", sa.String(length=255), nullable=True),
        sa.Column("first_time", sa.Boolean(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("channel_id", sa.Integer(), nullable=True),
        sa.Column(
            "attribution_method",
            sa.Enum(
                "STATIC",
                "DYNAMIC",
                "DYNAMIC_UNIDENTIFIED",
                "OVERFLOW",
                "PROMO",
                "MANUAL",
                "UNMATCHED",
                name="attributionmethod",
                native_enum=False,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("session_confidence", sa.Float(), nullable=True),
        sa.Column("channel_confidence", sa.Float(), nullable=True),
        sa.Column("candidates_count", sa.Integer(), nullable=False),
        sa.Column("promo_code", sa.String(length=16), nullable=True),
        sa.Column("finalised_at", tracking.db.UTCDateTime(), nullable=True),
        sa.Column("created_at", tracking.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", tracking.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.id"], name=op.f("fk_calls_channel_id_channels"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_calls_client_id_clients"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["telephony_integrations.id"],
            name=op.f("fk_calls_integration_id_telephony_integrations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["visit_sessions.id"],
            name=op.f("fk_calls_session_id_visit_sessions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tracking_number_id"],
            ["tracking_numbers.id"],
            name=op.f("fk_calls_tracking_number_id_tracking_numbers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
        sa.UniqueConstraint("provider", "provider_call_id", name=op.f("uq_calls_provider_provider_call_id")),
    )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_index("ix_calls_client_called", ["client_id", "called_at"], unique=False)
        batch_op.create_index("ix_calls_client_caller", ["client_id", "caller", "called_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_integration_id"), ["integration_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_tracking_number_id"), ["tracking_number_id"], unique=False)

    op.create_table(
        "attribution_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("changed_at", tracking.db.UTCDateTime(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("old_method", sa.String(length=24), nullable=True),
        sa.Column("new_method", sa.String(length=24), nullable=False),
        sa.Column("old_channel_id", sa.Integer(), nullable=True),
        sa.Column("new_channel_id", sa.Integer(), nullable=True),
        sa.Column("old_session_id", sa.Integer(), nullable=True),
        sa.Column("new_session_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_attribution_changes_call_id_calls"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_attribution_changes_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attribution_changes")),
    )
    with op.batch_alter_table("attribution_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_attribution_changes_call_id"), ["call_id"], unique=False)

    op.create_table(
        "call_candidates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_call_candidates_call_id_calls"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["visit_sessions.id"],
            name=op.f("fk_call_candidates_session_id_visit_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_candidates")),
        sa.UniqueConstraint("call_id", "session_id", name=op.f("uq_call_candidates_call_id_session_id")),
    )
    with op.batch_alter_table("call_candidates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_call_candidates_call_id"), ["call_id"], unique=False)

    op.create_table(
        "call_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", tracking.db.UTCDateTime(), nullable=False),
        sa.Column("received_at", tracking.db.UTCDateTime(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_call_events_call_id_calls"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_events")),
        sa.UniqueConstraint("call_id", "fingerprint", name=op.f("uq_call_events_call_id_fingerprint")),
    )
    with op.batch_alter_table("call_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_call_events_call_id"), ["call_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("call_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_call_events_call_id"))

    op.drop_table("call_events")
    with op.batch_alter_table("call_candidates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_call_candidates_call_id"))

    op.drop_table("call_candidates")
    with op.batch_alter_table("attribution_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attribution_changes_call_id"))

    op.drop_table("attribution_changes")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calls_tracking_number_id"))
        batch_op.drop_index(batch_op.f("ix_calls_integration_id"))
        batch_op.drop_index("ix_calls_client_caller")
        batch_op.drop_index("ix_calls_client_called")

    op.drop_table("calls")
    with op.batch_alter_table("telephony_integrations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_telephony_integrations_client_id"))

    op.drop_table("telephony_integrations")
