"""The sessions calendar keeps seven equal columns whatever the titles: a long title is cut
with an ellipsis inside its day, it does not widen its weekday across the month."""

from __future__ import annotations

import datetime as dt

import httpx
from playwright.sync_api import expect

from browser_helpers import shot, sign_in


def test_a_long_title_does_not_widen_its_weekday_column(page, federation):
    today = dt.date.today()
    title = "Penguatan" + "Kapasitas" * 20  # one long word: no place to wrap
    made = httpx.post(f"{federation.sessions.url}/sessions", timeout=30,
                      headers={"Authorization": f"Bearer {federation.token()}"}, json={
                          "title": title, "competency_type": "managerial", "competency": "leadership",
                          "method": "classroom", "provider": "city", "jp": 8, "days": 1,
                          "start_date": str(today), "end_date": str(today), "capacity": 10,
                          "place": "Aula"})
    assert made.status_code == 201, made.text
    sign_in(page, federation, path="/ui/sessions")
    page.goto(f"{federation.sessions.url}/ui/sessions")
    expect(page.locator("#calendar")).to_contain_text(title[:20])
    widths = page.eval_on_selector_all(
        "#calendar > *", "cells => cells.slice(0, 14).map(c => c.getBoundingClientRect().width)")
    shot(page, "calendar-long-title")
    assert len(widths) == 14
    assert max(widths) - min(widths) < 1.5, widths
