"""Alerts: log notifications and Slack-compatible webhooks."""

from .webhook import EVENTS, Alert, Alerter, Event, safe_url, slack_payload

__all__ = ["EVENTS", "Alert", "Alerter", "Event", "safe_url", "slack_payload"]
