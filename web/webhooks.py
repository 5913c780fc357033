"""The webhook routes: each a call on jobs/webhooks/, described beside its view as the route table's others."""

from __future__ import annotations

from flask import Response, jsonify

from jobs import schemas
from web.context import json_body, services
from web.openapi import Route

S = schemas


def _webhook_id(webhook_id: str) -> str:
    """The path's webhook id, checked (422 at `id`, as a schedule's)."""
    return str(schemas.webhook_id.load({"id": webhook_id})["id"])


def put_webhook(webhook_id: str) -> tuple[Response, int]:
    """Create (201) or replace (200) a webhook; the answer is the one place its secret is shown."""
    checked = _webhook_id(webhook_id)
    webhook, created = services().webhooks.put(checked, **json_body(schemas.webhook_put))
    return jsonify(schemas.webhook_out.dump({"webhook": webhook})), 201 if created else 200


def list_webhooks() -> Response:
    """Every webhook, by id, without secrets."""
    return jsonify(schemas.webhooks_out.dump({"webhooks": services().webhooks.all()}))


def delete_webhook(webhook_id: str) -> Response:
    """Delete a webhook, its log and the deliveries it still owes."""
    services().webhooks.delete(_webhook_id(webhook_id))
    return Response(status=204)


def list_deliveries(webhook_id: str) -> Response:
    """A webhook's last 100 delivery attempts, newest first."""
    log = services().webhooks.log(_webhook_id(webhook_id))
    return jsonify(schemas.deliveries_out.dump({"deliveries": log}))


WEBHOOK_ROUTES = [
    Route(
        "/api/webhooks/<webhook_id>",
        "PUT",
        put_webhook,
        "Create or replace a webhook (its secret shown in this answer only)",
        {201: S.WebhookEnvelopeSchema, 200: S.WebhookEnvelopeSchema},
        body=S.WebhookPutSchema,
    ),
    Route("/api/webhooks", "GET", list_webhooks, "Every webhook, without secrets", {200: S.WebhooksSchema}),
    Route(
        "/api/webhooks/<webhook_id>",
        "DELETE",
        delete_webhook,
        "Delete a webhook with its deliveries",
        {204: None},
        errors=(404, 422),
    ),
    Route(
        "/api/webhooks/<webhook_id>/deliveries",
        "GET",
        list_deliveries,
        "A webhook's last 100 delivery attempts, newest first",
        {200: S.DeliveriesSchema},
        errors=(404, 422),
    ),
]
