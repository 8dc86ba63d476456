"""The error code of a failed Web API call (private), whatever the body was."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError

__all__ = ["slack_error"]


def slack_error(exc: SlackApiError) -> str:
    """``exc``'s ``error`` field, or ``http_<status>`` when the body was not Slack's JSON.

    A proxy or Slack's edge can answer a 5xx with a plain-text body; ``SlackResponse.get`` then
    raises AttributeError, which would escape every handler that expects a SlackApiError.
    """
    data = exc.response.data
    error = data.get("error") if isinstance(data, dict) else None
    return str(error or f"http_{exc.response.status_code}")
