"""Block Kit for the Slack surface: pure functions from domain objects to Slack JSON dicts.

* ``forms``: JSON Schema <-> ``input`` blocks and ``view.state.values``.
* ``checkpoint``: the checkpoint card, its decided form and its modals.
* ``home``: the App Home tab.
"""

from __future__ import annotations

from bot.blocks.checkpoint import (
    checkpoint_message,
    decided_message,
    edit_modal,
    full_text_modal,
    reject_modal,
    run_inputs_modal,
)
from bot.blocks.forms import parse_submission, schema_to_blocks, validate_data
from bot.blocks.home import home_view
from bot.blocks.modals import answer_modal, confirm_modal

__all__ = [
    "answer_modal",
    "checkpoint_message",
    "confirm_modal",
    "decided_message",
    "edit_modal",
    "full_text_modal",
    "home_view",
    "parse_submission",
    "reject_modal",
    "run_inputs_modal",
    "schema_to_blocks",
    "validate_data",
]
