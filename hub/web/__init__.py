"""Server-rendered pages for people: login, clients, numbers, pools, sessions."""

from typing import Any

from flask import Blueprint, render_template

from hub.extensions import db
from hub.ui_messages import refusal_text
from tracking.errors import Refused

bp = Blueprint("web", __name__, template_folder="../templates")


@bp.errorhandler(Refused)
def _refused(exc: Refused) -> Any:
    # The domain's refusals (a bad filter, a bad period) shown to a person; the API answers them as JSON.
    db().rollback()
    return render_template("error.html", message=refusal_text(exc)), 400


from hub.web import journal, language, notifications, pages, pipeline, reports, setup  # noqa: E402,F401  (registers the routes)
