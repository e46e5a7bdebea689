"""What `pbxlink demo` puts in a fresh database so every page has something to show."""

from __future__ import annotations

import logging
from pathlib import Path

from pbxlink.domain.campaign import CampaignSettings
from pbxlink.services.contact_import import rejects_folder, run_import
from pbxlink.storage import campaigns as store

log = logging.getLogger(__name__)

CAMPAIGN = "demo-reminders"
CONTACTS = 40


def seed_campaign(pbx: str, data_dir: Path) -> None:
    """A draft broadcast campaign with contacts imported from a CSV, ready for its Start button."""
    if store.by_name(CAMPAIGN) is not None:
        return
    settings = CampaignSettings.checked(
        name=CAMPAIGN,
        pbx=pbx,
        mode="broadcast",
        timezone="UTC",
        message="custom/appointment-reminder",
        queue="support",
        amd=True,
        days="*",
        hours="00:00-24:00",
        window_start="00:00",
        window_end="24:00",
        per_minute=6.0,
        max_concurrent=3,
    )
    campaign = store.create(settings, "demo")
    csv_file = data_dir / "demo-contacts.csv"
    lines = ["Phone,Full name,Appointment"]
    lines += [
        f"+1 212 555 {100 + i:04d},Demo contact {i + 1},2026-12-{1 + i % 28:02d}" for i in range(CONTACTS)
    ]
    csv_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    row = run_import(
        campaign.id, csv_file, None, filename=csv_file.name, rejects_dir=rejects_folder(data_dir)
    )
    log.info(
        "demo: campaign %s with %d contacts, a draft: start it on the Campaigns page", CAMPAIGN, row.accepted
    )
