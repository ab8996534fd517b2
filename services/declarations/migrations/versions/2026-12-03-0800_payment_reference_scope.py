"""declarations: a bank reference is unique among live payments of one organisation, and confirmed once

Revision ID: d0006
Revises: d0005
Create Date: 2026-12-03 08:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "d0006"
down_revision = "d0005"
branch_labels = None
depends_on = None

CONFIRMED = sa.text("status = 'confirmed'")
LIVE = sa.text("status <> 'rejected'")


def upgrade() -> None:
    # Until now a reference was unique across every payment, rejected ones included, and across organisations:
    # a trader could block another's reference by claiming it first, and the 409 told it the reference existed.
    with op.batch_alter_table("declaration_payments") as batch:
        batch.add_column(sa.Column("organisation_id", sa.String(36), nullable=True))
    op.execute(
        "UPDATE declaration_payments SET organisation_id = "
        "(SELECT organisation_id FROM declarations WHERE declarations.id = declaration_payments.declaration_id)"
    )
    with op.batch_alter_table("declaration_payments") as batch:
        batch.alter_column("organisation_id", existing_type=sa.String(36), nullable=False)
        batch.create_foreign_key(
            "fk_declaration_payments_organisation_id_organisations", "organisations", ["organisation_id"], ["id"]
        )
        batch.drop_constraint("uq_declaration_payments_bank_reference", type_="unique")
    op.create_index(
        "uq_declaration_payments_confirmed_reference",
        "declaration_payments",
        ["bank_reference"],
        unique=True,
        postgresql_where=CONFIRMED,
        sqlite_where=CONFIRMED,
    )
    op.create_index(
        "uq_declaration_payments_live_reference",
        "declaration_payments",
        ["bank_reference", "organisation_id"],
        unique=True,
        postgresql_where=LIVE,
        sqlite_where=LIVE,
    )


def downgrade() -> None:
    # Fails if one reference is now used twice (a rejected claim and a later one, or two organisations' claims):
    # the old constraint cannot hold such data.
    op.drop_index("uq_declaration_payments_live_reference", table_name="declaration_payments")
    op.drop_index("uq_declaration_payments_confirmed_reference", table_name="declaration_payments")
    with op.batch_alter_table("declaration_payments") as batch:
        batch.create_unique_constraint("uq_declaration_payments_bank_reference", ["bank_reference"])
        batch.drop_constraint("fk_declaration_payments_organisation_id_organisations", type_="foreignkey")
        batch.drop_column("organisation_id")
