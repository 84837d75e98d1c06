"""Lethe's application factory: configuration, extensions, blueprints and CLI. Nothing else."""

import gc

# Start-up (issue 17): the imports below make a few hundred thousand objects that live as long
# as the process. Collecting garbage while they are made frees nothing and cost two full
# collections (about 0.1 s); once made they are set aside (gc.freeze), so that no later
# collection walks them again, nor writes to the pages a gunicorn worker shares with the
# master it was forked from (preload_app).
_collecting = gc.isenabled()
gc.disable()
try:
    from pathlib import Path

    from flask import Flask
    from werkzeug.middleware.proxy_fix import ProxyFix

    import cli
    import config
    import web
    from retention_policies import policies
    from storage.db import db, render_item
    from web.extensions import csrf, limiter, login_manager, migrate
finally:
    gc.freeze()
    if _collecting:
        gc.enable()


def create_app(test_config: dict | None = None, instance_path: str | None = None) -> Flask:
    """Build the app. ``test_config`` replaces instance/config.py and the environment;
    ``instance_path`` moves instance/ (tests use a temporary folder)."""
    app = Flask(
        __name__,
        instance_path=instance_path,
        instance_relative_config=True,
        template_folder="web/templates",
        static_folder="web/static",
    )
    config.load(app, test_config)
    policies()  # a malformed policy file stops start-up, naming the file and the field

    db.init_app(app)
    migrate.init_app(
        app,
        db,
        directory=str(Path(__file__).parent / "migrations"),
        render_item=render_item,
        render_as_batch=True,
        compare_type=True,
    )
    csrf.init_app(app)
    app.config.setdefault("RATELIMIT_STORAGE_URI", "memory://")
    limiter.init_app(app)
    login_manager.init_app(app)

    if app.config["PROXY_HOPS"]:
        hops = int(app.config["PROXY_HOPS"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    web.init_app(app)
    cli.init_app(app)
    return app
