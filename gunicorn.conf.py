"""gunicorn settings for production: `gunicorn 'app:create_app()'` picks this file up."""

import multiprocessing

bind = "127.0.0.1:8000"
workers = min(4, multiprocessing.cpu_count() * 2)
accesslog = "-"
# No query strings, referrers or user agents in access lines; web/logging.py redacts the
# tokens of emailed links from the paths.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
