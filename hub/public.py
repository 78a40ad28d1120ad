"""Public endpoints the snippet calls from visitors' browsers: /t/v1/<site_key>/..."""

from flask import Blueprint

bp = Blueprint("public", __name__)
