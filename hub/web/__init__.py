"""Server-rendered pages for people: login, clients, numbers, pools, sessions."""

from flask import Blueprint

bp = Blueprint("web", __name__, template_folder="../templates")

from hub.web import journal, notifications, pages, pipeline, reports  # noqa: E402,F401  (registers the routes)
