"""The image admin's bulk actions."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_an_action_on_ids_that_are_not_ids_is_a_bad_request(admin_client: Client) -> None:
    response = admin_client.post(
        "/admin/uploads/image/", {"action": "reprocess", "_selected_action": ["abc"]}
    )
    assert response.status_code == 400
