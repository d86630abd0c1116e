"""Diagnostics (admins): system health with the rule behind each status, detail tables, cache actions."""

from ui import diagnostics_view as view
from ui.auth import ADMIN_ONLY, require_user
from ui.errors import shown_errors

user = require_user(ADMIN_ONLY)
with shown_errors():
    view.draw(user)
